"""Writes for scans: creation from an upload, the vision pipeline's results, retention."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from botocore.exceptions import BotoCoreError
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalog.models import Product
from catalog.search import PhotoItem
from shop import vision_adapter
from shop.celery import send_or_leave_to_sweep
from shop.core.locks import key_share
from shop.scans.models import FINISHED, Scan, ScanItem, ScanMatch
from shop.shoppers.models import Shopper

logger = logging.getLogger(__name__)


class ShopperErased(Exception):
    """The shopper was erased while their request was on its way (a scan posted, the data deleted)."""


def _shopper_key_share(shopper: Shopper) -> None:
    """FOR KEY SHARE on the shopper's row: an erasure that has deleted it (not yet committed) is waited
    for, and then the shopper is gone (`ShopperErased`: no scan, no photo stored for nobody); one that
    starts after waits at its delete for this to commit, and erases the new scan too (it erases again
    when a row it did not see references the shopper). Scans of one shopper do not wait for each other."""
    if not key_share(Shopper, [shopper.pk]):
        raise ShopperErased(str(shopper.pk))


@transaction.atomic
def scan_create(*, shopper: Shopper, decoded, kind: str = Scan.Kind.AUTO, filters: dict | None = None) -> Scan:
    """Store the cleaned copy of a validated photo and queue the scan for the vision worker."""
    from shop.scans.tasks import process_scan
    _shopper_key_share(shopper)
    cleaned = vision_adapter.encode_clean_jpeg(decoded.image)
    scan = Scan(
        shopper=shopper,
        kind=kind,
        filters=filters or {},
        width=decoded.width,
        height=decoded.height,
        photo_sha256=hashlib.sha256(cleaned).hexdigest(),
    )
    scan.photo.save("photo.jpg", ContentFile(cleaned), save=False)
    try:
        scan.save()
    except BaseException:
        try:  # no row will name it, so the purge would never find it (a rollback at the commit still leaves it)
            scan.photo.storage.delete(scan.photo.name)
        except Exception:
            logger.warning("a photo without its scan row is left in storage", extra={"name": scan.photo.name})
        raise
    transaction.on_commit(lambda: send_or_leave_to_sweep(process_scan, str(scan.id), what="scan",
                                                         sweep="requeue_stale_scans"))
    return scan


@transaction.atomic
def scan_store_results(*, scan_id, items: list[PhotoItem], model_key: str, pretrained: bool, timings: dict) -> bool:
    """Replace a scan's items and matches with these results, once: a redelivered task that
    finds the scan done writes nothing. Returns whether it wrote. The timings so far are written
    with the results: a client that sees the scan done sees them too."""
    scan = Scan.objects.select_for_update().filter(id=scan_id).first()
    if scan is None or scan.status in FINISHED:
        return False
    scan.items.all().delete()
    # a product deleted since the search (an admin, a re-import) is left out of the matches, not a
    # foreign-key error that would fail the scan for good
    wanted = {match.product_id for item in items for match in item.matches}
    existing = set(Product.objects.filter(id__in=wanted).values_list("id", flat=True)) if wanted else set()
    for position, item in enumerate(items):
        row = ScanItem.objects.create(
            scan=scan,
            position=position,
            x0=item.box[0],
            y0=item.box[1],
            x1=item.box[2],
            y1=item.box[3],
            category=item.category,
            score=item.score,
            whole_image=item.whole_image,
            colors=item.colors,
            confident=item.confident,
        )
        ScanMatch.objects.bulk_create(
            ScanMatch(item=row, product_id=match.product_id, rank=rank, score=match.score)
            for rank, match in enumerate((m for m in item.matches if m.product_id in existing), start=1)
        )
    scan.status = Scan.Status.DONE
    scan.result_kind = Scan.ResultKind.LOOK
    scan.model_key, scan.model_pretrained = model_key, pretrained
    scan.finished_at = timezone.now()
    scan.failure_reason = ""
    scan.timings = dict(timings)
    scan.save()
    return True


@transaction.atomic
def scan_record_no_ad(*, scan_id, timings: dict) -> bool:
    """Finish an ad-only scan in which no registered creative was recognised."""
    updated = Scan.objects.filter(id=scan_id).exclude(status__in=FINISHED).update(
        status=Scan.Status.DONE, result_kind=Scan.ResultKind.NONE, timings=timings, finished_at=timezone.now()
    )
    return bool(updated)


def scan_mark_failed(*, scan_id, reason: str) -> None:
    Scan.objects.filter(id=scan_id).exclude(status=Scan.Status.DONE).update(
        status=Scan.Status.FAILED, failure_reason=reason[:2000], finished_at=timezone.now()
    )


def scan_claim(*, scan_id, message_id: str | None = None) -> Scan | None:
    """Mark a scan processing for the task message `message_id` (counting attempts); None when it is
    gone or already finished (done, or failed: a failure is final, and a duplicate message must not
    run the photo again), or when another message of it is running it now: a copy that the stale-scan
    beat sent while the vision workers were down may claim it only once that run is past the task's
    time limit (its worker died), while the redelivery of the claiming message (its worker died too,
    and the broker redelivers at once) claims it again at once. A direct call (no message) claims."""
    with transaction.atomic():
        scan = Scan.objects.select_for_update().filter(id=scan_id).first()
        if scan is None or scan.status in FINISHED:
            return None
        now = timezone.now()
        if (scan.status == Scan.Status.PROCESSING and message_id and scan.claimed_by not in ("", message_id)
                and scan.started_at > now - timedelta(seconds=settings.VISION_TASK_TIME_LIMIT)):
            logger.info("scan already being processed by another message; this copy does nothing",
                        extra={"scan_id": str(scan_id), "message_id": message_id, "claimed_by": scan.claimed_by})
            return None
        scan.status = Scan.Status.PROCESSING
        scan.attempts += 1
        scan.started_at = now
        scan.claimed_by = message_id or ""
        scan.save(update_fields=["status", "attempts", "started_at", "claimed_by"])
    return scan


def stale_scan_ids(*, now=None) -> list:
    """Scans queued or started longer ago than SCAN_REQUEUE_AFTER_SECONDS and not finished: their
    message was lost (a broker restart without persistence) or their worker died. A scan sent again
    (`scan_requeued`) is left for another SCAN_REQUEUE_AFTER_SECONDS: while the vision workers are down
    or behind, beat would otherwise add a copy of it to their queue every minute."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.SCAN_REQUEUE_AFTER_SECONDS)
    not_lately = Q(requeued_at__isnull=True) | Q(requeued_at__lt=cutoff)
    pending = Q(status=Scan.Status.PENDING, created_at__lt=cutoff)
    processing = Q(status=Scan.Status.PROCESSING, started_at__lt=cutoff)
    return list(Scan.objects.filter((pending | processing) & not_lately).values_list("id", flat=True))


def scan_requeued(*, scan_id, now=None) -> None:
    """Record that beat sent the scan again (after the broker took the message, not before)."""
    Scan.objects.filter(id=scan_id).update(requeued_at=now or timezone.now())


def scan_photos_purge(*, now=None) -> int:
    """Delete the photo files of scans older than SCAN_RETENTION_DAYS, oldest first; their results stay.
    A file the storage will not delete (busy, access refused, an object lock) is logged and tried again
    on the next run; it does not stop the others."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.SCAN_RETENTION_DAYS)
    purged, kept = 0, 0
    old = Scan.objects.filter(created_at__lt=cutoff, photo_deleted_at__isnull=True).exclude(photo="")
    for scan in old.order_by("created_at"):
        name = scan.photo.name
        try:
            scan.photo.storage.delete(name)
        except Exception as exc:  # botocore's errors, OSError on local storage
            logger.warning("scan photo not deleted; the next purge tries again",
                           extra={"scan_id": str(scan.id), "error": repr(exc)[:300]})
            if isinstance(exc, BotoCoreError):
                break  # no answer (down, timing out): every other file would wait as long; the next run goes on
            kept += 1
            continue
        Scan.objects.filter(id=scan.id).update(photo="", photo_deleted_at=timezone.now())
        purged += 1
    if purged or kept:
        logger.info("scan photos purged", extra={"count": purged, "kept": kept, "cutoff": cutoff.isoformat()})
    return purged
