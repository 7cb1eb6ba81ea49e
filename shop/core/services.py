import contextlib
import logging
import os
from datetime import timedelta

from botocore.exceptions import BotoCoreError
from django.conf import settings
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone

from shop.core.models import PendingFileDeletion, WorkerHeartbeat

logger = logging.getLogger(__name__)


@transaction.atomic
def worker_heartbeat_record(*, hostname: str, queue: str) -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, queue=queue, defaults={"seen_at": timezone.now()}
    )
    return heartbeat


def files_delete_after_commit(*, names=(), prefixes=(), storage: str = "default") -> None:
    """Record files (and prefixes) to delete; a worker deletes them once the transaction has
    committed, and beat's sweep tries again whatever the storage did not delete then (down, slow,
    refusing). A rolled-back transaction keeps its files and leaves no record."""
    rows = [PendingFileDeletion(storage=storage, name=name, prefix=False) for name in dict.fromkeys(names) if name]
    rows += [PendingFileDeletion(storage=storage, name=prefix, prefix=True) for prefix in dict.fromkeys(prefixes)]
    if not rows:
        return
    with transaction.atomic():
        ids = [row.id for row in PendingFileDeletion.objects.bulk_create(rows)]
    transaction.on_commit(lambda: _send_file_deletions(ids))


def _send_file_deletions(ids: list[int]) -> None:
    from shop.celery import send_or_leave_to_sweep
    from shop.core.tasks import delete_pending_files

    send_or_leave_to_sweep(delete_pending_files, ids, what="file deletion", sweep="the delete-pending-files sweep")


def file_deletion_settle() -> timedelta:
    """How long after its record a prefix is listed again: FILE_DELETION_SETTLE_SECONDS, and at least
    as long as a direct-upload URL issued just before the erasure lets its holder store a file."""
    return timedelta(seconds=max(settings.FILE_DELETION_SETTLE_SECONDS, settings.UPLOAD_URL_EXPIRE_SECONDS + 60))


def pending_files_delete(*, ids: list[int] | None = None, now=None) -> tuple[int, int]:
    """Delete recorded files through the storage API, oldest first: (records done, records left).
    One record at a time, locked (two runs never delete the same one). A file already gone counts as
    deleted; a storage that does not answer ends the run (every other file would wait as long)."""
    now = now or timezone.now()
    settle = file_deletion_settle()
    todo = PendingFileDeletion.objects.all()
    if ids is not None:
        todo = todo.filter(id__in=ids)
    done = left = 0
    for record_id in list(todo.values_list("id", flat=True)):
        with transaction.atomic():
            record = PendingFileDeletion.objects.select_for_update(skip_locked=True).filter(id=record_id).first()
            if record is None:  # another run has it, or has done it
                continue
            storage = storages[record.storage]
            try:
                _delete_stored(storage, record)
            except Exception as exc:  # botocore's errors, OSError on local storage
                record.attempts += 1
                record.last_error = repr(exc)[:1000]
                record.save(update_fields=["attempts", "last_error"])
                logger.warning("stored file not deleted; the next sweep tries again",
                               extra={"file": str(record), "attempts": record.attempts, "error": record.last_error})
                left += 1
                if isinstance(exc, BotoCoreError):
                    break
                continue
            if record.prefix and now - record.created_at < settle:
                left += 1  # listed again by a later sweep, for files written into it meanwhile
                continue
            record.delete()
            done += 1
    return done, left


def _delete_stored(storage, record) -> None:
    if not record.prefix:
        storage.delete(record.name)
        return
    try:
        _, files = storage.listdir(record.name)
    except FileNotFoundError:  # a local directory never created, or removed by an earlier run
        return
    for name in files:
        storage.delete(record.name + name)
    if hasattr(storage, "path"):  # local storage leaves the (shopper-named) directory behind
        with contextlib.suppress(OSError, NotImplementedError):
            os.rmdir(storage.path(record.name))
