"""Thin, idempotent indexing tasks on the vision queue."""

from __future__ import annotations

from django.conf import settings
from django.db import connection, transaction

from catalog.indexing import index_images
from shop.celery import send_or_leave_to_sweep, vision_task


def _send_index_task() -> None:
    send_or_leave_to_sweep(index_dirty_images, what="indexing", sweep="the index-dirty-images sweep")


def enqueue_indexing() -> None:
    """Queue one indexing run when the current transaction commits (once, however many images)."""
    if any(callback is _send_index_task for _, callback, _ in connection.run_on_commit):
        return
    transaction.on_commit(_send_index_task)


@vision_task
def index_dirty_images() -> int:
    """Embed every pending image in batches; returns how many vectors were written."""
    from catalog.models import ProductImage
    from catalog.selectors import enabled_model_keys
    from catalog.services import embedding_model_ensure_default

    embedding_model_ensure_default()
    keys = enabled_model_keys()
    seen: set[int] = set()
    written = 0
    while True:
        batch = list(
            ProductImage.objects.filter(index_state=ProductImage.IndexState.PENDING)
            .exclude(id__in=seen)
            .order_by("id")
            .values_list("id", flat=True)[: settings.INDEX_BATCH_SIZE]
        )
        if not batch:
            return written
        seen.update(batch)
        written += index_images(image_ids=batch, model_keys=keys).embedded


@vision_task
def backfill_model(model_key: str) -> int:
    """Give every image a vector for a newly enabled key, while search keeps using the active key."""
    from catalog.models import EmbeddingModel
    from catalog.selectors import images_missing_embeddings

    seen: set[int] = set()  # an image that fails is tried once per run, not forever
    written = 0
    while EmbeddingModel.objects.filter(key=model_key).exists():
        batch = list(
            images_missing_embeddings(model_key=model_key)
            .exclude(id__in=seen)
            .order_by("id")
            .values_list("id", flat=True)[: settings.INDEX_BATCH_SIZE]
        )
        if not batch:
            break
        seen.update(batch)
        written += index_images(image_ids=batch, model_keys=[model_key], mark_state=False).embedded
    return written
