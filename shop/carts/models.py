import uuid
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from shop.shoppers.models import Shopper

CENT = Decimal("0.01")
MAX_LINE_QUANTITY = 99


class Cart(models.Model):
    """A shopper's basket. Each shopper has at most one open cart; checkout closes it."""

    class Status(models.TextChoices):
        OPEN = "open", "open"
        ORDERED = "ordered", "ordered"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    shopper = models.ForeignKey(Shopper, on_delete=models.CASCADE, related_name="carts")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["shopper"], condition=models.Q(status="open"), name="one_open_cart_per_shopper"
            )
        ]

    def __str__(self) -> str:
        return f"cart {self.id} ({self.status})"


class CartLine(models.Model):
    """A variant in a cart. Prices are read live from the variant until checkout captures them."""

    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey("catalog.Variant", on_delete=models.CASCADE, related_name="cart_lines")
    quantity = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(MAX_LINE_QUANTITY)])
    # The scan the shopper added it from (the latest one, when adds of the same variant merge).
    scan = models.ForeignKey("scans.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="cart_lines")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cart_id", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["cart", "variant"], name="uniq_cart_variant"),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1, quantity__lte=MAX_LINE_QUANTITY), name="cart_line_quantity_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x variant {self.variant_id}"

    @property
    def line_total(self) -> Decimal:
        return (self.variant.price * self.quantity).quantize(CENT)


class CartEvent(models.Model):
    """An "add to cart", counted per campaign by marketing reports. Append-only: rows are never
    changed, and removing a line from the cart does not remove its event."""

    shopper = models.ForeignKey(Shopper, on_delete=models.CASCADE, related_name="cart_events")
    variant = models.ForeignKey("catalog.Variant", null=True, on_delete=models.SET_NULL, related_name="+")
    product = models.ForeignKey("catalog.Product", null=True, on_delete=models.SET_NULL, related_name="+")
    quantity = models.PositiveSmallIntegerField()
    scan = models.ForeignKey("scans.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="cart_events")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("cart events are append-only")
        super().save(*args, **kwargs)


class Order(models.Model):
    """A checked-out cart, with prices captured at order time.

    pending_payment -> paid | payment_failed; paid -> fulfilled | cancelled (cancelling restores stock).
    """

    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", "pending payment"
        PAID = "paid", "paid"
        PAYMENT_FAILED = "payment_failed", "payment failed"
        FULFILLED = "fulfilled", "fulfilled"
        CANCELLED = "cancelled", "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Orders are accounting records: deleting a shopper must decide what happens to them first.
    shopper = models.ForeignKey(Shopper, on_delete=models.PROTECT, related_name="orders")
    cart = models.ForeignKey(Cart, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING_PAYMENT, db_index=True)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    item_count = models.PositiveIntegerField()
    payment_provider = models.CharField(max_length=200)
    payment_reference = models.CharField(max_length=200, blank=True)
    refund_reference = models.CharField(max_length=200, blank=True, help_text="the provider's refund, once cancelled")
    payment_failure_reason = models.CharField(max_length=200, blank=True)
    # the checkout's Idempotency-Key, if it had one: a retry under it finds this order even when the
    # stored answer was lost (the order paid, the answer's write failing after)
    client_key = models.CharField(max_length=255, blank=True)
    # when a checkout last asked the provider to charge it: the reconciliation sweep leaves it alone
    # until CHECKOUT_PENDING_SECONDS after that, so it never settles an order a retry is charging
    payment_attempted_at = models.DateTimeField(null=True, blank=True)
    # a charge that came after the order was given up, whose refund got no answer yet: the sweep tries again
    refund_due = models.BooleanField(default=False)
    # An order still pending payment when its shopper was erased: the erasure's key, the one its ad
    # scans' attributions got, so that the order paid later is still attributed to their campaigns.
    erased_shopper = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["shopper", "-created_at"]),
            models.Index(fields=["shopper", "client_key"], condition=~models.Q(client_key=""), name="order_client_key"),
            models.Index(fields=["payment_attempted_at"], condition=models.Q(status="pending_payment"),
                         name="order_pending_attempts"),
        ]

    def __str__(self) -> str:
        return f"order {self.id} ({self.status})"


class OrderLine(models.Model):
    """What was bought, as it was when the order was placed; later catalog edits change nothing."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey("catalog.Variant", null=True, on_delete=models.SET_NULL, related_name="order_lines")
    product = models.ForeignKey("catalog.Product", null=True, on_delete=models.SET_NULL, related_name="order_lines")
    sku = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    options = models.JSONField(default=dict)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    quantity = models.PositiveSmallIntegerField()
    line_total = models.DecimalField(max_digits=12, decimal_places=2)
    scan = models.ForeignKey("scans.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="order_lines")

    class Meta:
        ordering = ["order_id", "id"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"
