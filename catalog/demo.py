"""A demo catalog drawn offline: product shots of garments, shoes, bags and accessories.

Each picture is a drawn silhouette filled with a named colour (from vision's palette) and a
pattern (solid, stripes, checks, dots), lit softly on a light studio background. A product comes
in one or two colours, each with its own picture, and several sizes, so colour and size filters,
"more like this" and shop-the-look all have something real to find.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# (department, category, shape, price range, sizes)
CATEGORIES = [
    ("Women", "Dresses", "dress", (29, 149), "XS S M L"),
    ("Women", "Skirts", "skirt", (19, 89), "XS S M L"),
    ("Women", "Tops", "tshirt", (9, 49), "XS S M L"),
    ("Women", "Jackets", "jacket", (49, 229), "XS S M L"),
    ("Men", "T-shirts", "tshirt", (9, 45), "S M L XL"),
    ("Men", "Trousers", "trousers", (29, 119), "30 32 34 36"),
    ("Men", "Coats", "coat", (89, 349), "S M L XL"),
    ("Men", "Shorts", "shorts", (15, 59), "S M L XL"),
    ("Shoes", "Sneakers", "sneaker", (39, 159), "38 40 42 44"),
    ("Shoes", "Boots", "boot", (69, 259), "37 39 41 43"),
    ("Bags", "Handbags", "handbag", (39, 399), "one-size"),
    ("Bags", "Backpacks", "backpack", (29, 149), "one-size"),
    ("Accessories", "Hats", "hat", (15, 89), "S M L"),
    ("Accessories", "Caps", "cap", (12, 39), "one-size"),
    ("Accessories", "Scarves", "scarf", (12, 79), "one-size"),
    ("Accessories", "Sunglasses", "sunglasses", (19, 189), "one-size"),
    ("Accessories", "Belts", "belt", (15, 69), "80 90 100"),
    ("Accessories", "Ties", "tie", (15, 59), "one-size"),
]
BRANDS = ["Northwind", "Atelier Lune", "Fjord & Pine", "Calico Street", "Marlow", "Kestrel", "Umber", "Solstice"]
COLORS = {
    "black": (28, 28, 30), "white": (242, 242, 236), "grey": (128, 128, 128), "red": (220, 20, 30),
    "burgundy": (128, 0, 32), "orange": (255, 140, 0), "yellow": (250, 215, 0), "green": (0, 150, 60),
    "olive": (110, 110, 40), "teal": (0, 128, 128), "blue": (30, 90, 220), "navy": (20, 30, 80),
    "purple": (120, 40, 160), "pink": (240, 100, 160), "brown": (120, 70, 30), "beige": (215, 190, 150),
}  # fmt: skip
_SINGULAR = {
    "Dresses": "dress", "Skirts": "skirt", "Tops": "top", "Jackets": "jacket", "T-shirts": "t-shirt",
    "Coats": "coat", "Sneakers": "sneakers", "Boots": "boots", "Handbags": "handbag",
    "Backpacks": "backpack", "Hats": "hat", "Caps": "cap", "Scarves": "scarf", "Belts": "belt", "Ties": "tie",
}  # fmt: skip
PATTERNS = ("solid", "solid", "stripes", "checks", "dots")
PATTERN_WORDS = {"solid": "", "stripes": "striped", "checks": "checked", "dots": "polka-dot"}
SIZE = 384

# Unit-square polygons (x, y; y down); some shapes add details when drawn.
_SHAPES = {
    "tshirt": [(.3, .05), (.42, .1), (.58, .1), (.7, .05), (.98, .25), (.88, .42), (.78, .36), (.78, .95),
               (.22, .95), (.22, .36), (.12, .42), (.02, .25)],
    "jacket": [(.3, .04), (.5, .16), (.7, .04), (.93, .14), (.99, .92), (.85, .92), (.8, .42), (.8, .96),
               (.2, .96), (.2, .42), (.15, .92), (.01, .92), (.07, .14)],
    "coat": [(.32, .02), (.5, .14), (.68, .02), (.9, .1), (.97, .8), (.85, .8), (.8, .35), (.84, .99),
             (.16, .99), (.2, .35), (.15, .8), (.03, .8), (.1, .1)],
    "dress": [(.36, .02), (.42, .02), (.44, .14), (.56, .14), (.58, .02), (.64, .02), (.68, .4), (.95, .98),
              (.05, .98), (.32, .4)],
    "skirt": [(.3, .15), (.7, .15), (.95, .9), (.05, .9)],
    "trousers": [(.22, .02), (.78, .02), (.86, .98), (.58, .98), (.5, .32), (.42, .98), (.14, .98)],
    "shorts": [(.15, .2), (.85, .2), (.95, .78), (.58, .82), (.5, .5), (.42, .82), (.05, .78)],
    "sneaker": [(.02, .62), (.1, .4), (.32, .36), (.46, .18), (.62, .18), (.66, .42), (.94, .58), (.98, .76),
                (.98, .84), (.02, .84)],
    "boot": [(.3, .05), (.62, .05), (.64, .55), (.95, .68), (.98, .9), (.25, .9), (.28, .55)],
    "handbag": [(.12, .38), (.88, .38), (.96, .92), (.04, .92)],
    "backpack": [(.2, .12), (.8, .12), (.88, .3), (.9, .95), (.1, .95), (.12, .3)],
    "hat": [(.02, .72), (.18, .64), (.24, .3), (.36, .16), (.64, .16), (.76, .3), (.82, .64), (.98, .72),
            (.98, .8), (.02, .8)],
    "cap": [(.1, .62), (.16, .35), (.34, .2), (.6, .2), (.78, .36), (.82, .56), (.98, .62), (.98, .7), (.1, .7)],
    "scarf": [(.1, .1), (.9, .1), (.9, .3), (.6, .3), (.6, .95), (.4, .95), (.4, .3), (.1, .3)],
    "sunglasses": [(.04, .38), (.46, .38), (.46, .46), (.54, .46), (.54, .38), (.96, .38), (.92, .66),
                   (.62, .66), (.56, .5), (.44, .5), (.38, .66), (.08, .66)],
    "belt": [(.02, .42), (.98, .42), (.98, .58), (.02, .58)],
    "tie": [(.42, .05), (.58, .05), (.55, .16), (.66, .82), (.5, .96), (.34, .82), (.45, .16)],
}  # fmt: skip


@dataclass(frozen=True)
class DemoLook:
    shape: str
    color: str
    second_color: str
    pattern: str
    stretch: float  # width jitter, so two products of a category differ in silhouette


def _pattern_weight(pattern: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if pattern == "stripes":
        angle, period = rng.uniform(0, math.pi), rng.uniform(14, 34)
        return ((xx * math.cos(angle) + yy * math.sin(angle)) % period < period / 2).astype(np.float32)
    if pattern == "checks":
        period = rng.uniform(18, 40)
        return (((xx // period) + (yy // period)) % 2).astype(np.float32)
    if pattern == "dots":
        period = rng.uniform(18, 32)
        return ((xx % period - period / 2) ** 2 + (yy % period - period / 2) ** 2 < (period / 4) ** 2).astype(
            np.float32
        )
    return np.zeros((h, w), np.float32)


def draw_product(look: DemoLook, seed: int) -> Image.Image:
    """A studio shot (RGB, SIZE×SIZE) of one drawn product."""
    rng = np.random.default_rng(seed)
    scale = 3
    box_w = int(SIZE * 0.8 * look.stretch)
    box_h = int(SIZE * 0.8)
    x0, y0 = (SIZE - box_w) // 2, (SIZE - box_h) // 2
    alpha = Image.new("L", (SIZE * scale, SIZE * scale), 0)
    draw = ImageDraw.Draw(alpha)
    polygon = [((x0 + x * box_w) * scale, (y0 + y * box_h) * scale) for x, y in _SHAPES[look.shape]]
    draw.polygon(polygon, fill=255)
    if look.shape in ("handbag", "backpack"):  # handle or top loop
        handle = (x0 + 0.3 * box_w, y0 + 0.05 * box_h, x0 + 0.7 * box_w, y0 + 0.7 * box_h)
        draw.arc([c * scale for c in handle], 180, 360, fill=255, width=int(0.05 * box_w * scale))
    alpha = alpha.resize((SIZE, SIZE), Image.Resampling.LANCZOS)

    first, second = np.array(COLORS[look.color], np.float32), np.array(COLORS[look.second_color], np.float32)
    weight = _pattern_weight(look.pattern, rng, SIZE, SIZE)[..., None]
    pixels = first * (1 - weight) + second * weight
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    shade = 1.05 - 0.35 * ((xx - 0.45) ** 2 + (yy - 0.4) ** 2)  # soft key light from the upper left
    pixels = np.clip(pixels * shade[..., None] + rng.normal(0, 4, (SIZE, SIZE, 1)), 0, 255).astype(np.uint8)
    item = Image.fromarray(pixels)

    studio = Image.new("RGB", (SIZE, SIZE), (246, 245, 243))
    shadow = alpha.filter(ImageFilter.GaussianBlur(10)).point(lambda v: int(v * 0.35))
    studio.paste((200, 198, 195), (6, 10), Image.composite(shadow, Image.new("L", shadow.size, 0), shadow))
    studio.paste(item, (0, 0), alpha)
    # A thin darker seam along the outline, as stitched edges look in a product shot.
    edge = alpha.filter(ImageFilter.FIND_EDGES).point(lambda v: min(255, v * 2))
    studio.paste(tuple(int(c * 0.6) for c in COLORS[look.color]), (0, 0), edge)
    return studio


def jpeg_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


@dataclass(frozen=True)
class DemoProduct:
    handle: str
    title: str
    department: str
    category: str
    brand: str
    looks: tuple[DemoLook, ...]  # one per colour
    sizes: tuple[str, ...]
    base_price: float


def demo_products(per_category: int = 18, seed: int = 7) -> list[DemoProduct]:
    """The demo catalog's products (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    names = list(COLORS)
    products = []
    for department, category, shape, (low, high), sizes in CATEGORIES:
        for n in range(per_category):
            colors = rng.choice(names, size=1 + int(rng.random() < 0.5), replace=False)
            pattern = str(rng.choice(PATTERNS))
            second = str(rng.choice([c for c in names if c not in colors]))
            stretch = float(rng.uniform(0.8, 1.0))
            looks = tuple(DemoLook(shape, str(c), second, pattern, stretch) for c in colors)
            brand = str(rng.choice(BRANDS))
            noun = _SINGULAR.get(category, category.lower())
            words = [brand, PATTERN_WORDS[pattern], noun]
            products.append(
                DemoProduct(
                    handle=f"demo-{shape}-{department.lower()}-{n:02d}",
                    title=" ".join(w for w in words if w),
                    department=department,
                    category=category,
                    brand=brand,
                    looks=looks,
                    sizes=tuple(sizes.split()),
                    base_price=round(float(rng.uniform(low, high))) - 0.01,
                )
            )
    return products
