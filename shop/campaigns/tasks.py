"""Campaign tasks: thin; the work is in shop.campaigns.recognition."""

from __future__ import annotations

import logging

from shop.campaigns import recognition
from shop.celery import vision_task

logger = logging.getLogger(__name__)


@vision_task
def snapshot_creative_index() -> str | None:
    """Write this worker's creative index as the newest snapshot when creatives changed since the last
    one (a vision worker: it holds the index). Idempotent: nothing new, nothing written."""
    return recognition.save_snapshot()


@vision_task
def refresh_creatives_features(creative_ids: list[int]) -> int:
    """Extract these creatives' features again (the admin's action on a large selection). Idempotent:
    extracting again gives the same features; a creative deleted meanwhile is passed over."""
    from shop.campaigns.models import AdCreative
    from shop.campaigns.services import ad_creatives_features_refresh

    done, failed = ad_creatives_features_refresh(creatives=AdCreative.objects.filter(id__in=creative_ids).order_by("id"))
    if failed:
        logger.warning("features not extracted again: %s", "; ".join(failed))
    return done


@vision_task
def check_creative_duplicates(creative_id: int) -> int | None:
    """Find a newly saved creative's near-duplicates with this worker's index and store them (the admin's
    check, when the index is too large for a web process). Idempotent: the same answer is stored again."""
    from shop.campaigns.services import ad_creative_duplicates_record

    found = ad_creative_duplicates_record(creative_id=creative_id)
    return None if found is None else len(found)
