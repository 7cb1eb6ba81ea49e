"""Item views: what the embedders see of an item, the same way for catalog pictures and photos.

A catalog picture is a product on a plain studio background; a shopper's photo shows the item
on a street, a table or a bed. To compare them, both sides are reduced to the same kind of
picture: the item's pixels (its mask, when the detector gives one) on a neutral studio
background, cropped to the item's box with a small margin.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

STUDIO_BACKGROUND = (246, 245, 243)
MARGIN = 0.06  # of the box's longer side, on every side


def item_crop(
    image: Image.Image,
    box: Sequence[int],
    mask: np.ndarray | None = None,
    *,
    margin: float = MARGIN,
    background: tuple[int, int, int] = STUDIO_BACKGROUND,
) -> Image.Image:
    """The item in `box` (x0, y0, x1, y1, pixels): masked onto the studio background when `mask`
    (bool, the box's size or the image's size) is given, else the plain crop."""
    image = image.convert("RGB")
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(image.width, max(x1, x0 + 1)), min(image.height, max(y1, y0 + 1))
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape == (image.height, image.width):
            mask = mask[y0:y1, x0:x1]
        if mask.shape != (y1 - y0, x1 - x0) or not mask.any():
            mask = None
    pad = int(round(margin * max(x1 - x0, y1 - y0)))
    if mask is None:
        return image.crop((max(0, x0 - pad), max(0, y0 - pad), min(image.width, x1 + pad), min(image.height, y1 + pad)))
    canvas = Image.new("RGB", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), background)
    canvas.paste(image.crop((x0, y0, x1, y1)), (pad, pad), Image.fromarray(mask.astype(np.uint8) * 255))
    return canvas


def boxed_item_view(image: Image.Image, box: Sequence[int], detected: Sequence) -> Image.Image:
    """The item in a box the shopper drew (pixels), seen as a scan sees its items.

    When one of the photo's `detected` items (`vision.detect.DetectedItem`) is what the box holds
    (intersection over union 0.5 or more), its pixels inside the box are masked onto the studio
    background, so refining by an item's own box finds what the scan found for it; otherwise the
    plain crop (a box around something the detector did not separate).
    """
    from vision.detect import box_iou

    x0, y0, x1, y1 = (int(v) for v in box)
    best, best_iou = None, 0.0
    for item in detected:
        if item.whole_image or item.mask is None:
            continue
        iou = box_iou((x0, y0, x1, y1), item.box)
        if iou > best_iou:
            best, best_iou = item, iou
    if best is None or best_iou < 0.5:
        return item_crop(image, box)
    mask = np.zeros((image.height, image.width), dtype=bool)
    bx0, by0, bx1, by1 = best.box
    mask[by0:by1, bx0:bx1] = best.mask[: by1 - by0, : bx1 - bx0]
    return item_crop(image, box, mask)


def main_item_view(image: Image.Image) -> Image.Image:
    """A catalog picture reduced to its main item, as `item_crop` shows items found in photos.

    The detector's best region is the product on a studio shot; when it finds none, the whole
    picture is used as it is.
    """
    from vision.detect import detect

    items = [item for item in detect(image, max_items=2) if not item.whole_image]
    if not items:
        return image.convert("RGB")
    best = items[0]
    return item_crop(image, best.box, best.mask)
