import uuid

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from shop.core.pictures import picture_suffix
from shop.core.validators import no_null_characters_in_json
from shop.scans.models import Scan
from shop.shoppers.models import Shopper


class Campaign(models.Model):
    class Channel(models.TextChoices):
        MAGAZINE = "magazine", "magazine"
        POSTER = "poster", "poster"
        FLYER = "flyer", "flyer"
        NEWSPAPER = "newspaper", "newspaper"
        PACKAGING = "packaging", "packaging"
        OTHER = "other", "other"

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        ACTIVE = "active", "active"
        PAUSED = "paused", "paused"
        ENDED = "ended", "ended"

    name = models.CharField(max_length=200)
    code = models.SlugField(max_length=64, unique=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    region = models.CharField(max_length=64, blank=True)
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)
    budget = models.DecimalField(max_digits=12, decimal_places=2, default=0, validators=[MinValueValidator(0)])
    # ISO 4217, as orders spell it: the ROI report counts orders of this currency against the spend
    currency = models.CharField(max_length=3, default="EUR", validators=[
        RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code in capitals, as orders have it (EUR, USD...).")])
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_on", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__isnull=True) | models.Q(ends_on__gte=models.F("starts_on")),
                name="campaign_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def clean_fields(self, exclude=None) -> None:
        self.currency = (self.currency or "").strip().upper()  # `eur` is EUR, before the check
        super().clean_fields(exclude)


class SpendEntry(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="spend")
    date = models.DateField()
    amount = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["campaign_id", "date"]
        verbose_name_plural = "spend entries"
        indexes = [models.Index(fields=["campaign", "date"])]

    def __str__(self) -> str:
        return f"{self.campaign.code} {self.date}: {self.amount}"


def creative_upload_to(instance: "AdCreative", filename: str) -> str:
    return f"creatives/{uuid.uuid4().hex}{picture_suffix(filename)}"


class AdCreative(models.Model):
    """A printed ad's artwork. Its local features are extracted once, when the file is saved."""

    class Status(models.TextChoices):
        ACTIVE = "active", "active (recognised in scans)"
        INACTIVE = "inactive", "inactive"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="creatives")
    name = models.CharField(max_length=200)
    image = models.FileField(upload_to=creative_upload_to, max_length=255)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    metadata = models.JSONField(
        default=dict, blank=True, validators=[no_null_characters_in_json],
        help_text='Returned to the app on a match, e.g. {"headline": "...", "url": "..."}',
    )
    products = models.ManyToManyField("catalog.Product", through="AdCreativeProduct", related_name="creatives")
    features = models.BinaryField(editable=False, null=True)
    feature_count = models.PositiveIntegerField(default=0, editable=False)
    width = models.PositiveIntegerField(default=0, editable=False)
    height = models.PositiveIntegerField(default=0, editable=False)
    rating = models.PositiveSmallIntegerField(
        default=0, editable=False, validators=[MinValueValidator(0), MaxValueValidator(5)], help_text="recognisability, 1-5"
    )
    rating_details = models.JSONField(default=dict, editable=False)
    duplicate_of = models.JSONField(
        default=list, null=True, editable=False,
        help_text="near-duplicate creatives: [[id, similarity]]; null while a vision worker has not checked yet",
    )
    updated_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign_id", "name"]

    def __str__(self) -> str:
        return self.name


class AdCreativeProduct(models.Model):
    """A product an ad promotes, with where it is printed on the page (fractions of the artwork)."""

    creative = models.ForeignKey(AdCreative, on_delete=models.CASCADE, related_name="placements")
    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    x0 = models.FloatField(null=True, blank=True, help_text="left edge, a fraction of the artwork's width (0-1)")
    y0 = models.FloatField(null=True, blank=True, help_text="top edge, a fraction of its height (0-1)")
    x1 = models.FloatField(null=True, blank=True, help_text="right edge (0-1, right of the left edge)")
    y1 = models.FloatField(null=True, blank=True, help_text="bottom edge (0-1, below the top edge)")

    class Meta:
        ordering = ["creative_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["creative", "product"], name="uniq_creative_product"),
            models.CheckConstraint(
                # a CHECK passes on NULL: one edge missing must make the box branch false, not unknown
                condition=models.Q(x0__isnull=True, y0__isnull=True, x1__isnull=True, y1__isnull=True)
                | models.Q(x0__isnull=False, y0__isnull=False, x1__isnull=False, y1__isnull=False,
                           x0__gte=0, y0__gte=0, x1__lte=1, y1__lte=1, x0__lt=models.F("x1"), y0__lt=models.F("y1")),
                name="creative_product_box_in_page",
                violation_error_message="A product's position is four fractions of the artwork (0-1, left < right, "
                "top < bottom), or none.",
            ),
        ]


class ScanAttribution(models.Model):
    """A scan that recognised a campaign's creative: the touch that orders are attributed to."""

    scan = models.OneToOneField(Scan, on_delete=models.CASCADE, related_name="attribution")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="scan_attributions")
    # A creative that scans recognised is set inactive, not deleted: its scans are the campaign's history
    # (deleting the whole campaign still deletes them with it)
    creative = models.ForeignKey(AdCreative, on_delete=models.RESTRICT, related_name="scan_attributions")
    shopper = models.ForeignKey(Shopper, on_delete=models.SET_NULL, null=True, related_name="ad_scans")
    # in place of the shopper once erased: a random key per erasure, linked to no one, so that reports
    # still count the distinct people who scanned (a report of the past does not change with erasures)
    erased_shopper = models.UUIDField(null=True, blank=True, editable=False)
    confidence = models.FloatField()
    homography = models.JSONField(help_text="3x3, creative pixels -> photo pixels")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["shopper", "-created_at"]), models.Index(fields=["campaign", "created_at"])]



class OrderLineAttribution(models.Model):
    """Product rule, last touch: the order line's product was promoted by the campaign whose ad the
    shopper scanned most recently within the window before the order."""

    line = models.OneToOneField("carts.OrderLine", on_delete=models.CASCADE, related_name="attribution")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="line_attributions")
    touch = models.ForeignKey(ScanAttribution, on_delete=models.SET_NULL, null=True, related_name="+")
    window_days = models.PositiveSmallIntegerField(help_text="the window in force when the order was placed")
    revenue = models.DecimalField(max_digits=12, decimal_places=2)
    units = models.PositiveIntegerField()
    attributed_at = models.DateTimeField(db_index=True, help_text="when the order was placed")


class OrderCampaignAttribution(models.Model):
    """Campaign rule: the shopper scanned any ad of the campaign within the window before the order;
    the whole order counts for the campaign (an order may count for several campaigns)."""

    order = models.ForeignKey("carts.Order", on_delete=models.CASCADE, related_name="campaign_attributions")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="order_attributions")
    touch = models.ForeignKey(ScanAttribution, on_delete=models.SET_NULL, null=True, related_name="+")
    window_days = models.PositiveSmallIntegerField()
    revenue = models.DecimalField(max_digits=12, decimal_places=2)
    units = models.PositiveIntegerField()
    attributed_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "campaign"], name="uniq_order_campaign")]
