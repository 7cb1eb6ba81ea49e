"""`Idempotency-Key` for POSTs that create things.

The same key with the same body returns the stored response (with `Idempotent-Replayed: true`);
the same key with another body is a 422 problem. Keys are per user and kept
IDEMPOTENCY_KEY_TTL_HOURS.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from django.db import transaction
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
        record.save(update_fields=["status_code", "response_body"])
    return response
