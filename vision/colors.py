"""Dominant colours of an item, named from a fixed palette (for colour filters and facets).

`dominant_colors` clusters the item's pixels in CIE Lab (weighted k-means, fixed seed) and names
each cluster after the nearest palette reference colour by CIEDE2000; clusters with the same name
are merged. With a mask only the masked pixels count. Without one, pixels that look like the
background -- close to the colours in a ring around the box, or in the crop's border band when
the box fills the image -- count for little, and central pixels count more, so a red item on a
grey background comes out "red".
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

# Several sRGB references per name cover light and dark shades of the same colour word.
PALETTE: MappingProxyType[str, tuple[tuple[int, int, int], ...]] = MappingProxyType(
    {
        "black": ((0, 0, 0), (28, 28, 30)),
        "white": ((255, 255, 255), (242, 242, 236)),
        "grey": ((128, 128, 128), (88, 88, 90), (170, 170, 170), (205, 205, 205)),
        "red": ((220, 20, 30), (255, 0, 0), (175, 10, 20)),
        "burgundy": ((128, 0, 32), (100, 20, 40)),
        "orange": ((255, 140, 0), (235, 110, 30)),
        "yellow": ((255, 220, 0), (250, 240, 100)),
        "green": ((0, 150, 60), (40, 180, 80), (0, 100, 30), (130, 210, 90)),
        "olive": ((110, 110, 40), (128, 128, 0)),
        "teal": ((0, 128, 128), (40, 170, 160)),
        "blue": ((30, 90, 220), (0, 0, 255), (70, 130, 200), (120, 170, 230), (173, 216, 230)),
        "navy": ((20, 30, 80), (0, 0, 128)),
        "purple": ((120, 40, 160), (160, 90, 210), (85, 20, 100), (177, 156, 217), (210, 160, 220)),
        "pink": ((255, 150, 190), (240, 100, 160), (255, 192, 203)),
        "brown": ((120, 70, 30), (85, 50, 25), (155, 95, 55)),
        "beige": ((225, 205, 170), (205, 180, 140)),
    }
)
MAX_SAMPLES = 4000
WORK_SIDE = 128
BACKGROUND_DELTA_E = 14.0  # colours this close to the background model count as background
RIM_FRACTION = 0.05  # of a mask's crop's long side: where a detector mask may spill onto the background
RIM_SAMPLES = 800  # background colours sampled for the rim's background model


@dataclass(frozen=True)
class NamedColor:
    name: str  # a key of PALETTE
    rgb: tuple[int, int, int]  # the cluster's mean colour
    share: float  # weighted fraction of the item's pixels, 0..1; shares of one result sum to 1

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)


def color_names() -> tuple[str, ...]:
    """Every name `dominant_colors` can return, in palette order (for filter choices)."""
    return tuple(PALETTE)


def name_color(rgb: Sequence[int]) -> str:
    """The palette name nearest (CIEDE2000) to one sRGB colour."""
    return _REFERENCE_NAMES[int(np.argmin(ciede2000(_rgb_to_lab(np.array([rgb])), _REFERENCE_LAB)))]


def dominant_colors(
    image: Image.Image,
    *,
    box: Sequence[int] | None = None,
    mask: np.ndarray | None = None,
    k: int = 3,
) -> list[NamedColor]:
    """Up to `k` named colours of the item in `box` (x0, y0, x1, y1), largest share first.

    `mask` is a boolean array either of the box's size or of the whole image's size.
    """
    rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = _clip_box(box, width, height)
    crop = rgb[y0:y1, x0:x1]
    scale = min(1.0, WORK_SIDE / max(crop.shape[:2]))
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    crop_lab = _rgb_to_lab(cv2.resize(crop, size, interpolation=cv2.INTER_AREA))

    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape == (height, width):
            mask = mask[y0:y1, x0:x1]
        if mask.shape != (y1 - y0, x1 - x0):
            raise ValueError(f"mask shape {mask.shape} fits neither the image nor the box")
        weights = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(np.float32)
        if weights.sum() == 0:
            weights[:] = 1.0
        else:
            weights *= _rim_weights(crop_lab, weights > 0, _background_samples(rgb, (x0, y0, x1, y1), crop_lab))
    else:
        background = _background_samples(rgb, (x0, y0, x1, y1), crop_lab)
        weights = _item_weights(crop_lab, background)

    pixels = crop_lab.reshape(-1, 3)
    weights = weights.reshape(-1)
    keep = np.flatnonzero(weights > 0)
    if len(keep) > MAX_SAMPLES:
        keep = keep[np.linspace(0, len(keep) - 1, MAX_SAMPLES).astype(int)]
    pixels, weights = pixels[keep], weights[keep]
    centres, labels = _weighted_kmeans(pixels, weights, min(k, len(pixels)))

    merged: dict[str, list] = {}
    for cluster, centre in enumerate(centres):
        share = float(weights[labels == cluster].sum())
        if share <= 0:
            continue
        name = _REFERENCE_NAMES[int(np.argmin(ciede2000(centre[None], _REFERENCE_LAB)))]
        entry = merged.setdefault(name, [0.0, np.zeros(3)])
        entry[0] += share
        entry[1] += share * centre
    total = sum(share for share, _ in merged.values()) or 1.0
    colors = [
        NamedColor(name=name, rgb=_lab_to_rgb(lab_sum / share), share=share / total)
        for name, (share, lab_sum) in merged.items()
    ]
    return sorted(colors, key=lambda c: -c.share)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference, broadcasting over leading axes: [n,3] x [m,3] -> [n,m]."""
    lab1 = np.asarray(lab1, np.float64)[:, None, :]
    lab2 = np.asarray(lab2, np.float64)[None, :, :]
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dl = L2 - L1
    dc = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0, dh)
    dH = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    l_mean = (L1 + L2) / 2
    cp_mean = (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(
        c1p * c2p == 0,
        h_sum,
        np.where(np.abs(h1p - h2p) <= 180, h_sum / 2, np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2)),
    )
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    d_theta = 30 * np.exp(-(((h_mean - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(cp_mean**7 / (cp_mean**7 + 25.0**7))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * cp_mean
    s_h = 1 + 0.015 * cp_mean * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt(
        (dl / s_l) ** 2 + (dc / s_c) ** 2 + (dH / s_h) ** 2 + r_t * (dc / s_c) * (dH / s_h)
    )


def _rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (any leading shape, last axis 3) -> CIE Lab (D65), float32."""
    rgb = np.asarray(rgb, np.float32) / 255.0
    shape = rgb.shape
    lab = cv2.cvtColor(rgb.reshape(-1, 1, 3), cv2.COLOR_RGB2Lab)
    return lab.reshape(shape)


def _lab_to_rgb(lab: np.ndarray) -> tuple[int, int, int]:
    rgb = cv2.cvtColor(np.asarray(lab, np.float32).reshape(1, 1, 3), cv2.COLOR_Lab2RGB).reshape(3)
    return tuple(int(v) for v in np.clip(np.rint(rgb * 255), 0, 255))


_REFERENCE_NAMES = [name for name, refs in PALETTE.items() for _ in refs]
_REFERENCE_LAB = _rgb_to_lab(np.array([ref for refs in PALETTE.values() for ref in refs])).astype(np.float64)


def _clip_box(box, width, height) -> tuple[int, int, int, int]:
    if box is None:
        return 0, 0, width, height
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = max(0, min(x0, width - 1)), max(1, min(x1, width))
    y0, y1 = max(0, min(y0, height - 1)), max(1, min(y1, height))
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def _background_samples(rgb: np.ndarray, box: tuple[int, int, int, int], crop_lab: np.ndarray) -> np.ndarray:
    """Lab colours that stand for the background: a ring outside the box, else the crop's border band."""
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = box
    pad = max(4, int(0.08 * max(x1 - x0, y1 - y0)))
    ring_box = (max(0, x0 - pad), max(0, y0 - pad), min(width, x1 + pad), min(height, y1 + pad))
    ring = np.ones((ring_box[3] - ring_box[1], ring_box[2] - ring_box[0]), bool)
    ring[y0 - ring_box[1] : y1 - ring_box[1], x0 - ring_box[0] : x1 - ring_box[0]] = False
    if ring.sum() >= 0.25 * 2 * pad * ((x1 - x0) + (y1 - y0)):
        stride = max(1, max(ring.shape) // (2 * WORK_SIDE))  # a photo's ring holds a million pixels
        region = rgb[ring_box[1] : ring_box[3] : stride, ring_box[0] : ring_box[2] : stride]
        outside = region[ring[::stride, ::stride]]
        step = max(1, len(outside) // MAX_SAMPLES)
        return _rgb_to_lab(outside[::step])
    band = max(1, int(0.1 * min(crop_lab.shape[:2])))
    edge = np.ones(crop_lab.shape[:2], bool)
    edge[band:-band, band:-band] = False
    return crop_lab[edge]


def _item_weights(crop_lab: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Per-pixel weight: low for background-like colours and near the crop's border."""
    background_like = _background_likeness(crop_lab.reshape(-1, 3), background).reshape(crop_lab.shape[:2])
    rows = np.sin(np.linspace(0, np.pi, crop_lab.shape[0])) ** 0.5
    cols = np.sin(np.linspace(0, np.pi, crop_lab.shape[1])) ** 0.5
    centre = 0.5 + 0.5 * np.outer(rows, cols)
    return ((0.08 + 0.92 * (1 - background_like)) * centre).astype(np.float32)


def _rim_weights(crop_lab: np.ndarray, inside: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Per-pixel weight for a mask: low for the mask's rim where it looks like the background.

    The detector's masks come from a smoothed map at a few hundred pixels and spill onto the
    background by a few per cent of the item's size: a pure red item came out "red 91 %, grey 9 %".
    Inside the rim every masked pixel counts in full (a grey item on a grey wall stays grey).
    """
    padded = np.pad(inside.astype(np.uint8), 1)  # the box's edge is the mask's edge too
    depth = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    rim = inside & (depth <= max(2.0, RIM_FRACTION * max(inside.shape)))
    weights = np.ones(inside.shape, np.float32)
    if not rim.any():
        return weights
    samples = np.concatenate([background.reshape(-1, 3), crop_lab[~inside]]).astype(np.float32)
    weights[rim] = 0.05 + 0.95 * (1 - _background_likeness(crop_lab[rim], samples[:: max(1, len(samples) // RIM_SAMPLES)]))
    return weights


def _background_likeness(pixels_lab: np.ndarray, background: np.ndarray) -> np.ndarray:
    """0..1 per Lab pixel ([n, 3]): how close it is to the nearest of 4 colours that model `background`."""
    background = background.reshape(-1, 3)
    centres, _ = _weighted_kmeans(background, np.ones(len(background), np.float32), 4)
    distance = np.sqrt(((pixels_lab[:, None] - centres[None]) ** 2).sum(-1)).min(1)
    return np.exp(-0.5 * (distance / BACKGROUND_DELTA_E) ** 2)


def _weighted_kmeans(points: np.ndarray, weights: np.ndarray, k: int, iterations: int = 15):
    """Deterministic weighted k-means (k-means++ seeding from a fixed seed)."""
    points = np.asarray(points, np.float64)
    weights = np.asarray(weights, np.float64)
    rng = np.random.default_rng(0)
    k = max(1, min(k, len(points)))
    centres = [points[int(np.argmax(weights))]]
    for _ in range(1, k):
        d2 = ((points[:, None] - np.array(centres)[None]) ** 2).sum(-1).min(1) * weights
        if d2.sum() <= 0:
            break
        centres.append(points[rng.choice(len(points), p=d2 / d2.sum())])
    centres = np.array(centres)
    labels = np.zeros(len(points), int)
    for _ in range(iterations):
        labels = ((points[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        updated = centres.copy()
        for cluster in range(len(centres)):
            member = labels == cluster
            mass = weights[member].sum()
            if mass > 0:
                updated[cluster] = (points[member] * weights[member, None]).sum(0) / mass
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres, labels
