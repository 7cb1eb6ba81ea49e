"""Thin, idempotent indexing tasks on the vision queue.

Both tasks work in batches and stop starting new ones past half the task's soft time limit, then
send their continuation: a backlog of thousands of pictures outlasts one task's limit, and a batch cut
short by the limit stays pending (it is not failed), so nothing depends on the run finishing."""

from __future__ import annotations

import time
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction

from catalog.indexing import index_images
from shop.celery import default_task, send_or_leave_to_sweep, vision_task

# pg_try_advisory_lock's keys: one indexing run at a time (each commit of an import queues one; they
# would all embed the same lowest pending pictures, in lockstep), one back-fill of a key at a time
_INDEXING_LOCK = 0x5F1D_0001
_BACKFILL_LOCK = 0x5F1D_0002


def _send_index_task() -> None:
    send_or_leave_to_sweep(index_dirty_images, what="indexing", sweep="the index-dirty-images sweep")


def enqueue_indexing() -> None:
    """Queue one indexing run when the current transaction commits (once, however many images)."""
    if any(callback is _send_index_task for _, callback, _ in connection.run_on_commit):
        return
    transaction.on_commit(_send_index_task)


def _deadline() -> float:
    return time.monotonic() + settings.VISION_TASK_SOFT_TIME_LIMIT / 2


@contextmanager
def _only_run(lock: int, sub: int = 0):
    """True for the one process holding the lock (released when its connection closes, even if the
    process dies), False for the others: the run in progress does their work too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [lock, sub])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [lock, sub])


@vision_task
def index_dirty_images(skip: list[int] | None = None) -> int:
    """Embed pending images in batches; returns how many vectors were written. `skip`: pictures a
    previous run of this backlog left pending (the storage busy), for the sweep to try again."""
    from catalog.models import ProductImage
    from catalog.selectors import enabled_model_keys
    from catalog.services import embedding_model_ensure_default

    embedding_model_ensure_default()
    keys = enabled_model_keys()
    seen: set[int] = set(skip or ())
    left: set[int] = set(skip or ())  # still pending after this run's look
    written, deadline, more, unusable = 0, _deadline(), False, False
    with _only_run(_INDEXING_LOCK) as held:
        if not held:
            return 0
        while True:
            batch = list(
                ProductImage.objects.filter(index_state=ProductImage.IndexState.PENDING)
                .exclude(id__in=seen)
                .order_by("id")
                .values_list("id", flat=True)[: settings.INDEX_BATCH_SIZE]
            )
            if not batch:
                break
            if seen - set(skip or ()) and time.monotonic() > deadline:  # each run does one batch at least
                more = True
                break
            seen.update(batch)
            result = index_images(image_ids=batch, model_keys=keys)
            written += result.embedded
            left |= result.deferred
            if keys[0] in result.unavailable:  # no weights on this worker: no use reading the rest
                unusable = True
                break
    # Pictures that turned pending after this run's last look, while a run that found the lock held
    # gave up (this run was to take them up): the continuation does.
    if not more and not unusable:
        more = (ProductImage.objects.filter(index_state=ProductImage.IndexState.PENDING)
                .exclude(id__in=seen).exists())
    if more:  # after the lock is released, so that the continuation can take it
        send_or_leave_to_sweep(index_dirty_images, sorted(left), what="indexing (continued)",
                               sweep="the index-dirty-images sweep")
    return written


@vision_task
def backfill_model(model_key: str, after_id: int = 0) -> int:
    """Give every image a vector for a newly enabled key, while search keeps using the active key.
    Goes through the images in id order, so an image that fails is tried once per back-fill."""
    from catalog.models import EmbeddingModel
    from catalog.selectors import images_missing_embeddings

    written, deadline, more, start = 0, _deadline(), False, after_id
    model = EmbeddingModel.objects.filter(key=model_key).first()
    if model is None:
        return 0
    with _only_run(_BACKFILL_LOCK, model.pk) as held:
        if not held:
            return 0
        while EmbeddingModel.objects.filter(key=model_key).exists():
            batch = list(
                images_missing_embeddings(model_key=model_key)
                .filter(id__gt=after_id)
                .order_by("id")
                .values_list("id", flat=True)[: settings.INDEX_BATCH_SIZE]
            )
            if not batch:
                break
            if after_id != start and time.monotonic() > deadline:  # each run does one batch at least
                more = True
                break
            result = index_images(image_ids=batch, model_keys=[model_key], mark_state=False)
            if model_key in result.unavailable:  # no weights on this worker: resume_backfills tries later
                break
            written += result.embedded
            after_id = batch[-1]
    if more:
        send_or_leave_to_sweep(backfill_model, model_key, after_id, what="back-fill (continued)",
                               sweep="the resume-backfills sweep")
    return written


@default_task
def resume_backfills() -> int:
    """Beat's sweep: a back-fill whose message was lost, or whose worker died, is started again for
    every enabled key that still lacks vectors. Returns how many were sent."""
    from catalog.selectors import enabled_model_keys, images_missing_embeddings

    from catalog.models import ProductImage
    from shop import vision_adapter

    sent = 0
    for key in enabled_model_keys()[1:]:  # the active key's vectors are index_dirty_images' work
        if vision_adapter.model_status(key)["error"]:  # its weights are not here: nothing to do yet
            continue
        # pictures that failed (unreadable, not a picture) would start a back-fill at every sweep
        if images_missing_embeddings(model_key=key).exclude(index_state=ProductImage.IndexState.FAILED).exists():
            backfill_model.delay(key)
            sent += 1
    return sent
