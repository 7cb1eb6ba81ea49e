"""Direct uploads to S3: a presigned POST bound to the shopper's key prefix, size and lifetime."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from shop.core.problems import Problem
from shop.shoppers.models import Shopper

logger = logging.getLogger(__name__)


def _require_s3() -> None:
    if settings.STORAGE_BACKEND != "s3":
        raise Problem(
            status=409,
            code="direct_uploads_unavailable",
            detail="Direct uploads need S3 storage (AWS_STORAGE_BUCKET_NAME); send the photo in the scan request.",
        )


def shopper_prefix(shopper: Shopper) -> str:
    return f"uploads/{shopper.id}/"


def _full_key(name: str) -> str:
    location = (getattr(default_storage, "location", "") or "").strip("/")
    return f"{location}/{name}" if location else name


def presigned_upload(*, shopper: Shopper) -> dict:
    """A one-object POST policy: key under the shopper's prefix, at most UPLOAD_MAX_BYTES."""
    _require_s3()
    name = f"{shopper_prefix(shopper)}{uuid.uuid4().hex}"
    expires = settings.UPLOAD_URL_EXPIRE_SECONDS
    client = default_storage.connection.meta.client
    post = client.generate_presigned_post(
        Bucket=settings.AWS_STORAGE_BUCKET_NAME,
        Key=_full_key(name),
        Conditions=[["content-length-range", 1, settings.UPLOAD_MAX_BYTES]],
        ExpiresIn=expires,
    )
    return {
        "url": post["url"],
        "fields": post["fields"],
        "upload_key": name,
        "max_bytes": settings.UPLOAD_MAX_BYTES,
        "expires_at": timezone.now() + timedelta(seconds=expires),
    }


def read_uploaded(*, shopper: Shopper, key: str) -> bytes:
    """The bytes of an object the shopper uploaded directly (`delete_uploaded` once it is used)."""
    _require_s3()
    if not key.startswith(shopper_prefix(shopper)) or ".." in key:
        raise Problem(status=404, code="upload_not_found", detail="No such upload for this shopper.")
    if not default_storage.exists(key):
        raise Problem(status=404, code="upload_not_found", detail="No such upload (expired, or not sent yet).")
    size = default_storage.size(key)
    if size > settings.UPLOAD_MAX_BYTES:
        default_storage.delete(key)
        raise Problem(status=413, code="too_many_bytes", detail="The uploaded photo is too large.")
    with default_storage.open(key, "rb") as f:
        return f.read()


def delete_uploaded(*, key: str) -> None:
    """Delete a direct upload that became a scan (the scan keeps its own copy of the photo)."""
    try:
        default_storage.delete(key)
    except Exception:  # the scan is made: a file left behind is logged, and erased with the shopper
        logger.exception("direct upload not deleted", extra={"upload_key": key})
