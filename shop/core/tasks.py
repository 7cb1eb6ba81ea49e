from celery import shared_task

from shop.celery import default_task
from shop.core.idempotency import idempotency_records_purge
from shop.core.services import pending_files_delete, worker_heartbeat_record


@shared_task(bind=True, ignore_result=True)
def worker_heartbeat(self, queue: str) -> None:
    """Record that a worker consumed this queue; beat sends one to every queue."""
    worker_heartbeat_record(hostname=self.request.hostname or "unknown", queue=queue)


@default_task
def purge_idempotency_records() -> int:
    """Forget Idempotency-Key answers past IDEMPOTENCY_KEY_TTL_HOURS (the table would grow forever)."""
    return idempotency_records_purge()


@default_task
def delete_pending_files(ids: list[int] | None = None) -> int:
    """Delete recorded files (`files_delete_after_commit`): those given, or every one left (beat's
    sweep). Returns how many records are done."""
    done, _ = pending_files_delete(ids=ids)
    return done
