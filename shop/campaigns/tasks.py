"""Campaign tasks: thin; the work is in shop.campaigns.recognition."""

from __future__ import annotations

import logging
from datetime import timedelta

from shop.campaigns import recognition
from shop.celery import default_task, send_or_leave_to_sweep, vision_task

logger = logging.getLogger(__name__)

# a check not answered after this long was lost (a vision worker takes a second or so, behind a queue)
RECHECK_AFTER = timedelta(minutes=10)
RECHECK_AT_ONCE = 200


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


@default_task
def recheck_creative_duplicates() -> int:
    """Beat's sweep: a near-duplicate check whose message was lost (the broker down at the save) or
    whose worker died is sent again for each creative still unchecked after RECHECK_AFTER. Returns how
    many were sent."""
    from django.utils import timezone

    from shop.campaigns.models import AdCreative

    due = AdCreative.objects.filter(duplicate_of__isnull=True, updated_at__lt=timezone.now() - RECHECK_AFTER)
    sent = 0
    for creative_id in due.order_by("id").values_list("id", flat=True)[:RECHECK_AT_ONCE]:
        send_duplicate_check(creative_id)
        sent += 1
    return sent


def send_duplicate_check(creative_id: int) -> None:
    """Queue a creative's near-duplicate check for a vision worker; a broker that does not take it
    leaves the creative unchecked for the recheck-creative-duplicates sweep."""
    send_or_leave_to_sweep(check_creative_duplicates, creative_id, what="near-duplicate check",
                           sweep="the recheck-creative-duplicates sweep")


@vision_task
def check_creative_duplicates(creative_id: int) -> int | None:
    """Find a newly saved creative's near-duplicates with this worker's index and store them (the admin's
    check, when the index is too large for a web process). Idempotent: the same answer is stored again."""
    from shop.campaigns.services import ad_creative_duplicates_record

    found = ad_creative_duplicates_record(creative_id=creative_id)
    return None if found is None else len(found)
