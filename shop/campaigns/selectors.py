"""Reads for campaigns that are not reports (see reports.py) nor the recognition index (recognition.py)."""

from __future__ import annotations

from shop import vision_adapter
from shop.campaigns.models import AdCreative


def creatives_with_outdated_features() -> list[int]:
    """Ids of creatives with an artwork whose stored features are missing, unreadable, or of an older
    format without keypoint frames (the look in place needs them), in id order."""
    outdated = []
    rows = AdCreative.objects.exclude(image="").order_by("id").values_list("id", "features")
    for creative_id, data in rows.iterator(chunk_size=200):
        try:
            fresh = data is not None and vision_adapter.CreativeFeatures.from_bytes(bytes(data)).has_frames
        except ValueError:
            fresh = False
        if not fresh:
            outdated.append(creative_id)
    return outdated
