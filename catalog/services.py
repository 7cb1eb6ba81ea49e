"""Writes to the catalog."""

from __future__ import annotations

import logging
import re

from django.db import connection, transaction

from catalog.models import EmbeddingModel, ImageEmbedding, ProductImage
from shop import vision_adapter

STALE = "stale"  # an ImageEmbedding's sha256 when its image is queued for re-embedding: no content has it

logger = logging.getLogger(__name__)


def hnsw_index_name(key: str) -> str:
    return "catalog_emb_hnsw_" + re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")[:40]


def _create_hnsw_index(*, key: str, dim: int, index_name: str) -> None:
    """A partial HNSW index on the key's rows, built without locking writes to the table."""
    from psycopg import sql

    statement = sql.SQL(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON catalog_imageembedding "
        "USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
        "WHERE model_key = {key}"
    ).format(name=sql.Identifier(index_name), dim=sql.Literal(dim), key=sql.Literal(key))
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(cursor.connection))


def embedding_model_enable(*, key: str, activate: bool = False) -> EmbeddingModel:
    """Enable a registry key: its HNSW index is created and its vectors back-filled in the background."""
    from catalog.tasks import backfill_model

    dim = vision_adapter.model_dim(key)  # an unknown key raises here, naming the valid ones
    index_name = hnsw_index_name(key)

    def after_commit() -> None:
        # Outside the transaction: the index is built CONCURRENTLY, without blocking writes.
        _create_hnsw_index(key=key, dim=dim, index_name=index_name)
        backfill_model.delay(key)

    with transaction.atomic():
        model, created = EmbeddingModel.objects.get_or_create(key=key, defaults={"dim": dim, "index_name": index_name})
        if activate and not model.is_active:
            _activate(model)
        transaction.on_commit(after_commit)
    if created:
        logger.info("embedding model enabled", extra={"model_key": key, "dim": dim})
    return model


def embedding_model_ensure_default() -> EmbeddingModel:
    """Before anything was enabled, the configured key (VISION_MODEL) becomes the active one."""
    active = EmbeddingModel.objects.filter(is_active=True).first()
    if active:
        return active
    return embedding_model_enable(key=vision_adapter.configured_model_key(), activate=True)


def _activate(model: EmbeddingModel) -> None:
    EmbeddingModel.objects.filter(is_active=True).exclude(pk=model.pk).update(is_active=False)
    model.is_active = True
    model.save(update_fields=["is_active"])


@transaction.atomic
def embedding_model_activate(*, key: str) -> EmbeddingModel:
    """Make search use this key. It must be enabled; until its back-fill ends, products without a
    vector for it are simply not found, so switch once `index_counts` shows it complete."""
    model = EmbeddingModel.objects.select_for_update().get(key=key)
    _activate(model)
    logger.info("active embedding model switched", extra={"model_key": key})
    return model


def embedding_model_drop(*, key: str) -> int:
    """Delete a non-active key's vectors and its index. Returns the number of vectors deleted."""
    model = EmbeddingModel.objects.get(key=key)
    if model.is_active:
        raise ValueError(f"{key} is the active model; activate another key before dropping it")
    with transaction.atomic():
        deleted, _ = ImageEmbedding.objects.filter(model_key=key).delete()
        model.delete()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{model.index_name or hnsw_index_name(key)}"')
    return deleted


def product_images_mark_dirty(*, product_ids: list[int]) -> int:
    """Queue the images of these products for re-embedding (admin's "re-index" action). Their vectors are
    marked stale, not deleted: they keep serving search until the worker writes their successors in
    place (deleted, the products were out of search until then, or until the sweep with the worker down)."""
    from catalog.tasks import enqueue_indexing

    with transaction.atomic():
        count = ProductImage.objects.filter(product_id__in=product_ids).update(
            index_state=ProductImage.IndexState.PENDING, index_error=""
        )
        ImageEmbedding.objects.filter(image__product_id__in=product_ids).update(sha256=STALE)
        enqueue_indexing()
    return count
