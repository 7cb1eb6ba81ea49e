"""`Idempotency-Key` for POSTs that create things.

The same key with the same body returns the stored response (with `Idempotent-Replayed: true`);
the same key with another body is a 422 problem. Keys are per user and kept
IDEMPOTENCY_KEY_TTL_HOURS: an older one is a new key (its stored answer forgotten), and the
hourly `purge_idempotency_records` task deletes them.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from rest_framework.response import Response

from shop.core.models import IdempotencyRecord
from shop.core.problems import Problem

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def idempotent(*, request, request_fingerprint: str, produce: Callable[[], Response], atomic: bool = True) -> Response:
    """Run `produce` once per (user, key); replay its stored response for the same request.

    `atomic`: `produce` runs inside the transaction that stores its answer, and a concurrent request
    with the same key waits for it. `atomic=False`, for a `produce` that must commit its own steps
    (checkout commits its order before the charge): the key is claimed in a first transaction, `produce`
    runs outside it and its answer is stored after; a concurrent request with the same key is answered
    409 `request_in_progress` meanwhile, and a claim older than IDEMPOTENCY_IN_PROGRESS_SECONDS (its
    process died) is taken over.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return produce()
    if not _VALID_KEY.match(key):
        raise Problem(status=400, code="invalid_idempotency_key", detail="Idempotency-Key: 1 to 255 printable ASCII characters.")
    if not atomic:
        return _idempotent_in_steps(request, key, request_fingerprint, produce)
    with transaction.atomic():
        record, replay = _claim(request, key, request_fingerprint)
        if replay is not None:
            return replay
        response = produce()
        if response.status_code >= 400:
            transaction.set_rollback(True)  # errors are not stored: the client may retry with the same key
            return response
        record.status_code, record.response_body = response.status_code, response.data
        record.save(update_fields=["fingerprint", "status_code", "response_body", "created_at"])
    return response


IN_PROGRESS = 0  # the status_code of a claimed key whose answer is not stored yet (atomic=False)


def _claim(request, key: str, request_fingerprint: str) -> tuple[IdempotencyRecord, Response | None]:
    """The key's record, locked (a concurrent request with the same key waits here on the unique index),
    and the stored answer to replay, if there is one."""
    record, created = IdempotencyRecord.objects.select_for_update().get_or_create(
        user=request.user,
        key=key,
        defaults={"fingerprint": request_fingerprint, "status_code": IN_PROGRESS, "response_body": {}},
    )
    if created:
        return record, None
    now = timezone.now()
    if record.created_at < expired_before(now):  # a new request under an old key: this one takes it
        record.fingerprint, record.status_code, record.response_body = request_fingerprint, IN_PROGRESS, {}
        record.created_at = now
        return record, None
    if record.fingerprint != request_fingerprint:
        raise Problem(
            status=422,
            code="idempotency_key_reused",
            detail="This Idempotency-Key was used with a different request; use a new key.",
        )
    if record.status_code == IN_PROGRESS and record.created_at < now - timedelta(
            seconds=settings.IDEMPOTENCY_IN_PROGRESS_SECONDS):  # a claim whose request died: this one takes it
        record.created_at = now
        return record, None
    if record.status_code == IN_PROGRESS:
        problem = Problem(status=409, code="request_in_progress",
                          detail="A request with this Idempotency-Key is still being processed; retry shortly.")
        problem.wait = 2
        raise problem
    response = Response(record.response_body, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return record, response


def _idempotent_in_steps(request, key: str, request_fingerprint: str, produce: Callable[[], Response]) -> Response:
    with transaction.atomic():
        record, replay = _claim(request, key, request_fingerprint)
        if replay is not None:
            return replay
        record.save()
    claimed = {"pk": record.pk, "status_code": IN_PROGRESS, "created_at": record.created_at}
    try:
        response = produce()
    except BaseException:
        _release(claimed)
        raise
    if response.status_code >= 400:
        _release(claimed)  # errors are not stored: the client may retry with the same key
        return response
    IdempotencyRecord.objects.filter(**claimed).update(status_code=response.status_code,
                                                       response_body=response.data)
    return response


def _release(claimed: dict) -> None:
    """Forget this request's claim (unless another took it over), so a retry with the key runs again."""
    try:
        IdempotencyRecord.objects.filter(**claimed).delete()
    except DatabaseError:  # the database gone: the claim is taken over once it is old
        logger.warning("could not release an Idempotency-Key claim", exc_info=True)


def expired_before(now=None):
    """Keys created before this time are forgotten."""
    return (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


def idempotency_records_purge(*, now=None) -> int:
    """Delete the stored answers of keys past IDEMPOTENCY_KEY_TTL_HOURS; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=expired_before(now)).delete()
    return deleted
