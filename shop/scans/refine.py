"""Refinement: search again in a box the shopper drew, with filters and optional words."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
from django.conf import settings

from catalog.search import min_score_for, search_by_vector
from catalog.selectors import active_model_key
from shop import vision_adapter
from shop.scans.filters import color_choices, filters_from_json

_COLOR_SYNONYMS = {"gray": "grey", "maroon": "burgundy", "wine": "burgundy", "cream": "beige", "tan": "beige",
                   "khaki": "beige", "violet": "purple", "lilac": "purple", "turquoise": "teal", "gold": "yellow"}  # fmt: skip


def color_words(text: str) -> list[str]:
    names = set(color_choices())
    found = []
    for word in re.findall(r"[a-z]+", text.lower()):
        word = _COLOR_SYNONYMS.get(word, word)
        if word in names and word not in found:
            found.append(word)
    return found


def refine_search(*, picture, box: list[float] | None, filters: dict, text: str, k: int) -> dict:
    key = active_model_key()
    embedder = vision_adapter.get_embedder(key)
    drawn, box = box is not None, box or [0.0, 0.0, 1.0, 1.0]
    pixels = (
        int(box[0] * picture.width),
        int(box[1] * picture.height),
        max(int(box[0] * picture.width) + 1, int(round(box[2] * picture.width))),
        max(int(box[1] * picture.height) + 1, int(round(box[3] * picture.height))),
    )
    # The box's item as the scan saw it (masked, when the detector found it there), not a plain crop
    # whose background lowered every score below the scan's own for the same item.
    detected = vision_adapter.detect(picture, max_items=settings.SCAN_MAX_ITEMS) if drawn else []
    vector = embedder.embed_images([vision_adapter.boxed_item_view(picture, pixels, detected)])[0]
    search_filters = filters_from_json(filters)
    text_used = None
    words = color_words(text) if text else []
    if text and embedder.pretrained and embedder.supports_text:
        # CLIP: the words move the query in the joint space ("in red" pulls towards red items).
        text_vector = embedder.embed_text([f"a photo of a product {text}"])[0]
        vector = vector + settings.REFINE_TEXT_WEIGHT * text_vector
        vector = vector / np.linalg.norm(vector)
        text_used = "embedding"
    elif words:
        # Without a text tower, colour words filter by the products' colour.
        search_filters = replace(search_filters, colors=sorted(set(search_filters.colors) | set(words)))
        text_used = "color_filter"
    hits = search_by_vector(vector=vector, model_key=key, k=k, filters=search_filters)
    threshold = min_score_for(key)
    return {
        "model": {"key": key, "pretrained": bool(embedder.pretrained)},
        "box": box,
        "text_used_as": text_used,
        "colors": words,
        "confident": bool(hits) and hits[0].score >= threshold,
        "hits": hits,
    }
