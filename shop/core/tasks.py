from celery import shared_task

from shop.core.services import worker_heartbeat_record


@shared_task(bind=True, ignore_result=True)
def worker_heartbeat(self, queue: str) -> None:
    """Record that a worker consumed this queue; beat sends one to every queue."""
    worker_heartbeat_record(hostname=self.request.hostname or "unknown", queue=queue)

