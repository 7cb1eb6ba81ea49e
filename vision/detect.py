"""Find the items (garments, bags, shoes, accessories) in a photo, without detector weights.

Region proposals come from a background model, not from a trained detector:

1. the photo is reduced to 320 px on its long side and smoothed; each pixel gets a feature of
   CIE Lab colour plus local texture energy;
2. the background is modelled by k-means over the features of a band along the image border (only
   clusters holding a real share of the border count, so an item touching the edge does not
   become "background");
3. each pixel's distance to the nearest background cluster gives a foreground map; thresholding
   it at several levels, and splitting the foreground by colour clusters (to separate touching
   items), yields connected regions, cleaned by morphology and hole filling;
4. every region is scored by how much more foreground-like it is than a ring around it, and by
   how compactly it fills its box; overlapping regions are merged by non-maximum suppression.

Labels are `unknown` unless the caller passes an embedder with `pretrained=True` and
`supports_text=True`; then each region's crop is labelled zero-shot against prompts
"a photo of a {category}" over `categories` (`label_score` is the softmax probability).

Result order: the regions by descending `score`, then the whole image as the last entry
(`whole_image=True`, `score=0.0`): it is a fallback candidate, always present, so a caller can
search with the whole photo when no region is right. At most `max_items` entries in all.

Works well on items that differ in colour or texture from a background that also shows along
the image border (product flat-lays, items on a table or wall, most of the synthetic scenes).
Weak on people wearing the items (the person is one region), on items coloured like their
background, and on busy backgrounds whose colours also occur inside the items.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from vision.embedders import Embedder

DEFAULT_CATEGORIES: tuple[str, ...] = (
    "jacket", "coat", "shirt", "t-shirt", "dress", "skirt", "trousers", "jeans", "shorts", "shoe",
    "sneaker", "boot", "bag", "backpack", "hat", "cap", "sunglasses", "glasses", "scarf", "tie",
    "watch", "necklace", "belt", "glove", "sock",
)
PROMPT_TEMPLATE = "a photo of a {}"
WORK_SIDE = 320
MIN_AREA_FRACTION = 0.004  # regions smaller than this share of the image are dropped
MAX_AREA_FRACTION = 0.85  # larger regions are the whole image in disguise
# A region thinner than this share of the image's long side, or a long, full strip, is an edge of the
# background (a wall meeting the floor, a door frame): the texture feature is high along any step in
# colour. Such strips scored as items and, on a catalog picture, took the place of the product.
MIN_THICKNESS_FRACTION = 0.04
MAX_STRIP_ASPECT, STRIP_FILL = 6.0, 0.8
NMS_IOU = 0.5
ZERO_SHOT_LOGIT_SCALE = 100.0


@dataclass
class DetectedItem:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the input image, x1/y1 exclusive
    category: str  # from `categories`, or "unknown"
    score: float  # 0..1 region confidence; 0.0 for the whole-image candidate
    mask: np.ndarray | None = field(default=None, repr=False)  # bool [y1-y0, x1-x0], the item's pixels
    whole_image: bool = False
    label_score: float | None = None  # zero-shot probability of `category`, when labelled


@dataclass
class _Region:
    box: tuple[int, int, int, int]  # in work-image pixels
    mask: np.ndarray  # bool, work-image size
    score: float


def detect(
    image: Image.Image,
    *,
    embedder: Embedder | None = None,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    max_items: int = 8,
    min_score: float = 0.15,
) -> list[DetectedItem]:
    """Regions likely to hold one item each, best first, followed by the whole image."""
    rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    factor = min(1.0, WORK_SIDE / max(height, width))
    work_size = (max(1, round(width * factor)), max(1, round(height * factor)))
    work = cv2.resize(rgb, work_size, interpolation=cv2.INTER_AREA)
    regions = [r for r in propose_regions(work) if r.score >= min_score][: max(0, max_items - 1)]

    items = [_to_item(region, work.shape[:2], (height, width)) for region in regions]
    items.append(DetectedItem(box=(0, 0, width, height), category="unknown", score=0.0, mask=None, whole_image=True))
    if embedder is not None and embedder.pretrained and embedder.supports_text and categories:
        _label_zero_shot(image, items, embedder, tuple(categories))
    return items


def propose_regions(work: np.ndarray) -> list[_Region]:
    """Scored, de-duplicated candidate regions of an RGB uint8 image, best first."""
    height, width = work.shape[:2]
    features = _pixel_features(work)
    foreground = _foreground_map(features)
    min_area = MIN_AREA_FRACTION * height * width
    candidates: list[np.ndarray] = []
    for level in (0.35, 0.5, 0.7):
        candidates += _components(foreground >= level, min_area)
    candidates += _colour_split(features, foreground >= 0.5, min_area)
    regions = [_score(mask, foreground) for mask in candidates]
    regions = [r for r in regions if r is not None]
    return _non_maximum_suppression(sorted(regions, key=lambda r: -r.score))


def _pixel_features(work: np.ndarray) -> np.ndarray:
    """[H, W, 4]: smoothed L, a, b and local texture energy, roughly in Delta-E units."""
    lab = cv2.cvtColor(work.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    smooth = cv2.GaussianBlur(lab, (0, 0), 2.0)
    lightness = lab[..., 0]
    mean = cv2.GaussianBlur(lightness, (0, 0), 3.0)
    energy = np.sqrt(np.maximum(cv2.GaussianBlur(lightness**2, (0, 0), 3.0) - mean**2, 0))
    return np.dstack([smooth, 1.5 * energy]).astype(np.float32)


def _foreground_map(features: np.ndarray) -> np.ndarray:
    """0..1 per pixel: how unlike the border's dominant features the pixel is."""
    height, width = features.shape[:2]
    band = max(3, int(0.05 * min(height, width)))
    border = np.ones((height, width), bool)
    border[band:-band, band:-band] = False
    samples = features[border]
    samples = samples[:: max(1, len(samples) // 3000)]
    centres, labels = _kmeans(samples, 6)
    shares = np.bincount(labels, minlength=len(centres)) / len(labels)
    centres = centres[shares >= 0.08]
    distance = np.sqrt(((features[:, :, None, :] - centres[None, None]) ** 2).sum(-1)).min(-1)
    distance = cv2.GaussianBlur(distance, (0, 0), 1.5)
    return np.clip((distance - 6.0) / 18.0, 0.0, 1.0)


def _components(binary: np.ndarray, min_area: float) -> list[np.ndarray]:
    binary = binary.astype(np.uint8)
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    masks = []
    for label in range(1, count):
        if stats[label, cv2.CC_STAT_AREA] >= min_area:
            masks.append(_fill_holes(labels == label))
    return masks


def _colour_split(features: np.ndarray, foreground: np.ndarray, min_area: float) -> list[np.ndarray]:
    """Components of each foreground colour cluster: separates touching items of different colours."""
    points = features[foreground][:, :3]
    if len(points) < 4 * min_area:
        return []
    centres, _ = _kmeans(points[:: max(1, len(points) // 3000)], 4)
    distance = ((features[..., None, :3] - centres[None, None]) ** 2).sum(-1)
    nearest = distance.argmin(-1)
    masks = []
    for cluster in range(len(centres)):
        masks += _components(foreground & (nearest == cluster), min_area)
    return masks


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def _score(mask: np.ndarray, foreground: np.ndarray) -> _Region | None:
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    box_area = (x1 - x0) * (y1 - y0)
    if box_area > MAX_AREA_FRACTION * height * width:
        return None
    thin, long = sorted((x1 - x0, y1 - y0))
    if thin < MIN_THICKNESS_FRACTION * max(height, width):
        return None
    if long > MAX_STRIP_ASPECT * thin and len(xs) > STRIP_FILL * box_area:
        return None
    pad = max(3, int(0.1 * max(x1 - x0, y1 - y0)))
    ring = np.zeros_like(mask)
    ring[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad] = True
    ring[y0:y1, x0:x1] = False
    inside = float(foreground[mask].mean())
    outside = float(foreground[ring].mean()) if ring.any() else 0.0
    fill = len(xs) / box_area
    score = max(0.0, inside - outside) * min(1.0, 0.4 + fill)
    return _Region(box=(x0, y0, x1, y1), mask=mask, score=float(score))


def _non_maximum_suppression(regions: list[_Region]) -> list[_Region]:
    kept: list[_Region] = []
    for region in regions:
        if all(box_iou(region.box, other.box) < NMS_IOU for other in kept):
            kept.append(region)
    return kept


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _to_item(region: _Region, work_shape: tuple[int, int], shape: tuple[int, int]) -> DetectedItem:
    sy, sx = shape[0] / work_shape[0], shape[1] / work_shape[1]
    x0, y0, x1, y1 = region.box
    box = (
        int(np.floor(x0 * sx)), int(np.floor(y0 * sy)),
        min(shape[1], int(np.ceil(x1 * sx))), min(shape[0], int(np.ceil(y1 * sy))),
    )
    crop = region.mask[y0:y1, x0:x1].astype(np.uint8)
    mask = cv2.resize(crop, (box[2] - box[0], box[3] - box[1]), interpolation=cv2.INTER_NEAREST).astype(bool)
    return DetectedItem(box=box, category="unknown", score=round(region.score, 4), mask=mask)


_TEXT_CACHE: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def _category_vectors(embedder: Embedder, categories: tuple[str, ...]) -> np.ndarray:
    per_embedder = _TEXT_CACHE.setdefault(embedder, {})
    if categories not in per_embedder:
        per_embedder[categories] = embedder.embed_text([PROMPT_TEMPLATE.format(c) for c in categories])
    return per_embedder[categories]


def _label_zero_shot(
    image: Image.Image, items: list[DetectedItem], embedder: Embedder, categories: tuple[str, ...]
) -> None:
    text = _category_vectors(embedder, categories)
    crops = [image.crop(_padded(item.box, image.size)) for item in items]
    logits = ZERO_SHOT_LOGIT_SCALE * embedder.embed_images(crops) @ text.T
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    for item, row in zip(items, probabilities):
        best = int(row.argmax())
        item.category = categories[best]
        item.label_score = round(float(row[best]), 4)


def _padded(box: tuple[int, int, int, int], size: tuple[int, int], fraction: float = 0.05) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    pad = int(fraction * max(x1 - x0, y1 - y0))
    return max(0, x0 - pad), max(0, y0 - pad), min(size[0], x1 + pad), min(size[1], y1 + pad)


def _kmeans(points: np.ndarray, k: int, iterations: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Plain k-means with deterministic farthest-point seeding."""
    points = np.asarray(points, np.float32)
    k = max(1, min(k, len(points)))
    centres = [points[0]]
    d2 = ((points - centres[0]) ** 2).sum(-1)
    for _ in range(1, k):
        centres.append(points[int(d2.argmax())])
        d2 = np.minimum(d2, ((points - centres[-1]) ** 2).sum(-1))
    centres = np.array(centres)
    labels = np.zeros(len(points), int)
    for _ in range(iterations):
        labels = ((points[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        for cluster in range(k):
            member = points[labels == cluster]
            if len(member):
                centres[cluster] = member.mean(0)
    return centres, labels
