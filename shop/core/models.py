from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker answered on a queue (shown by /readyz and in admin)."""

    hostname = models.CharField(max_length=255)
    queue = models.CharField(max_length=32)
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hostname", "queue"], name="uniq_worker_queue")]
        ordering = ["queue", "hostname"]

    def __str__(self) -> str:
        return f"{self.hostname} on {self.queue}"
