from django.db import transaction
from django.utils import timezone

from shop.core.models import WorkerHeartbeat


@transaction.atomic
def worker_heartbeat_record(*, hostname: str, queue: str) -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, queue=queue, defaults={"seen_at": timezone.now()}
    )
    return heartbeat
