"""The scan task: thin and idempotent; the work is in catalog.search, campaigns and services."""

from __future__ import annotations

import logging

from celery.exceptions import SoftTimeLimitExceeded
from django import db
from django.conf import settings

from catalog.search import search_photo
from shop import vision_adapter
from shop.campaigns.recognition import using_creative_index
from shop.campaigns.services import scan_record_ad
from shop.celery import default_task, reports_task, vision_task
from shop.core.storage_errors import storage_busy, storage_error_code, storage_refused
from shop.core.timing import StageTimer
from shop.scans.filters import filters_from_json
from shop.scans.models import Scan
from shop.scans.services import (
    scan_claim,
    scan_mark_failed,
    scan_photos_purge,
    scan_record_no_ad,
    scan_store_results,
    scan_requeued,
    stale_scan_ids,
)

logger = logging.getLogger(__name__)
# A service that did not answer for a moment (a database failover, the storage timing out, refusing a
# connection or busy: `storage_busy`): the scan is retried rather than failed. A missing photo is not
# among them.
TRANSIENT_ERRORS = (db.OperationalError, db.InterfaceError, ConnectionError, TimeoutError)


def _interrupted(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS) or storage_busy(exc)


@vision_task
def process_scan(scan_id: str) -> None:
    """Ad recognition first (kind auto or ad), then shop the look (kind auto or look)."""
    scan = scan_claim(scan_id=scan_id, message_id=process_scan.request.id)
    if scan is None:
        return  # gone, finished by an earlier delivery, or being run by another message of it
    if scan.attempts > settings.SCAN_MAX_ATTEMPTS:
        scan_mark_failed(scan_id=scan_id, reason="processing this photo was cut short repeatedly (the worker "
                                                 "stopped, or the storage or the database did not answer)")
        return
    timer = StageTimer()
    timer.timings["queue"] = round((scan.started_at - scan.created_at).total_seconds() * 1000, 2)
    reading = True  # the time limit reached while the storage is still sending the photo is not the photo's doing
    try:
        with timer.stage("decode"):
            with scan.photo.open("rb") as f:
                data = f.read()
            reading = False
            picture = vision_adapter.decode(data).image
        if scan.kind in (Scan.Kind.AUTO, Scan.Kind.AD):
            with timer.stage("ad_match"):
                match = _recognised_ad(picture, scan_id=scan_id, fall_through=scan.kind == Scan.Kind.AUTO)
            if match is not None and scan_record_ad(scan_id=scan_id, match=match, timings=timer.timings) is not None:
                return
            if scan.kind == Scan.Kind.AD:
                scan_record_no_ad(scan_id=scan_id, timings=timer.timings)
                return
        items, key, pretrained = search_photo(picture=picture, filters=filters_from_json(scan.filters), timer=timer)
        with timer.stage("database"):
            written = scan_store_results(scan_id=scan_id, items=items, model_key=key, pretrained=pretrained,
                                         timings=timer.timings)
        if written:  # the database stage's own time, now that it is known
            Scan.objects.filter(id=scan_id).update(timings=timer.timings)
    except vision_adapter.ImageRejected as exc:
        scan_mark_failed(scan_id=scan_id, reason=f"{exc.code}: {exc}")
    except SoftTimeLimitExceeded:
        if reading:  # a stalled storage: the scan stays processing, and the stale-scan beat sends it again
            logger.warning("scan cut short while its photo was read; it will be retried", extra={"scan_id": scan_id})
        else:
            scan_mark_failed(scan_id=scan_id, reason="the photo took too long to process")
    except Exception as exc:
        if _interrupted(exc):
            # not the photo's fault: the scan stays processing, and the stale-scan beat sends it again
            # once it has waited SCAN_REQUEUE_AFTER_SECONDS (up to SCAN_MAX_ATTEMPTS deliveries in all)
            logger.warning("scan interrupted by an unavailable service; it will be retried",
                           extra={"scan_id": scan_id, "error": f"{type(exc).__name__}: {exc}"})
        elif isinstance(exc, OSError):
            scan_mark_failed(scan_id=scan_id, reason=f"the stored photo could not be read: {type(exc).__name__}")
        elif storage_refused(exc):
            scan_mark_failed(scan_id=scan_id, reason=f"the stored photo could not be read: the storage answered "
                                                     f"{storage_error_code(exc)}")
        else:
            logger.exception("scan failed", extra={"scan_id": scan_id})
            scan_mark_failed(scan_id=scan_id, reason="internal error while processing the photo")


def _recognised_ad(picture, *, scan_id: str, fall_through: bool):
    """The registered creative in the photo, or None. A fault of the recognition itself (not the
    photo's, nor the time limit's) does not cost an `auto` scan its shop-the-look answer."""
    try:
        with using_creative_index() as index:
            return index.match(picture)  # no SIFT pass when no creative is registered
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        if not fall_through:
            raise
        logger.exception("ad recognition failed; the scan falls through to shop the look", extra={"scan_id": scan_id})
        return None


@reports_task
def purge_scan_photos() -> int:
    return scan_photos_purge()


@default_task
def requeue_stale_scans() -> int:
    """Send stale scans to the vision queue again; process_scan is idempotent, so a scan whose
    first message is still alive is simply done once."""
    ids = stale_scan_ids()
    for scan_id in ids:
        process_scan.delay(str(scan_id))  # a broker that does not take it: the next minute's run tries again
        scan_requeued(scan_id=scan_id)
    if ids:
        logger.warning("stale scans requeued", extra={"count": len(ids)})
    return len(ids)
