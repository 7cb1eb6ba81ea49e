"""Embedding catalog images and keeping their vectors current (called by tasks and commands)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from catalog.models import ImageEmbedding, ProductImage
from shop import vision_adapter
from shop.core.locks import key_share
from shop.core.storage_errors import storage_busy, storage_error_code, storage_refused

logger = logging.getLogger(__name__)


@dataclass
class IndexResult:
    embedded: int = 0  # vectors written
    skipped: int = 0  # vectors already current (same image, key and content)
    failed: dict[int, str] = field(default_factory=dict)  # image id -> reason
    deferred: set[int] = field(default_factory=set)  # the storage was busy: left pending for the sweep
    unavailable: dict[str, str] = field(default_factory=dict)  # model key -> why this worker cannot load it


def _load_pictures(images: list[ProductImage], result: IndexResult):
    """Each picture's main item, as photos' items are seen (vision.crops)."""
    pictures = {}
    for image in images:
        try:
            with image.image.open("rb") as f:
                data = f.read()
            pictures[image.id] = vision_adapter.main_item_view(vision_adapter.decode(data).image)
        except vision_adapter.ImageRejected as exc:
            result.failed[image.id] = f"{exc.code}: {exc}"
        except OSError as exc:
            result.failed[image.id] = f"file unreadable: {exc}"
        except Exception as exc:
            if storage_busy(exc):  # not the picture's fault: it stays pending, beat's sweep tries it again
                logger.warning("storage busy; image %s left pending: %s", image.id, exc)
                result.deferred.add(image.id)
            elif storage_refused(exc):  # one unreadable file must not stop its batch
                result.failed[image.id] = f"file unreadable: the storage answered {storage_error_code(exc)}"
            else:
                raise
    return pictures


def index_images(*, image_ids: list[int], model_keys: list[str], mark_state: bool = True,
                 force: bool = False) -> IndexResult:
    """Embed the images with each model key and upsert their vectors.

    Idempotent by (image, model key, sha256): a vector made from the same content is kept as it is,
    unless `force` (`reindex --all`): then it is replaced in place, serving until its successor is written.
    The images' state changes only if their content did not change meanwhile (compare-and-set on
    sha256), so a newer upload is never marked indexed with an older vector.
    """
    result = IndexResult()
    images = list(ProductImage.objects.filter(id__in=image_ids))
    if not images:
        return result
    pictures: dict | None = None
    primary_key = model_keys[0] if model_keys else None
    for key in model_keys:
        current = set(
            ImageEmbedding.objects.filter(image__in=images, model_key=key).values_list("image_id", "sha256")
        )
        todo = [image for image in images if force or (image.id, image.sha256) not in current]
        result.skipped += len(images) - len(todo)
        if not todo:
            continue
        try:  # before the pictures are read: a worker without the model reads no picture for nothing
            embedder = vision_adapter.get_embedder(key)
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            # the worker's doing (weights not deployed, a model that does not build, out of memory),
            # not the pictures': they stay as they are, for a worker that has the model
            logger.error("embedding with %s impossible on this worker; images left pending: %s", key, exc)
            _leave_pending(result, key, exc, todo if key == primary_key else [])
            continue
        if pictures is None:
            pictures = _load_pictures(images, result)
        todo = [image for image in todo if image.id in pictures]
        if not todo:
            continue
        try:
            vectors = embedder.embed_images([pictures[image.id] for image in todo])
        except SoftTimeLimitExceeded:
            raise  # the task's time is up: the batch stays pending for the next run, it is not failed
        except Exception as exc:
            if _out_of_memory(exc):  # the worker's state, not the pictures': they stay pending, for later
                logger.error("embedding with %s ran out of memory; images left pending: %s", key, exc)
                _leave_pending(result, key, exc, todo if key == primary_key else [])
                continue
            # an unusable model is reported on the images, not raised in a loop
            logger.exception("embedding with %s failed", key)
            if key == primary_key:
                for image in todo:
                    result.failed[image.id] = f"model {key}: {type(exc).__name__}: {exc}"
            continue
        now = timezone.now()
        with transaction.atomic():
            # a picture whose product was deleted while it was embedded gets no vector (its insert failed
            # the whole run at the commit); the rest keep theirs, and no delete slips in until they are written
            alive = key_share(ProductImage, [image.id for image in todo])
            rows = [
                ImageEmbedding(
                    image_id=image.id,
                    model_key=key,
                    embedding=vector,
                    sha256=image.sha256,
                    pretrained=bool(embedder.pretrained),
                    created_at=now,
                )
                for image, vector in zip(todo, vectors, strict=True)
                if image.id in alive
            ]
            ImageEmbedding.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["image", "model_key"],
                update_fields=["embedding", "sha256", "pretrained", "created_at"],
            )
        result.embedded += len(rows)
    if mark_state:
        _mark_states(images, result)
    return result


def _leave_pending(result: IndexResult, key: str, exc: Exception, images: list[ProductImage]) -> None:
    """`key` cannot be used by this worker now: its pictures stay as they are (pending), the reason kept."""
    result.unavailable[key] = f"{type(exc).__name__}: {exc}"
    result.deferred.update(image.id for image in images)


def _out_of_memory(exc: Exception) -> bool:
    """PyTorch's allocators raise RuntimeError ("DefaultCPUAllocator: not enough memory", "CUDA out of
    memory", torch.cuda.OutOfMemoryError is one) or MemoryError."""
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and re.search(r"out of memory|not enough memory", str(exc), re.IGNORECASE) is not None
    )


def _mark_states(images: list[ProductImage], result: IndexResult) -> None:
    with transaction.atomic():
        for image in images:
            if image.id in result.deferred:
                continue
            unchanged = ProductImage.objects.filter(id=image.id, sha256=image.sha256)
            if image.id in result.failed:
                unchanged.update(index_state=ProductImage.IndexState.FAILED, index_error=result.failed[image.id])
            else:
                unchanged.update(index_state=ProductImage.IndexState.INDEXED, index_error="")
