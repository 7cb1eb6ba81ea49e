"""Deterministic synthetic print ads, pages and phone photos of them, for tests and benchmarks.

- `make_template(seed)`: a retailer's template: brand name and logo, colour scheme, typefaces,
  a layout (hero picture, headline, product tiles) and a price band with fixed small print.
- `make_creative(template, seed)`: one ad page in that template with its own content: a hero
  picture (a given photograph, or procedural imagery: a textured backdrop with drawn products),
  a headline, product tiles with names and prices. Returns the page and the boxes of the products
  it promotes. The same (template, seed) always gives the same page.
- `make_unregistered_page(template, seed)`: a page in the same template with other content (seeds
  drawn from a separate stream, so it never equals a `make_creative` page).
- `make_plain_page(seed)`: a magazine page that is not an ad of any template (columns of text and a
  picture).
- `photograph(page, seed, difficulty=...)`: a phone photo of the printed page lying among other
  things (a table top, the facing page of a magazine spread, a hand or a mug over it), with
  perspective, rotation, scale, blur, glare, lighting, noise and JPEG compression. Returns the
  photo and the true homography (page pixels -> photo pixels).

No photographs ship with this machine (Debian's gnome-/mate-backgrounds are not installed), so
imagery is procedural unless the caller passes a `photo` to `make_creative`. The drawn products
and backdrops come from `vision.synthetic`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from vision.synthetic import DRAWN_CATEGORIES, draw_item, make_background

PAGE_SIZE = (720, 960)  # width, height of a creative at the default resolution (3:4 portrait)
PHOTO_SIZE = (768, 1024)  # width, height of a phone photo (portrait, as an app would upload it)
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_FONTS = {
    "sans": "DejaVuSans.ttf",
    "sans-bold": "DejaVuSans-Bold.ttf",
    "serif": "DejaVuSerif.ttf",
    "serif-bold": "DejaVuSerif-Bold.ttf",
    "condensed": "DejaVuSansCondensed.ttf",
    "condensed-bold": "DejaVuSansCondensed-Bold.ttf",
    "mono": "DejaVuSansMono.ttf",
}
_SYLLABLES = ("ka", "lo", "mi", "ra", "ven", "so", "ta", "nel", "dor", "fi", "lu", "ber", "sa", "tor", "mo",
              "ri", "an", "el", "qu", "zo", "ne", "pa", "vi", "ro", "ti", "ma", "gor", "le", "xa", "ul")
_HEADLINE_WORDS = ("new", "season", "summer", "winter", "sale", "fresh", "look", "style", "bold", "classic",
                   "city", "weekend", "edition", "limited", "iconic", "easy", "modern", "light", "urban",
                   "essentials", "collection", "now", "made", "for", "you", "every", "day", "night", "out")
_SMALL_PRINT = ("Free delivery from 50", "Prices incl. VAT", "While stocks last", "Scan to shop",
                "Returns within 30 days", "Members save more")
LOGO_KINDS = ("circle", "diamond", "badge", "star", "hexagon", "bars")
LAYOUTS = ("hero-top", "split", "grid")
DETAIL_LEVELS = ("minimal", "plain", "rich")
DIFFICULTIES = ("easy", "normal", "hard")

# Photo conditions per difficulty: the hard ranges are the full operating range of the matcher.
_CONDITIONS = {
    "easy": dict(tilt=15, rotation=10, scale=(0.6, 0.95), blur=0.6, occlusion=0.1, glare=0.3, jpeg=(80, 95)),
    "normal": dict(tilt=30, rotation=30, scale=(0.45, 1.0), blur=1.2, occlusion=0.25, glare=0.6, jpeg=(65, 92)),
    "hard": dict(tilt=45, rotation=180, scale=(0.3, 1.0), blur=2.0, occlusion=0.4, glare=1.0, jpeg=(50, 90)),
}


@dataclass(frozen=True)
class Template:
    seed: int
    brand: str
    logo: str  # one of LOGO_KINDS
    layout: str  # one of LAYOUTS
    paper: tuple[int, int, int]
    ink: tuple[int, int, int]
    accent: tuple[int, int, int]
    band: tuple[int, int, int]
    headline_font: str
    body_font: str
    small_print: str
    size: tuple[int, int] = PAGE_SIZE


@dataclass
class ProductBox:
    name: str
    price: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in page pixels, x1/y1 exclusive


@dataclass
class Creative:
    image: Image.Image  # RGB page
    products: list[ProductBox]
    template_seed: int
    seed: int
    detail: str  # one of DETAIL_LEVELS


def make_template(seed: int, *, size: tuple[int, int] = PAGE_SIZE) -> Template:
    rng = np.random.default_rng([seed, 7001])
    paper = tuple(int(v) for v in rng.integers(225, 256, 3)) if rng.random() < 0.7 else _dark(rng)
    ink = (20, 20, 25) if sum(paper) > 450 else (245, 245, 240)
    accent = _saturated(rng)
    band = _saturated(rng) if rng.random() < 0.5 else tuple(int(v * 0.6) for v in accent)
    return Template(
        seed=seed,
        brand=_word(rng, 2, 3).upper(),
        logo=str(rng.choice(LOGO_KINDS)),
        layout=LAYOUTS[seed % len(LAYOUTS)],
        paper=paper,
        ink=ink,
        accent=accent,
        band=band,
        headline_font=str(rng.choice(["sans-bold", "serif-bold", "condensed-bold"])),
        body_font=str(rng.choice(["sans", "serif", "condensed"])),
        small_print=" · ".join(rng.choice(_SMALL_PRINT, 2, replace=False)),
        size=size,
    )


def make_creative(
    template: Template, seed: int, photo: Image.Image | None = None, *, detail: str | None = None
) -> Creative:
    """One ad page of `template`; `detail` (minimal / plain / rich) is drawn from the seed when None."""
    return _render(template, np.random.default_rng([template.seed, seed, 1]), seed, photo, detail)


def make_unregistered_page(template: Template, seed: int, *, detail: str | None = None) -> Image.Image:
    """A page of the same template whose content comes from a stream `make_creative` never uses."""
    return _render(template, np.random.default_rng([template.seed, seed, 2]), seed, None, detail).image


def make_plain_page(seed: int, *, size: tuple[int, int] = PAGE_SIZE) -> Image.Image:
    """A magazine page with no ad template: title, columns of text, a picture and a caption."""
    rng = np.random.default_rng([seed, 7003])
    width, height = size
    u = width / 720
    page = Image.new("RGB", size, tuple(int(v) for v in rng.integers(236, 256, 3)))
    draw = ImageDraw.Draw(page)
    ink = (25, 25, 30)
    face = str(rng.choice(["serif", "sans", "condensed"]))
    title = _font(face + "-bold" if face != "mono" else face, int(40 * u))
    draw.text((int(40 * u), int(36 * u)), _title(rng, 3), font=title, fill=ink)
    picture_top = int(110 * u)
    picture_h = int(rng.uniform(0.25, 0.4) * height)
    picture_box = (int(40 * u), picture_top, width - int(40 * u), picture_top + picture_h)
    picture, _ = make_background(rng, (picture_box[2] - picture_box[0], picture_h))
    page.paste(picture, picture_box[:2])
    body = _font(face, int(15 * u))
    columns = int(rng.integers(2, 4))
    gap = int(20 * u)
    column_w = (width - int(80 * u) - gap * (columns - 1)) // columns
    y0 = picture_box[3] + int(24 * u)
    for column in range(columns):
        x = int(40 * u) + column * (column_w + gap)
        y = y0
        while y < height - int(50 * u):
            line = _sentence(rng, max_chars=int(column_w / (8.2 * u)))
            draw.text((x, y), line, font=body, fill=ink)
            y += int(22 * u)
            if rng.random() < 0.08:
                y += int(14 * u)  # paragraph break
    draw.text((width // 2 - int(10 * u), height - int(34 * u)), str(int(rng.integers(2, 220))), font=body, fill=ink)
    return page


def photograph(
    page: Image.Image,
    seed: int,
    *,
    difficulty: str = "normal",
    size: tuple[int, int] = PHOTO_SIZE,
) -> tuple[Image.Image, np.ndarray]:
    """A phone photo of the printed `page` in a scene, and the homography page px -> photo px.

    Conditions are drawn uniformly within the `difficulty` ranges (see `_CONDITIONS`): tilt of the
    page plane against the camera, in-plane rotation, the page's size relative to the frame, the
    share of the page hidden by an object or by the frame edge, blur, glare, lighting, noise and
    JPEG quality. The page lies on a table top, as one side of a magazine spread when the seed says so.
    """
    if difficulty not in _CONDITIONS:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}")
    cond = _CONDITIONS[difficulty]
    rng = np.random.default_rng([seed, 7004])
    width, height = size
    homography = _page_pose(rng, page.size, size, cond)

    # the table top is rendered at half resolution (it is out of focus anyway), the other pages at
    # half size and scaled by the homography: a photo then takes ~0.15 s instead of ~0.5 s
    scene, _ = make_background(rng, (width // 2, height // 2))
    canvas = cv2.resize(np.asarray(scene.convert("RGB"), np.float32), size, interpolation=cv2.INTER_LINEAR)
    half = (max(1, page.width // 2), max(1, page.height // 2))
    double = np.diag([page.width / half[0], page.height / half[1], 1.0])
    other = make_plain_page(int(rng.integers(1 << 30)), size=half)
    if rng.random() < 0.5:  # the facing page of a magazine spread, bound at the left or right edge
        side = -1 if rng.random() < 0.5 else 1
        shift = np.array([[1, 0, side * page.width], [0, 1, 0], [0, 0, 1]], np.float64)
        canvas = _paste_warped(canvas, other, homography @ shift @ double, size, shadow=False)
    else:  # a smaller leaflet lying next to the page
        offset = np.array([[1, 0, rng.uniform(-0.4, 1.0) * page.width], [0, 1, rng.uniform(-0.4, 1.0) * page.height],
                           [0, 0, 1]])
        turn = _rotation_about(rng.uniform(-40, 40), (page.width / 4, page.height / 4))
        canvas = _paste_warped(canvas, other, homography @ offset @ turn, size, shadow=True)
    canvas = _paste_warped(canvas, page, homography, size, shadow=True)
    canvas = _occlude(rng, canvas, homography, page.size, cond["occlusion"])
    canvas = _light(rng, canvas, homography, page.size, cond["glare"])
    sigma = rng.uniform(0.0, cond["blur"])
    if rng.random() < 0.25:
        canvas = _motion_blur(canvas, length=1 + 2 * sigma * 2, angle=rng.uniform(0, 180))
    elif sigma > 0.2:
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    noise = np.empty_like(canvas)
    cv2.setRNGSeed(int(rng.integers(1 << 31)))
    cv2.randn(noise, 0.0, float(rng.uniform(1.0, 5.0)))  # sensor noise; cv2 is ~10x faster than numpy here
    canvas += noise
    photo = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=int(rng.integers(*cond["jpeg"])))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB"), homography


def page_corners(page_size: tuple[int, int]) -> np.ndarray:
    width, height = page_size
    return np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)


def project(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    mapped = np.c_[points, np.ones(len(points))] @ np.asarray(homography, np.float64).T
    return mapped[:, :2] / mapped[:, 2:3]


def visible_fraction(homography: np.ndarray, page_size: tuple[int, int], photo_size: tuple[int, int]) -> float:
    """The share of the page that lands inside the photo frame (occluders not counted)."""
    quad = project(homography, page_corners(page_size)).astype(np.float32)
    frame = np.array([[0, 0], [photo_size[0], 0], [photo_size[0], photo_size[1]], [0, photo_size[1]]], np.float32)
    area, _ = cv2.intersectConvexConvex(quad, frame)
    return float(area / max(cv2.contourArea(quad), 1e-6))


# --- pages -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where a template puts its parts on a page (page pixels x0, y0, x1, y1; `unit`: pixels per
    1/720 of the page width)."""

    unit: float
    header: tuple[int, int, int, int]
    hero: tuple[int, int, int, int]
    text: tuple[int, int, int, int]  # headline first, then products and body text
    band: tuple[int, int, int, int]  # the price band at the foot


def page_layout(template: Template) -> Layout:
    width, height = template.size
    u = width / 720
    header_h = int(90 * u)
    band_h = int(110 * u)
    margin = int(24 * u)
    body = (margin, header_h + margin // 2, width - margin, height - band_h - margin // 2)
    if template.layout == "hero-top":
        hero = (body[0], body[1], body[2], body[1] + int((body[3] - body[1]) * 0.58))
        text_area = (body[0], hero[3] + margin // 2, body[2], body[3])
    elif template.layout == "split":
        hero = (body[0], body[1], body[0] + int((body[2] - body[0]) * 0.56), body[3])
        text_area = (hero[2] + margin, body[1], body[2], body[3])
    else:
        hero = (body[0], body[1] + int(80 * u), body[2], body[3] - int(20 * u))
        text_area = (body[0], body[1], body[2], hero[1])
    return Layout(u, (0, 0, width, header_h), hero, text_area, (0, height - band_h, width, height))


def _render(template: Template, rng: np.random.Generator, seed: int, photo: Image.Image | None,
            detail: str | None) -> Creative:
    if detail is None:
        detail = str(rng.choice(DETAIL_LEVELS, p=[0.12, 0.28, 0.6]))
    layout = page_layout(template)
    u = layout.unit
    page = Image.new("RGB", template.size, template.paper)
    draw = ImageDraw.Draw(page)
    _draw_header(page, template, layout.header[3])
    n_products = int(rng.integers(1, 4)) if detail != "minimal" else 1
    hero, text_area = layout.hero, layout.text

    products = _draw_hero(page, rng, hero, n_products, detail, photo)
    headline = _title(rng, 2 if template.layout == "split" else 3)
    _draw_text_area(draw, rng, template, text_area, headline, products, detail, u)
    _draw_band(page, template, rng, products, layout.band[3] - layout.band[1], u)
    return Creative(image=page, products=products, template_seed=template.seed, seed=seed, detail=detail)


def _draw_header(page: Image.Image, template: Template, header_h: int) -> None:
    width = page.width
    u = width / 720
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, width, header_h), fill=template.accent)
    cx, cy, r = int(60 * u), header_h // 2, int(header_h * 0.36)
    light = (250, 250, 245)
    _draw_logo(draw, template.logo, (cx, cy), r, light, template.accent)
    brand_font = _font(template.headline_font, int(header_h * 0.42))
    draw.text((cx + r + int(18 * u), cy), template.brand, font=brand_font, fill=light, anchor="lm")
    tagline = _font(template.body_font, int(14 * u))
    draw.text((width - int(20 * u), cy), f"{template.brand.lower()}.com", font=tagline, fill=light, anchor="rm")
    # a fixed ornament under the header: part of the template on every page
    for i in range(0, width, int(18 * u)):
        draw.rectangle((i, header_h, i + int(9 * u), header_h + int(4 * u)), fill=template.band)


def _draw_logo(draw: ImageDraw.ImageDraw, kind: str, centre: tuple[int, int], r: int, fg, bg) -> None:
    cx, cy = centre
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fg)
        draw.ellipse((cx - r // 2, cy - r // 2, cx + r // 2, cy + r // 2), fill=bg)
        draw.rectangle((cx - r // 6, cy - r, cx + r // 6, cy), fill=bg)
    elif kind == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fg)
        draw.polygon([(cx, cy - r // 2), (cx + r // 2, cy), (cx, cy + r // 2)], fill=bg)
    elif kind == "badge":
        draw.rounded_rectangle((cx - r, cy - r, cx + r, cy + r), radius=r // 3, fill=fg)
        draw.line((cx - r // 2, cy + r // 2, cx + r // 2, cy - r // 2), fill=bg, width=max(2, r // 4))
        draw.ellipse((cx - r // 2, cy - r // 2, cx - r // 6, cy - r // 6), fill=bg)
    elif kind == "star":
        points = [(cx + (r if i % 2 == 0 else r * 0.45) * math.cos(math.pi / 5 * i - math.pi / 2),
                   cy + (r if i % 2 == 0 else r * 0.45) * math.sin(math.pi / 5 * i - math.pi / 2)) for i in range(10)]
        draw.polygon(points, fill=fg)
    elif kind == "hexagon":
        points = [(cx + r * math.cos(math.pi / 3 * i), cy + r * math.sin(math.pi / 3 * i)) for i in range(6)]
        draw.polygon(points, fill=fg)
        draw.text((cx, cy), "&", font=_font("serif-bold", r), fill=bg, anchor="mm")
    else:  # bars
        for i in range(4):
            x = cx - r + i * r // 2
            draw.rectangle((x, cy + r - (i + 1) * r // 2, x + r // 3, cy + r), fill=fg)


def _draw_hero(page: Image.Image, rng: np.random.Generator, hero: tuple[int, int, int, int], n_products: int,
               detail: str, photo: Image.Image | None) -> list[ProductBox]:
    hero_w, hero_h = hero[2] - hero[0], hero[3] - hero[1]
    if photo is not None:
        backdrop = _cover(photo.convert("RGB"), (hero_w, hero_h))
    elif detail == "minimal":
        backdrop = Image.new("RGB", (hero_w, hero_h), _pastel(rng))
    elif detail == "plain":
        top, bottom = np.array(_pastel(rng), np.float32), np.array(_pastel(rng), np.float32)
        ramp = np.linspace(0, 1, hero_h, dtype=np.float32)[:, None, None]
        pixels = top * (1 - ramp) + bottom * ramp
        backdrop = Image.fromarray(np.broadcast_to(pixels, (hero_h, hero_w, 3)).astype(np.uint8))
    else:
        backdrop, _ = make_background(rng, (hero_w, hero_h))
        backdrop = _scatter_shapes(backdrop, rng, int(rng.integers(4, 14)))
    canvas = backdrop.convert("RGBA")
    products: list[ProductBox] = []
    slot_w = hero_w // n_products
    for index in range(n_products):
        category = str(rng.choice(DRAWN_CATEGORIES))
        # small pages get small sprites: drawing big ones only to shrink them is slow
        sprite = draw_item(rng, category, width=max(48, int(rng.integers(180, 300) * min(1.0, 1.5 * page.width / 720))))
        if detail == "minimal":  # one flat silhouette: the hard-to-recognise case
            flat = Image.new("RGBA", sprite.size, _pastel(rng) + (255,))
            flat.putalpha(sprite.getchannel("A"))
            sprite = flat
        fit = min(slot_w * 0.85 / sprite.width, hero_h * 0.8 / sprite.height)
        sprite = sprite.resize((max(1, int(sprite.width * fit)), max(1, int(sprite.height * fit))),
                               Image.Resampling.LANCZOS)
        sprite = sprite.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BICUBIC, expand=True)
        x = index * slot_w + int(rng.integers(0, max(1, slot_w - sprite.width)))
        y = int(rng.integers(0, max(1, hero_h - sprite.height)))
        canvas.alpha_composite(sprite, (max(0, x), max(0, y)))
        alpha = np.asarray(sprite.getchannel("A")) > 127
        ys, xs = np.nonzero(alpha)
        box = (hero[0] + max(0, x) + int(xs.min()), hero[1] + max(0, y) + int(ys.min()),
               hero[0] + max(0, x) + int(xs.max()) + 1, hero[1] + max(0, y) + int(ys.max()) + 1)
        products.append(ProductBox(name=_title(rng, 2), price=_price(rng), box=box))
    page.paste(canvas.convert("RGB"), hero[:2])
    return products


def _draw_text_area(draw: ImageDraw.ImageDraw, rng: np.random.Generator, template: Template,
                    area: tuple[int, int, int, int], headline: str, products: list[ProductBox], detail: str,
                    u: float) -> None:
    x0, y0, x1, y1 = area
    size = int(44 * u) if template.layout != "split" else int(34 * u)
    font = _font(template.headline_font, size)
    while draw.textlength(headline, font=font) > (x1 - x0) and size > 14:
        size -= 2
        font = _font(template.headline_font, size)
    draw.text((x0, y0), headline, font=font, fill=template.ink)
    y = y0 + int(size * 1.35)
    if detail == "minimal":
        return
    body = _font(template.body_font, int(17 * u))
    for product in products:
        if y > y1 - int(40 * u):
            break
        draw.text((x0, y), product.name, font=body, fill=template.ink)
        draw.text((x1, y), product.price, font=body, fill=template.accent, anchor="ra")
        y += int(26 * u)
    lines = 1 if detail == "plain" else int(rng.integers(2, 5))
    small = _font(template.body_font, int(13 * u))
    for _ in range(lines):
        if y > y1 - int(20 * u):
            break
        draw.text((x0, y), _sentence(rng, max_chars=int((x1 - x0) / (7.4 * u))), font=small, fill=template.ink)
        y += int(19 * u)


def _draw_band(page: Image.Image, template: Template, rng: np.random.Generator, products: list[ProductBox],
               band_h: int, u: float) -> None:
    width, height = page.size
    draw = ImageDraw.Draw(page)
    top = height - band_h
    draw.rectangle((0, top, width, height), fill=template.band)
    light = (250, 250, 245)
    draw.text((int(24 * u), top + int(16 * u)), "FROM", font=_font(template.body_font, int(16 * u)), fill=light)
    lowest = min(products, key=lambda p: float(p.price[1:])).price
    draw.text((int(24 * u), top + int(36 * u)), lowest, font=_font(template.headline_font, int(46 * u)), fill=light)
    draw.text((width - int(24 * u), top + int(22 * u)), template.small_print,
              font=_font(template.body_font, int(13 * u)), fill=light, anchor="ra")
    draw.text((width - int(24 * u), top + int(60 * u)), f"{template.brand} · {template.brand.lower()}.com",
              font=_font(template.headline_font, int(20 * u)), fill=light, anchor="ra")


def _scatter_shapes(image: Image.Image, rng: np.random.Generator, count: int) -> Image.Image:
    """Props around the products (leaves, pebbles, stripes of light): distinctive texture."""
    image = image.copy()
    draw = ImageDraw.Draw(image, "RGBA")
    w, h = image.size
    for _ in range(count):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3)) + (int(rng.integers(120, 230)),)
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(6, max(8, min(w, h) // 8)))
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
        elif kind == 1:
            draw.polygon([(x + r * math.cos(a), y + r * math.sin(a)) for a in rng.uniform(0, 2 * math.pi, 5)],
                         fill=colour)
        else:
            draw.line((x, y, x + int(rng.integers(-3 * r, 3 * r)), y + int(rng.integers(-3 * r, 3 * r))),
                      fill=colour, width=int(rng.integers(2, 6)))
    return image


# --- photos ----------------------------------------------------------------------------------------


def _page_pose(rng: np.random.Generator, page_size, photo_size, cond) -> np.ndarray:
    """Homography page px -> photo px: a tilted, rotated page seen by a pinhole camera, then framed."""
    pw, ph = page_size
    width, height = photo_size
    tilt = math.radians(rng.uniform(0, cond["tilt"]))
    axis = rng.uniform(0, math.pi)
    rotation = math.radians(rng.uniform(-cond["rotation"], cond["rotation"]))
    corners = page_corners(page_size) - [pw / 2, ph / 2]
    corners = corners / max(pw, ph)
    cos_r, sin_r = math.cos(rotation), math.sin(rotation)
    flat = corners @ np.array([[cos_r, sin_r], [-sin_r, cos_r]])
    points = np.c_[flat, np.zeros(4)]
    k = np.array([math.cos(axis), math.sin(axis), 0.0])  # tilt about an axis in the page plane (Rodrigues)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    rot = np.eye(3) + math.sin(tilt) * kx + (1 - math.cos(tilt)) * kx @ kx
    points = points @ rot.T + [0, 0, 1.6]  # camera at the origin looking down +z, focal length 1.6
    image_points = 1.6 * points[:, :2] / points[:, 2:3]
    # scale: the page's apparent linear size relative to an upright page filling the frame
    scale = rng.uniform(*cond["scale"])
    fill = min(width / pw, height / ph) ** 2 * pw * ph
    factor = scale * math.sqrt(fill / abs(cv2.contourArea(image_points.astype(np.float32))))
    image_points = (image_points - image_points.min(axis=0)) * factor
    size = image_points.max(axis=0)
    # place it: mostly inside the frame, sometimes running off an edge (part of the allowed occlusion)
    slack = np.array([width, height]) - size
    spill = cond["occlusion"] * 0.5 * size
    offset = np.array([rng.uniform(min(0, slack[0]) - spill[0], max(0, slack[0]) + spill[0]),
                       rng.uniform(min(0, slack[1]) - spill[1], max(0, slack[1]) + spill[1])])
    destination = image_points + offset
    homography = cv2.getPerspectiveTransform(page_corners(page_size).astype(np.float32), destination.astype(np.float32))
    # keep at least (1 - occlusion) of the page in frame: pull it inwards (and shrink it) until it is
    for _ in range(30):
        if visible_fraction(homography, page_size, photo_size) >= 1 - cond["occlusion"] * 0.6:
            break
        centre = destination.mean(axis=0)
        destination += (np.array([width / 2, height / 2]) - centre) * 0.2
        centre = destination.mean(axis=0)
        destination = centre + (destination - centre) * 0.97
        homography = cv2.getPerspectiveTransform(page_corners(page_size).astype(np.float32),
                                                 destination.astype(np.float32))
    return homography.astype(np.float64)


def _paste_warped(canvas: np.ndarray, image: Image.Image, homography: np.ndarray, size, shadow: bool) -> np.ndarray:
    """Warp `image` into the canvas; shrink it first with area averaging so the warp does not alias."""
    width, height = size
    quad = project(homography, page_corners(image.size))
    projected_long = max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[1]),
                         np.linalg.norm(quad[3] - quad[2]), np.linalg.norm(quad[0] - quad[3]))
    shrink = min(1.0, 1.5 * projected_long / max(image.size))
    source = np.asarray(image.convert("RGB"), np.float32)
    if shrink < 0.95:
        small = (max(1, round(image.width * shrink)), max(1, round(image.height * shrink)))
        source = cv2.resize(source, small, interpolation=cv2.INTER_AREA)
        scale_back = np.diag([image.width / small[0], image.height / small[1], 1.0])
        homography = homography @ scale_back
    warped = cv2.warpPerspective(source, homography, (width, height), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones(source.shape[:2], np.float32), homography, (width, height),
                               flags=cv2.INTER_LINEAR)[..., None]
    if shadow:  # a soft drop shadow, blurred at quarter resolution
        small = cv2.resize(mask[..., 0], (width // 4, height // 4), interpolation=cv2.INTER_AREA)
        blurred = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.5), (width, height), interpolation=cv2.INTER_LINEAR)
        shifted = np.roll(np.roll(blurred, 5, axis=0), 4, axis=1)[..., None]
        canvas = canvas * (1 - 0.35 * shifted)
    warped -= canvas
    warped *= mask
    canvas += warped
    return canvas


def _occlude(rng: np.random.Generator, canvas: np.ndarray, homography: np.ndarray, page_size, max_share: float):
    """A hand, a mug or a phone over the page, hiding at most `max_share` of it with the frame edge.

    The occluder is fitted at quarter resolution (its edge is soft anyway) and scaled up.
    """
    if max_share <= 0 or rng.random() < 0.3:
        return canvas
    height, width = canvas.shape[:2]
    q = 4
    small = (width // q, height // q)
    to_small = np.diag([1 / q, 1 / q, 1.0]) @ homography
    page_mask = cv2.warpPerspective(np.ones((page_size[1], page_size[0]), np.uint8), to_small, small,
                                    flags=cv2.INTER_NEAREST)
    quad_area = abs(cv2.contourArea(project(to_small, page_corners(page_size)).astype(np.float32)))
    budget = max(0.0, max_share * quad_area - (quad_area - float(page_mask.sum())))  # what the frame left to hide
    target = rng.uniform(0.3, 1.0) * budget
    if target < 0.01 * quad_area:
        return canvas
    ys, xs = np.nonzero(page_mask)
    pick = int(rng.integers(len(xs)))
    centre = (int(xs[pick]), int(ys[pick]))
    kind = int(rng.integers(3))
    angle = float(rng.uniform(0, 180))
    colour = np.array(rng.choice([(224, 172, 140), (141, 85, 36), (255, 219, 172), (40, 40, 45), (200, 60, 50),
                                  (230, 230, 225)]), np.float32)
    radius = math.sqrt(target / math.pi)
    occluder = np.zeros((small[1], small[0]), np.uint8)
    for _ in range(15):  # shrink the occluder until it hides no more than the target
        occluder[:] = 0
        if kind == 0:  # a mug or a coin: a disc
            cv2.circle(occluder, centre, max(1, int(radius)), 1, -1)
        elif kind == 1:  # a hand/arm coming in from the nearest frame edge
            edge = (0 if centre[0] < small[0] / 2 else small[0], centre[1])
            cv2.line(occluder, edge, centre, 1, max(1, int(radius * 1.1)))
            cv2.ellipse(occluder, centre, (max(1, int(radius * 0.8)), max(1, int(radius * 0.6))), angle, 0, 360, 1, -1)
        else:  # a phone or a card: a rotated rectangle
            box = cv2.boxPoints(((float(centre[0]), float(centre[1])), (radius * 1.6, radius * 2.4), angle))
            cv2.fillPoly(occluder, [box.astype(np.int32)], 1)
        if float((occluder & page_mask).sum()) <= max(target, 1.0):
            break
        radius *= 0.85
    shade = cv2.resize(cv2.GaussianBlur(occluder.astype(np.float32), (0, 0), 0.8), (width, height),
                       interpolation=cv2.INTER_LINEAR)[..., None]
    texture = rng.normal(0, 6, (height // q, width // q, 1)).astype(np.float32)
    texture = cv2.resize(texture, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    return canvas * (1 - shade) + (colour + texture) * shade


def _light(rng: np.random.Generator, canvas: np.ndarray, homography, page_size, glare: float) -> np.ndarray:
    """Uneven light with a colour cast, and sometimes a glare spot (smooth: computed at 1/8 resolution)."""
    height, width = canvas.shape[:2]
    step = 8
    yy, xx = np.mgrid[0:height:step, 0:width:step].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    proj = (xx / width - 0.5) * math.cos(angle) + (yy / height - 0.5) * math.sin(angle)
    gain = rng.uniform(0.65, 1.2) + rng.uniform(0.0, 0.5) * proj
    cast = 1.0 + rng.uniform(-0.08, 0.08, 3).astype(np.float32)
    spot = np.zeros_like(gain)
    if rng.random() < glare:  # a specular highlight on the glossy paper
        centre = project(homography, [[rng.uniform(0, page_size[0]), rng.uniform(0, page_size[1])]])[0]
        sx, sy = rng.uniform(0.04, 0.18) * width, rng.uniform(0.03, 0.12) * height
        spot = rng.uniform(80, 200) * np.exp(-(((xx - centre[0]) / sx) ** 2 + ((yy - centre[1]) / sy) ** 2))
    gain = cv2.resize(gain, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    spot = cv2.resize(spot.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    return canvas * gain * cast + spot


def _motion_blur(canvas: np.ndarray, length: float, angle: float) -> np.ndarray:
    size = max(3, int(length) | 1)
    kernel = np.zeros((size, size), np.float32)
    kernel[size // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((size / 2 - 0.5, size / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (size, size))
    return cv2.filter2D(canvas, -1, kernel / max(float(kernel.sum()), 1e-6))


def _rotation_about(degrees: float, centre) -> np.ndarray:
    return np.vstack([cv2.getRotationMatrix2D(tuple(float(c) for c in centre), degrees, 1.0), [0, 0, 1]])


# --- small helpers ---------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _font(face: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONT_DIR / _FONTS[face]
    if path.is_file():
        return ImageFont.truetype(str(path), max(6, size))
    return ImageFont.load_default(size=max(6, size))


def _word(rng: np.random.Generator, low: int, high: int) -> str:
    return "".join(rng.choice(_SYLLABLES, int(rng.integers(low, high + 1))))


def _title(rng: np.random.Generator, words: int) -> str:
    chosen = [str(w) for w in rng.choice(_HEADLINE_WORDS, words, replace=False)]
    chosen[int(rng.integers(words))] = _word(rng, 2, 3)
    return " ".join(chosen).title()


def _sentence(rng: np.random.Generator, max_chars: int) -> str:
    words: list[str] = []
    while True:
        word = _word(rng, 1, 3) if rng.random() < 0.6 else str(rng.choice(_HEADLINE_WORDS))
        if len(" ".join(words + [word])) > max_chars:
            return " ".join(words).capitalize()
        words.append(word)


def _price(rng: np.random.Generator) -> str:
    return f"€{int(rng.integers(9, 300))}.{int(rng.choice([0, 50, 90, 95, 99])):02d}"


def _saturated(rng: np.random.Generator) -> tuple[int, int, int]:
    hue = rng.uniform(0, 180)
    hsv = np.uint8([[[hue, rng.uniform(150, 255), rng.uniform(110, 220)]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _pastel(rng: np.random.Generator) -> tuple[int, int, int]:
    hsv = np.uint8([[[rng.uniform(0, 180), rng.uniform(20, 90), rng.uniform(190, 250)]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _dark(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(15, 60, 3))


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    factor = max(size[0] / image.width, size[1] / image.height)
    scaled = image.resize((math.ceil(image.width * factor), math.ceil(image.height * factor)), Image.Resampling.LANCZOS)
    x, y = (scaled.width - size[0]) // 2, (scaled.height - size[1]) // 2
    return scaled.crop((x, y, x + size[0], y + size[1]))
