"""`Idempotency-Key` for POSTs that create things.

The same key with the same body returns the stored response (with `Idempotent-Replayed: true`);
the same key with another body is a 422 problem. Keys are per user and kept
IDEMPOTENCY_KEY_TTL_HOURS: an older one is a new key (its stored answer forgotten), and the
hourly `purge_idempotency_records` task deletes them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.response import Response

from shop.core.models import IdempotencyRecord
from shop.core.problems import Problem

HEADER = "Idempotency-Key"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def idempotent(*, request, request_fingerprint: str, produce: Callable[[], Response]) -> Response:
    """Run `produce` once per (user, key); replay its stored response for the same request."""
    key = request.headers.get(HEADER)
    if key is None:
        return produce()
    if not _VALID_KEY.match(key):
        raise Problem(status=400, code="invalid_idempotency_key", detail="Idempotency-Key: 1 to 255 printable ASCII characters.")
    with transaction.atomic():
        # A concurrent request with the same key waits here on the unique index until this one commits.
        record, created = IdempotencyRecord.objects.select_for_update().get_or_create(
            user=request.user,
            key=key,
            defaults={"fingerprint": request_fingerprint, "status_code": 0, "response_body": {}},
        )
        if not created and record.created_at < expired_before():  # a new request under an old key
            record.fingerprint, record.status_code, record.response_body = request_fingerprint, 0, {}
            record.created_at = timezone.now()
            created = True
        if not created:
            if record.fingerprint != request_fingerprint:
                raise Problem(
                    status=422,
                    code="idempotency_key_reused",
                    detail="This Idempotency-Key was used with a different request; use a new key.",
                )
            response = Response(record.response_body, status=record.status_code)
            response["Idempotent-Replayed"] = "true"
            return response
        response = produce()
        if response.status_code >= 400:
            transaction.set_rollback(True)  # errors are not stored: the client may retry with the same key
            return response
        record.status_code, record.response_body = response.status_code, response.data
        record.save(update_fields=["fingerprint", "status_code", "response_body", "created_at"])
    return response


def expired_before(now=None):
    """Keys created before this time are forgotten."""
    return (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


def idempotency_records_purge(*, now=None) -> int:
    """Delete the stored answers of keys past IDEMPOTENCY_KEY_TTL_HOURS; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=expired_before(now)).delete()
    return deleted
