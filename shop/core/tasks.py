from celery import shared_task
from django.conf import settings

from shop.celery import Queues
from shop.core.services import worker_heartbeat_record


@shared_task(bind=True, ignore_result=True)
def worker_heartbeat(self, queue: str) -> None:
    """Record that a worker consumed this queue; beat sends one to every queue."""
    worker_heartbeat_record(hostname=self.request.hostname or "unknown", queue=queue)


def heartbeat_schedule() -> dict:
    every = settings.WORKER_HEARTBEAT_SECONDS
    return {
        f"worker-heartbeat-{queue}": {
            "task": "shop.core.tasks.worker_heartbeat",
            "schedule": every,
            "args": (queue,),
            "options": {"queue": queue, "expires": every},
        }
        for queue in Queues.ALL
    }
