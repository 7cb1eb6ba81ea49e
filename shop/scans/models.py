import uuid

from django.db import models

from shop.shoppers.models import Shopper


def scan_photo_upload_to(instance: "Scan", filename: str) -> str:
    # Server-generated and under the shopper's prefix; the app's file name is never used.
    return f"scans/{instance.shopper_id}/{instance.id}.jpg"


class Scan(models.Model):
    """A photo a shopper sent, and what the vision worker found in it."""

    class Kind(models.TextChoices):
        AUTO = "auto", "auto"
        LOOK = "look", "shop the look"
        AD = "ad", "ad scan"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        PROCESSING = "processing", "processing"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    class ResultKind(models.TextChoices):
        LOOK = "look", "items and similar products"
        AD = "ad", "a recognised ad"
        NONE = "none", "no ad recognised"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    shopper = models.ForeignKey(Shopper, on_delete=models.CASCADE, related_name="scans")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.AUTO)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    result_kind = models.CharField(max_length=4, choices=ResultKind.choices, blank=True)
    failure_reason = models.TextField(blank=True)
    # The cleaned copy (re-encoded JPEG, no EXIF/GPS); emptied by the retention purge.
    photo = models.FileField(upload_to=scan_photo_upload_to, max_length=255, blank=True)
    photo_deleted_at = models.DateTimeField(null=True, blank=True)
    photo_sha256 = models.CharField(max_length=64, blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    filters = models.JSONField(default=dict, blank=True)
    model_key = models.CharField(max_length=64, blank=True)
    model_pretrained = models.BooleanField(null=True)
    timings = models.JSONField(default=dict, blank=True, help_text="milliseconds per pipeline stage")
    attempts = models.PositiveSmallIntegerField(default=0)
    # the task message that last claimed it: its redelivery may run it again at once, another copy
    # only once that run is past the task's time limit
    claimed_by = models.CharField(max_length=64, blank=True, editable=False)
    # when beat last sent it again: once per SCAN_REQUEUE_AFTER_SECONDS, not every minute of a backlog
    requeued_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["shopper", "-created_at"])]

    def __str__(self) -> str:
        return f"scan {self.id} ({self.status})"


# A finished scan's answer is final, a failure too: another delivery of its message, still running when
# it failed, must not turn it into a result the app was told it would not get.
FINISHED = (Scan.Status.DONE, Scan.Status.FAILED)


class ScanItem(models.Model):
    """An item found in a scan's photo; the box is normalised to 0..1 of the photo's size."""

    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveSmallIntegerField()
    x0 = models.FloatField()
    y0 = models.FloatField()
    x1 = models.FloatField()
    y1 = models.FloatField()
    category = models.CharField(max_length=64)
    score = models.FloatField()
    whole_image = models.BooleanField(default=False)
    colors = models.JSONField(default=list, help_text='[{"name": "red", "hex": "#c81e28", "share": 0.7}, ...]')
    confident = models.BooleanField(default=False, help_text="the best match scored above SCAN_MIN_SCORE")

    class Meta:
        ordering = ["scan_id", "position"]
        constraints = [models.UniqueConstraint(fields=["scan", "position"], name="uniq_scan_item_position")]


class ScanMatch(models.Model):
    item = models.ForeignKey(ScanItem, on_delete=models.CASCADE, related_name="matches")
    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="scan_matches")
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField()

    class Meta:
        ordering = ["item_id", "rank"]
        constraints = [models.UniqueConstraint(fields=["item", "rank"], name="uniq_scan_match_rank")]
