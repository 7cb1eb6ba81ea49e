"""Writes for campaigns: creatives (features, rating, near-duplicates) and scan attributions."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from django.db import DatabaseError, transaction
from django.utils import timezone

from shop import vision_adapter
from shop.campaigns.models import AdCreative, ScanAttribution
from shop.scans.models import FINISHED, Scan

logger = logging.getLogger(__name__)

NEAR_DUPLICATE_SIMILARITY = 0.6


def ad_creative_extract(*, creative: AdCreative):
    """Read the artwork, extract its features and rate its recognisability (fields set, not saved).
    Returns the features."""
    creative.image.open("rb")
    try:
        creative.image.seek(0)
        data = creative.image.read()
        creative.image.seek(0)
    finally:
        if creative.image._committed:
            creative.image.close()
    picture = vision_adapter.decode(data).image
    features = vision_adapter.extract_features(picture)
    rating = vision_adapter.rate_recognisability(features)
    creative.features = features.to_bytes()
    creative.feature_count = len(features)
    creative.width, creative.height = features.image_size
    creative.rating = rating.stars
    creative.rating_details = {
        "feature_count": rating.feature_count,
        "spread": round(float(rating.spread), 3),
        "repetitiveness": round(float(rating.repetitiveness), 3),
        "advice": list(rating.advice),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    return features


def ad_creative_prepare(*, creative: AdCreative, check_duplicates: bool = True) -> list[tuple[int, float]]:
    """Extract the artwork's features once, rate its recognisability, and (`check_duplicates`) find
    near-duplicates (creatives that scans could confuse with it) in this process's index. Call before
    saving a new or changed file."""
    features = ad_creative_extract(creative=creative)
    if not check_duplicates:
        return []
    duplicates = _near_duplicates(features, exclude=[creative.pk] if creative.pk else [])
    creative.duplicate_of = [[int(c), float(s)] for c, s in duplicates]
    return duplicates


def _near_duplicates(features, *, exclude: list[int]) -> list[tuple[int, float]]:
    from shop.campaigns.recognition import using_creative_index

    with using_creative_index() as index:
        duplicates = (dict(index.near_duplicates(features, NEAR_DUPLICATE_SIMILARITY, exclude=exclude))
                      if len(index) else {})
        # A scan of the new artwork itself must not be recognised as another creative either.
        confused = index.match(features) if len(index) else None
    if confused is not None and confused.creative_id not in exclude and confused.coverage >= NEAR_DUPLICATE_SIMILARITY:
        duplicates.setdefault(confused.creative_id, round(float(confused.coverage), 4))
    return sorted(duplicates.items(), key=lambda item: -item[1])


def duplicates_checked_in_this_process() -> bool:
    """Whether a web process may hold the creative index for the admin's near-duplicate check: up to
    CREATIVE_DUPLICATE_CHECK_IN_WEB recognisable creatives (about 0.12 MiB of index each). Past that the
    check goes to a vision worker, which holds the index anyway: at 10,000 creatives each web process
    would hold 1.4 GiB."""
    from django.conf import settings

    from shop.campaigns.recognition import matchable_creatives

    return matchable_creatives().count() <= settings.CREATIVE_DUPLICATE_CHECK_IN_WEB


def ad_creative_duplicates_record(*, creative_id: int) -> list[tuple[int, float]] | None:
    """Find a saved creative's near-duplicates in this process's index and store them (the vision
    worker's side of the check). None for a creative deleted, or without features, meanwhile."""
    creative = AdCreative.objects.filter(id=creative_id).exclude(features=None).first()
    if creative is None:  # deleted, or no features to compare: nothing to find, and nothing left to check
        AdCreative.objects.filter(id=creative_id, duplicate_of__isnull=True).update(duplicate_of=[])
        return None
    features = vision_adapter.CreativeFeatures.from_bytes(bytes(creative.features))
    duplicates = _near_duplicates(features, exclude=[creative.pk])
    AdCreative.objects.filter(id=creative_id).update(duplicate_of=[[int(c), float(s)] for c, s in duplicates])
    return duplicates


def ad_creative_features_refresh(*, creative: AdCreative) -> bool:
    """Extract a stored creative's features again from its artwork (features stored by an older format
    lack what newer matching uses) and save them; workers reload it before their next scan. False when
    the creative was deleted meanwhile (its artwork is deleted after the commit, so it still read)."""
    ad_creative_extract(creative=creative)
    if not AdCreative.objects.filter(pk=creative.pk).exists():
        return False
    try:
        creative.save(update_fields=["features", "feature_count", "width", "height", "rating", "rating_details",
                                     "updated_at"])
    except DatabaseError:  # Django's own "did not affect any rows": deleted between the check and the save
        if AdCreative.objects.filter(pk=creative.pk).exists():
            raise
        return False
    return True


def ad_creatives_features_refresh(*, creatives, progress=None) -> tuple[int, list[str]]:
    """`ad_creative_features_refresh` for each of `creatives` that has an artwork: (how many were
    extracted again, "name (why)" for each that could not be: a missing or unreadable file).
    `progress()` is called after each."""
    done, failed = 0, []
    for creative in creatives:
        if creative.image:
            try:
                done += ad_creative_features_refresh(creative=creative)  # a deleted one is passed over
            except (OSError, ValueError, vision_adapter.ImageRejected, BotoCoreError, ClientError) as exc:
                failed.append(f"{creative.name or creative.pk} ({exc})")  # the storage's errors: S3 busy or refusing
        if progress is not None:
            progress()
    return done, failed


def project_box(homography: np.ndarray, box: tuple[float, float, float, float], creative_size, photo_size):
    """A box given as fractions of the artwork, as fractions of the photo (its projected outline's box)."""
    width, height = creative_size
    x0, y0, x1, y1 = box
    corners = np.array([[x0 * width, y0 * height, 1], [x1 * width, y0 * height, 1],
                        [x1 * width, y1 * height, 1], [x0 * width, y1 * height, 1]], dtype=np.float64).T  # fmt: skip
    projected = homography @ corners
    projected = projected[:2] / projected[2]
    photo_w, photo_h = photo_size
    xs, ys = np.clip(projected[0] / photo_w, 0, 1), np.clip(projected[1] / photo_h, 0, 1)
    return [round(float(xs.min()), 4), round(float(ys.min()), 4), round(float(xs.max()), 4), round(float(ys.max()), 4)]


@transaction.atomic
def scan_record_ad(*, scan_id, match, timings: dict) -> bool | None:
    """Finish a scan that recognised a creative and attribute it to the creative's campaign, once.
    False when the scan is gone or already done; None when the creative was deleted, set inactive or
    its campaign made a draft since the worker's index was brought up to date (the scan is then
    answered as if no ad matched)."""
    from shop.campaigns.recognition import matchable_creatives

    scan = Scan.objects.select_for_update().filter(id=scan_id).first()
    if scan is None or scan.status in FINISHED:
        return False
    creative = matchable_creatives().select_related("campaign").defer("features").filter(id=match.creative_id).first()
    if creative is None:
        return None
    ScanAttribution.objects.update_or_create(
        scan=scan,
        defaults={
            "campaign": creative.campaign,
            "creative": creative,
            "shopper": scan.shopper,
            "confidence": float(match.confidence),
            "homography": np.asarray(match.homography, dtype=float).round(6).tolist(),
            "created_at": scan.created_at,
        },
    )
    scan.items.all().delete()
    scan.status = Scan.Status.DONE
    scan.result_kind = Scan.ResultKind.AD
    scan.finished_at = timezone.now()
    scan.timings = timings
    scan.failure_reason = ""
    scan.save()
    logger.info("ad scan attributed", extra={"scan_id": str(scan.id), "campaign": creative.campaign.code})
    return True
