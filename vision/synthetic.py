"""Deterministic synthetic scenes with known item boxes, for tests and benchmarks.

`make_scene(seed)` draws garment, bag, shoe and hat silhouettes (solid, striped, checked, dotted
or gradient fills, with fabric noise and shading), rotates and scales them, and composites them
onto a background under a random lighting gradient. Backgrounds are photographs when
`background_paths` is given (JPEG/PNG files, e.g. from /usr/share/backgrounds on Debian with
gnome-backgrounds installed), else procedural textures: value noise, gradients, wallpaper
stripes, wood grain, woven fabric, tiles. The same seed always gives the same scene.

`place_on_background(item_image)` puts one given product image (RGBA, or RGB on a plain light
background which is cut away) onto a background: "a photo made by placing a catalog product's
image on a background".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DRAWN_CATEGORIES = ("t-shirt", "jacket", "trousers", "dress", "skirt", "bag", "shoe", "hat")
BACKGROUND_KINDS = ("noise", "gradient", "stripes", "wood", "fabric", "tiles", "clutter")
DEFAULT_BACKGROUND_DIR = "/usr/share/backgrounds"
_PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")

# Unit-square outlines (x, y in 0..1, y down) for each drawn category.
_OUTLINES = {
    "t-shirt": [(0.3, 0.0), (0.42, 0.06), (0.58, 0.06), (0.7, 0.0), (1.0, 0.2), (0.88, 0.4), (0.78, 0.34),
                (0.78, 1.0), (0.22, 1.0), (0.22, 0.34), (0.12, 0.4), (0.0, 0.2)],
    "jacket": [(0.3, 0.0), (0.5, 0.12), (0.7, 0.0), (0.92, 0.1), (1.0, 0.95), (0.84, 0.95), (0.8, 0.4),
               (0.8, 1.0), (0.2, 1.0), (0.2, 0.4), (0.16, 0.95), (0.0, 0.95), (0.08, 0.1)],
    "trousers": [(0.15, 0.0), (0.85, 0.0), (0.95, 1.0), (0.6, 1.0), (0.5, 0.3), (0.4, 1.0), (0.05, 1.0)],
    "dress": [(0.32, 0.0), (0.4, 0.0), (0.42, 0.12), (0.58, 0.12), (0.6, 0.0), (0.68, 0.0), (0.7, 0.4),
              (1.0, 1.0), (0.0, 1.0), (0.3, 0.4)],
    "skirt": [(0.25, 0.0), (0.75, 0.0), (1.0, 1.0), (0.0, 1.0)],
    "shoe": [(0.0, 0.55), (0.08, 0.3), (0.3, 0.25), (0.45, 0.0), (0.62, 0.0), (0.66, 0.35), (0.95, 0.55),
             (1.0, 0.8), (1.0, 1.0), (0.0, 1.0)],
    "hat": [(0.0, 0.85), (0.15, 0.75), (0.22, 0.3), (0.35, 0.08), (0.65, 0.08), (0.78, 0.3), (0.85, 0.75),
            (1.0, 0.85), (1.0, 1.0), (0.0, 1.0)],
    "bag": [(0.1, 0.35), (0.9, 0.35), (1.0, 1.0), (0.0, 1.0)],
}
_ASPECT = {"t-shirt": 1.0, "jacket": 1.1, "trousers": 1.5, "dress": 1.5, "skirt": 0.9, "shoe": 0.5,
           "hat": 0.6, "bag": 1.0}  # height / width
_ITEM_COLORS = [(200, 30, 40), (30, 60, 170), (20, 25, 45), (240, 240, 235), (40, 130, 60), (230, 190, 40),
                (120, 70, 40), (230, 120, 160), (110, 50, 140), (235, 120, 30), (130, 130, 130),
                (215, 195, 160), (20, 20, 20), (90, 150, 210), (150, 20, 40)]


@dataclass
class SceneItem:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), tight around the item's pixels
    category: str
    mask: np.ndarray = field(repr=False)  # bool [H, W], the item's visible pixels


@dataclass
class Scene:
    image: Image.Image  # RGB
    items: list[SceneItem]
    seed: int
    background: str  # procedural kind or photo path


def list_background_photos(directory: str = DEFAULT_BACKGROUND_DIR) -> list[str]:
    """Photo files under `directory` (recursively), sorted; empty when it does not exist."""
    root = Path(directory)
    if not root.is_dir():
        return []
    return sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in _PHOTO_SUFFIXES and p.is_file())


def make_scene(
    seed: int,
    *,
    size: tuple[int, int] = (640, 480),
    n_items: int = 3,
    background_paths: Sequence[str] | None = None,
    categories: Sequence[str] = DRAWN_CATEGORIES,
    item_images: Sequence[Image.Image] | None = None,
) -> Scene:
    """A scene of `n_items` drawn items (or the given item images) on one background."""
    rng = np.random.default_rng(seed)
    background, kind = make_background(rng, size, background_paths)
    canvas = background.convert("RGBA")
    width, height = size
    placed: list[tuple[str, np.ndarray]] = []
    boxes: list[tuple[int, int, int, int]] = []
    for index in range(n_items):
        if item_images:
            item = _cut_out(item_images[index % len(item_images)])
            category = "product"
        else:
            category = str(rng.choice(list(categories)))
            item = draw_item(rng, category)
        sprite = _transform_sprite(rng, item, (width, height), n_items)
        position = _free_position(rng, sprite, (width, height), boxes)
        if position is None:
            continue
        layer = Image.new("RGBA", size, (0, 0, 0, 0))
        layer.paste(sprite, position)
        canvas = _with_shadow(canvas, layer, rng)
        canvas = Image.alpha_composite(canvas, layer)
        alpha = np.asarray(layer)[..., 3] > 127
        for _, earlier in placed:
            earlier &= ~alpha  # a later item hides what it covers
        placed.append((category, alpha))
        boxes.append(_box_of(alpha))
    image = _apply_lighting(rng, canvas.convert("RGB"))
    items = [SceneItem(box=_box_of(mask), category=cat, mask=mask) for cat, mask in placed if mask.sum() > 50]
    return Scene(image=image, items=items, seed=seed, background=kind)


def place_on_background(
    item_image: Image.Image,
    *,
    seed: int = 0,
    size: tuple[int, int] = (640, 480),
    background: Image.Image | None = None,
    background_paths: Sequence[str] | None = None,
    scale: tuple[float, float] = (0.45, 0.7),
    category: str = "product",
) -> Scene:
    """One product image placed on a background at a random position, scale and small rotation.

    `scale` bounds the item's long side as a fraction of the scene's short side. An RGB item image
    has its plain light border region (a typical catalog background) made transparent first.
    """
    rng = np.random.default_rng(seed)
    if background is None:
        background, kind = make_background(rng, size, background_paths)
    else:
        background, kind = _fit(background.convert("RGB"), size), "given"
    item = _cut_out(item_image)
    short = min(size)
    target = rng.uniform(*scale) * short
    factor = target / max(item.size)
    item = _resized(item, factor)
    item = item.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BICUBIC, expand=True)
    x = int(rng.integers(0, max(1, size[0] - item.width)))
    y = int(rng.integers(0, max(1, size[1] - item.height)))
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    layer.paste(item, (x, y))
    canvas = _with_shadow(background.convert("RGBA"), layer, rng)
    canvas = Image.alpha_composite(canvas, layer)
    mask = np.asarray(layer)[..., 3] > 127
    image = _apply_lighting(rng, canvas.convert("RGB"))
    item_truth = SceneItem(box=_box_of(mask), category=category, mask=mask)
    return Scene(image=image, items=[item_truth], seed=seed, background=kind)


def make_background(
    rng: np.random.Generator, size: tuple[int, int], background_paths: Sequence[str] | None = None
) -> tuple[Image.Image, str]:
    if background_paths:
        path = str(background_paths[int(rng.integers(len(background_paths)))])
        with Image.open(path) as photo:
            photo.draft("RGB", (size[0] * 2, size[1] * 2))
            return _fit(photo.convert("RGB"), size, rng), path
    kind = str(rng.choice(BACKGROUND_KINDS))
    return Image.fromarray(_procedural(rng, kind, size)), kind


def draw_item(rng: np.random.Generator, category: str, width: int = 240) -> Image.Image:
    """An RGBA sprite of a drawn item with a random fill, fabric noise and soft shading."""
    height = int(width * _ASPECT[category])
    scale = 4  # supersampled outline for smooth edges
    outline = [(x * (width * scale - 1), y * (height * scale - 1)) for x, y in _OUTLINES[category]]
    alpha = Image.new("L", (width * scale, height * scale), 0)
    draw = ImageDraw.Draw(alpha)
    draw.polygon(outline, fill=255)
    if category == "bag":  # a handle above the body
        box = (0.28 * width * scale, 0.02 * height * scale, 0.72 * width * scale, 0.7 * height * scale)
        draw.arc(box, 180, 360, fill=255, width=int(0.06 * width * scale))
    alpha = alpha.resize((width, height), Image.Resampling.LANCZOS)

    fill = _fill(rng, (height, width))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    shade = 1.0 - 0.25 * ((xx / width - 0.5) ** 2 + (yy / height - 0.5) ** 2) * 2
    fill = np.clip(fill * shade[..., None], 0, 255).astype(np.uint8)
    sprite = Image.fromarray(fill).convert("RGBA")
    edge = alpha.filter(ImageFilter.FIND_EDGES).filter(ImageFilter.MaxFilter(3))
    sprite = Image.composite(Image.new("RGBA", sprite.size, (0, 0, 0, 255)), sprite, edge.point(lambda v: v // 3))
    sprite.putalpha(alpha)
    return sprite


def _fill(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    height, width = shape
    first, second = (np.array(_ITEM_COLORS[i], np.float32) for i in rng.choice(len(_ITEM_COLORS), 2, replace=False))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = rng.choice(["solid", "solid", "stripes", "checks", "dots", "gradient"])
    if kind == "solid":
        weight = np.zeros(shape, np.float32)
    elif kind == "stripes":
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(10, 30)
        weight = ((xx * math.cos(angle) + yy * math.sin(angle)) % period < period / 2).astype(np.float32)
    elif kind == "checks":
        period = rng.uniform(14, 36)
        weight = (((xx // period) + (yy // period)) % 2).astype(np.float32)
    elif kind == "dots":
        period = rng.uniform(14, 30)
        dist = (xx % period - period / 2) ** 2 + (yy % period - period / 2) ** 2
        weight = (dist < (period / 4) ** 2).astype(np.float32)
    else:
        weight = yy / max(height - 1, 1)
    pixels = first * (1 - weight[..., None]) + second * weight[..., None]
    pixels += rng.normal(0, 6, (height, width, 1)).astype(np.float32)  # weave noise
    return np.clip(pixels, 0, 255)


def _procedural(rng: np.random.Generator, kind: str, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    base = rng.uniform(40, 225, 3)
    other = np.clip(base + rng.uniform(-90, 90, 3), 0, 255)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "noise":
        weight = _value_noise(rng, (height, width), octaves=5)
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * math.pi)
        proj = xx * math.cos(angle) + yy * math.sin(angle)
        weight = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
        weight = weight * 0.85 + 0.15 * _value_noise(rng, (height, width), octaves=3)
    elif kind == "stripes":
        period = rng.uniform(20, 60)
        weight = 0.5 + 0.5 * np.sin(2 * math.pi * (xx if rng.random() < 0.5 else yy) / period)
        weight = 0.6 * weight + 0.4 * _value_noise(rng, (height, width), octaves=4)
    elif kind == "wood":
        base, other = np.array([150, 100, 60]) * rng.uniform(0.7, 1.2), np.array([95, 60, 35]) * rng.uniform(0.7, 1.2)
        warp = _value_noise(rng, (height, width), octaves=3) * 25
        weight = 0.5 + 0.5 * np.sin((yy + warp * 4) / rng.uniform(4, 10))
    elif kind == "fabric":
        period = rng.uniform(4, 9)
        weave = (np.sin(xx * 2 * math.pi / period) * np.sin(yy * 2 * math.pi / period) > 0).astype(np.float32)
        weight = 0.35 * weave + 0.65 * _value_noise(rng, (height, width), octaves=4)
    elif kind == "tiles":
        period = rng.uniform(40, 110)
        grout = ((xx % period) < 3) | ((yy % period) < 3)
        weight = np.where(grout, 1.0, 0.25 * _value_noise(rng, (height, width), octaves=4))
    elif kind == "clutter":
        return _clutter(rng, size, base)
    else:
        raise ValueError(f"unknown background kind {kind!r}")
    pixels = np.asarray(base, np.float32) * (1 - weight[..., None]) + np.asarray(other, np.float32) * weight[..., None]
    pixels += rng.normal(0, 4, (height, width, 3)).astype(np.float32)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _clutter(rng: np.random.Generator, size: tuple[int, int], base: np.ndarray) -> np.ndarray:
    """A table-top of small objects: many soft blobs and lines in assorted colours."""
    width, height = size
    image = Image.fromarray(_procedural(rng, "noise", size))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(25, 60))):
        color = tuple(int(v) for v in np.clip(base + rng.normal(0, 70, 3), 0, 255))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(3, 18))
        if rng.random() < 0.6:
            draw.ellipse((x - r, y - r, x + r, y + int(r * rng.uniform(0.5, 1.5))), fill=color)
        else:
            end = (x + int(rng.integers(-60, 60)), y + int(rng.integers(-60, 60)))
            draw.line((x, y, *end), fill=color, width=int(rng.integers(1, 4)))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(1.2)))


def _value_noise(rng: np.random.Generator, shape: tuple[int, int], octaves: int) -> np.ndarray:
    height, width = shape
    total = np.zeros(shape, np.float32)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        cells = 2 ** (octave + 2)
        grid = rng.random((cells, cells)).astype(np.float32)
        total += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        norm += amplitude
        amplitude *= 0.5
    total /= norm
    return np.clip((total - total.min()) / max(float(np.ptp(total)), 1e-6), 0, 1)


def _transform_sprite(
    rng: np.random.Generator, sprite: Image.Image, size: tuple[int, int], n_items: int
) -> Image.Image:
    short = min(size)
    target = rng.uniform(0.28, 0.5) * short * (1.0 if n_items <= 3 else 0.8)
    factor = target / max(sprite.size)
    sprite = _resized(sprite, factor)
    return sprite.rotate(float(rng.uniform(-25, 25)), resample=Image.Resampling.BICUBIC, expand=True)


def _free_position(rng, sprite, size, boxes, attempts: int = 40) -> tuple[int, int] | None:
    width, height = size
    best, best_overlap = None, 1.0
    for _ in range(attempts):
        x = int(rng.integers(0, max(1, width - sprite.width)))
        y = int(rng.integers(0, max(1, height - sprite.height)))
        box = (x, y, x + sprite.width, y + sprite.height)
        overlap = max((_overlap_fraction(box, other) for other in boxes), default=0.0)
        if overlap < best_overlap:
            best, best_overlap = (x, y), overlap
        if overlap == 0.0:
            break
    return best if best_overlap < 0.25 else None


def _overlap_fraction(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller else 0.0


def _with_shadow(canvas: Image.Image, layer: Image.Image, rng: np.random.Generator) -> Image.Image:
    alpha = layer.getchannel("A")
    offset = (int(rng.integers(2, 9)), int(rng.integers(2, 9)))
    shadow_alpha = Image.new("L", layer.size, 0)
    shadow_alpha.paste(alpha.point(lambda v: v * 90 // 255), offset)
    shadow = Image.new("RGBA", layer.size, (0, 0, 0, 0))
    shadow.putalpha(shadow_alpha.filter(ImageFilter.GaussianBlur(5)))
    return Image.alpha_composite(canvas, shadow)


def _apply_lighting(rng: np.random.Generator, image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, np.float32)
    height, width = pixels.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    proj = (xx / width - 0.5) * math.cos(angle) + (yy / height - 0.5) * math.sin(angle)
    gain = rng.uniform(0.8, 1.15) + rng.uniform(0.0, 0.35) * proj
    cast = 1.0 + rng.uniform(-0.06, 0.06, 3)
    pixels = pixels * gain[..., None] * cast
    pixels += rng.normal(0, 2.0, pixels.shape)  # sensor noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _cut_out(image: Image.Image) -> Image.Image:
    """RGBA: keep existing alpha; else make the light plain background connected to the border clear."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return image.convert("RGBA")
    rgb = np.asarray(image.convert("RGB"))
    light = (rgb.min(axis=2) > 235).astype(np.uint8)
    height, width = light.shape
    flood = np.zeros((height + 2, width + 2), np.uint8)
    background = light.copy()
    for x, y in ((0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)):
        if background[y, x] == 1:
            cv2.floodFill(background, flood, (x, y), 2)
    alpha = np.where(background == 2, 0, 255).astype(np.uint8)
    rgba = np.dstack([rgb, alpha])
    return Image.fromarray(rgba, "RGBA")


def _fit(image: Image.Image, size: tuple[int, int], rng: np.random.Generator | None = None) -> Image.Image:
    """Scale to cover `size` and crop (randomly when `rng` is given, else centred)."""
    width, height = size
    factor = max(width / image.width, height / image.height)
    scaled_size = (math.ceil(image.width * factor), math.ceil(image.height * factor))
    scaled = image.resize(scaled_size, Image.Resampling.BILINEAR)
    spare_x, spare_y = scaled.width - width, scaled.height - height
    x = int(rng.integers(0, spare_x + 1)) if rng is not None else spare_x // 2
    y = int(rng.integers(0, spare_y + 1)) if rng is not None else spare_y // 2
    return scaled.crop((x, y, x + width, y + height))


def _resized(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return (0, 0, 0, 0)
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
