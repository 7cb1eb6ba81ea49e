"""Campaign tasks: thin; the work is in shop.campaigns.recognition."""

from __future__ import annotations

from shop.campaigns import recognition
from shop.celery import vision_task


@vision_task
def snapshot_creative_index() -> str | None:
    """Write this worker's creative index as the newest snapshot when creatives changed since the last
    one (a vision worker: it holds the index). Idempotent: nothing new, nothing written."""
    return recognition.save_snapshot()
