"""Writes for carts and orders: adding to the cart, checkout with an atomic stock decrement, cancel.

Lock order, the same everywhere so that concurrent requests queue instead of deadlocking:
the shopper's open cart (or the order), then the variants by ascending id.
"""

from __future__ import annotations

import hashlib
import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import Variant
from shop.carts.models import CENT, MAX_LINE_QUANTITY, Cart, CartEvent, CartLine, Order, OrderLine
from shop.carts.payments import payment_provider, provider_at, provider_path
from shop.carts.signals import order_placed
from shop.scans.models import Scan
from shop.shoppers.models import Shopper

logger = logging.getLogger(__name__)


class CartError(Exception):
    """A request that conflicts with the cart's or the catalog's state; `extensions` say how."""

    code = "conflict"

    def __init__(self, detail: str, **extensions) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class InsufficientStock(CartError):
    code = "insufficient_stock"


class ProductUnavailable(CartError):
    code = "product_unavailable"


class CurrencyMismatch(CartError):
    code = "currency_mismatch"


class QuantityLimit(CartError):
    code = "quantity_limit"


class CartEmpty(CartError):
    code = "cart_empty"


class PriceChanged(CartError):
    code = "price_changed"


class OrderStatusConflict(CartError):
    code = "order_status_conflict"


class LineGone(CartError):
    code = "line_gone"


def cart_get_open(*, shopper: Shopper) -> Cart:
    """The shopper's open cart, created on first use."""
    cart, _ = Cart.objects.get_or_create(shopper=shopper, status=Cart.Status.OPEN)
    return cart


def _lock_open_cart(shopper: Shopper) -> Cart:
    cart = (
        Cart.objects.select_for_update().filter(pk=cart_get_open(shopper=shopper).pk, status=Cart.Status.OPEN).first()
    )
    if cart is None:  # checked out while this request waited for the lock: use the next cart
        cart = Cart.objects.select_for_update().get(pk=cart_get_open(shopper=shopper).pk)
    return cart


@transaction.atomic
def cart_add_item(
    *, shopper: Shopper, variant: Variant, quantity: int, scan: Scan | None = None
) -> tuple[CartLine, bool]:
    """Add `quantity` of a variant (merging with its line if there is one) and record the
    add-to-cart event. Returns the line and whether it is new."""
    cart = _lock_open_cart(shopper)
    variant = Variant.objects.select_related("product").get(pk=variant.pk)  # current stock and price
    if not variant.product.active:
        raise ProductUnavailable(f"{variant.product.title} is no longer sold.", variant_id=variant.id)
    currencies = set(cart.lines.exclude(variant=variant).values_list("variant__currency", flat=True))
    if currencies - {variant.currency}:
        raise CurrencyMismatch(
            f"The cart is in {', '.join(sorted(currencies))}; this item is priced in {variant.currency}.",
            cart_currency=sorted(currencies)[0],
            item_currency=variant.currency,
        )
    line = cart.lines.filter(variant=variant).first()
    in_cart = line.quantity if line else 0
    wanted = in_cart + quantity
    if wanted > MAX_LINE_QUANTITY:
        raise QuantityLimit(
            f"A cart line holds at most {MAX_LINE_QUANTITY}.", maximum=MAX_LINE_QUANTITY, in_cart=in_cart
        )
    if wanted > variant.stock:
        raise InsufficientStock(
            f"Only {variant.stock} of {variant.sku} in stock.",
            variant_id=variant.id,
            available=variant.stock,
            in_cart=in_cart,
        )
    if line is None:
        line = CartLine.objects.create(cart=cart, variant=variant, quantity=quantity, scan=scan)
    else:
        line.quantity = wanted
        line.scan = scan or line.scan
        line.save(update_fields=["quantity", "scan"])
    CartEvent.objects.create(shopper=shopper, variant=variant, product=variant.product, quantity=quantity, scan=scan)
    cart.save(update_fields=["updated_at"])
    return line, in_cart == 0


def _locked_line(line: CartLine) -> CartLine:
    """`line` read again under its cart's lock (as checkout takes it), while the cart is open: a
    request that waited for a checkout, or for another request removing the line, finds it gone."""
    cart = Cart.objects.select_for_update().filter(pk=line.cart_id, status=Cart.Status.OPEN).first()
    fresh = CartLine.objects.select_related("variant").filter(pk=line.pk, cart=cart).first() if cart else None
    if fresh is None:
        raise LineGone("This line was removed, or checked out, meanwhile.", line_id=line.pk)
    return fresh


@transaction.atomic
def cart_line_update(*, line: CartLine, quantity: int) -> None:
    """Set a line's quantity; 0 removes it. Raising it is checked against the stock."""
    line = _locked_line(line)
    Cart.objects.filter(pk=line.cart_id).update(updated_at=timezone.now())  # the cart changed, as an add says
    if quantity == 0:
        line.delete()
        return
    variant = line.variant
    if quantity > line.quantity and quantity > variant.stock:
        raise InsufficientStock(
            f"Only {variant.stock} of {variant.sku} in stock.",
            variant_id=variant.id,
            available=variant.stock,
            in_cart=line.quantity,
        )
    line.quantity = quantity
    line.save(update_fields=["quantity"])


@transaction.atomic
def cart_line_remove(*, line: CartLine) -> None:
    line = _locked_line(line)
    Cart.objects.filter(pk=line.cart_id).update(updated_at=timezone.now())
    line.delete()


def _locked_variants(variant_ids) -> dict[int, Variant]:
    # Ascending id: two checkouts that share variants wait for each other instead of deadlocking.
    rows = Variant.objects.select_for_update().filter(id__in=set(variant_ids)).order_by("id")
    return {variant.id: variant for variant in rows}


def _restock(lines) -> None:
    for variant_id, quantity in sorted((line.variant_id, line.quantity) for line in lines if line.variant_id):
        Variant.objects.filter(id=variant_id).update(stock=F("stock") + quantity)


def _charge_key(*, shopper: Shopper, cart: Cart, lines: list[OrderLine], idempotency_key: str) -> str:
    """The charge's key at the provider: the request's Idempotency-Key (or none) for this cart as it is
    now, at this attempt (the orders this cart already has: declined ones). A retry of the same checkout
    gets the same key, with or without the header, and the provider charges once: a checkout undone
    after the charge (a failure before the commit, answered 503) and sent again is paid by that charge.
    The same client key for another cart, for this cart changed, or after a decline gets another, so a
    gateway that keeps keys longer than we do never answers a new order with an earlier order's charge
    (a key reused after IDEMPOTENCY_KEY_TTL_HOURS, an app whose counter started again), nor a new card
    with an earlier decline. The payment token is not part of it: a wallet gives a new token for each
    try, and a retry with one after a failure past the charge must not be charged again."""
    contents = "|".join(f"{line.variant_id}x{line.quantity}@{line.unit_price}{line.currency}" for line in
                        sorted(lines, key=lambda line: (line.variant_id or 0, line.quantity)))
    attempt = Order.objects.filter(cart=cart).count()  # this one's own row included
    digest = hashlib.sha256(
        f"{shopper.id}|{cart.id}|{attempt}|{contents}|{idempotency_key}".encode())
    return f"order:{digest.hexdigest()[:48]}"


@transaction.atomic
def order_place(*, shopper: Shopper, payment_token: str, idempotency_key: str,
                expected_total: Decimal | None = None, expected_currency: str | None = None) -> Order:
    """Turn the shopper's open cart into an order and charge it, in one transaction.

    The variants are locked (ascending id), the stock checked and decremented, the order written
    with prices captured now, then the payment provider charges the total. Paid: the cart is
    closed (the next read opens a fresh one) and `shop.carts.signals.order_placed` is sent with
    `order=` inside this transaction — the hook for attribution. Declined: the stock is put back
    and the order kept as `payment_failed`; the cart stays as it was.
    `idempotency_key` keys the charge at the provider, with the cart and its contents (`_charge_key`),
    so a retried request cannot charge twice and a reused key cannot stand for another order's charge.
    `expected_total` / `expected_currency`: what the app showed; another total is PriceChanged. Raises
    CartEmpty, ProductUnavailable, CurrencyMismatch, InsufficientStock or PriceChanged before anything
    is written or charged.
    """
    cart = Cart.objects.select_for_update().filter(shopper=shopper, status=Cart.Status.OPEN).first()
    lines = list(cart.lines.select_related("variant__product").order_by("variant_id")) if cart else []
    if not lines:
        raise CartEmpty("The cart is empty.")
    variants = _locked_variants(line.variant_id for line in lines)

    inactive = [line for line in lines if not line.variant.product.active]
    if inactive:
        raise ProductUnavailable(
            "Some products in the cart are no longer sold.",
            lines=[{"line_id": line.id, "variant_id": line.variant_id, "sku": line.variant.sku} for line in inactive],
        )
    currencies = {variants[line.variant_id].currency for line in lines}
    if len(currencies) > 1:
        raise CurrencyMismatch("The cart holds prices in several currencies.", currencies=sorted(currencies))
    short = [line for line in lines if variants[line.variant_id].stock < line.quantity]
    if short:
        raise InsufficientStock(
            "Some items are no longer in stock in the quantity asked for.",
            lines=[
                {
                    "line_id": line.id,
                    "variant_id": line.variant_id,
                    "sku": variants[line.variant_id].sku,
                    "requested": line.quantity,
                    "available": variants[line.variant_id].stock,
                }
                for line in short
            ],
        )

    total = sum(((variants[line.variant_id].price * line.quantity).quantize(CENT) for line in lines), Decimal("0.00"))
    currency = next(iter(currencies))
    if (expected_total is not None and expected_total != total) or (expected_currency and expected_currency != currency):
        raise PriceChanged("The total changed since the cart was shown: nothing was charged.",
                           total=str(total), currency=currency,
                           expected_total=None if expected_total is None else str(expected_total))

    for line in lines:
        # Under the row lock the check above holds; the condition keeps stock from going negative regardless.
        updated = Variant.objects.filter(id=line.variant_id, stock__gte=line.quantity).update(
            stock=F("stock") - line.quantity
        )
        if updated != 1:
            raise InsufficientStock(
                "Stock changed during checkout.", lines=[{"line_id": line.id, "variant_id": line.variant_id}]
            )

    captured = [
        OrderLine(
            variant_id=line.variant_id,
            product_id=line.variant.product_id,
            sku=variants[line.variant_id].sku,
            title=line.variant.product.title,
            options=variants[line.variant_id].options,
            unit_price=variants[line.variant_id].price,
            currency=variants[line.variant_id].currency,
            quantity=line.quantity,
            line_total=(variants[line.variant_id].price * line.quantity).quantize(CENT),
            scan_id=line.scan_id,
        )
        for line in sorted(lines, key=lambda line: (line.created_at, line.id))
    ]
    order = Order.objects.create(
        shopper=shopper,
        cart=cart,
        currency=currency,
        subtotal=total,  # the lines' totals, summed once for the expected-total check
        total=total,
        item_count=sum(line.quantity for line in captured),
        payment_provider=provider_path(),
    )
    for line in captured:
        line.order = order
    OrderLine.objects.bulk_create(captured)

    result = payment_provider().charge(
        amount=order.total,
        currency=order.currency,
        token=payment_token,
        idempotency_key=_charge_key(shopper=shopper, cart=cart, lines=captured, idempotency_key=idempotency_key),
    )
    if not result.ok:
        _restock(captured)
        order.status = Order.Status.PAYMENT_FAILED
        order.payment_failure_reason = result.failure_reason[:200]
        order.save(update_fields=["status", "payment_failure_reason"])
        logger.info("payment declined", extra={"order_id": str(order.id), "reason": result.failure_reason})
        return order

    order.status = Order.Status.PAID
    order.payment_reference = result.reference
    order.paid_at = timezone.now()
    order.save(update_fields=["status", "payment_reference", "paid_at"])
    cart.status = Cart.Status.ORDERED
    cart.closed_at = order.paid_at
    cart.save(update_fields=["status", "closed_at", "updated_at"])
    order_placed.send(sender=Order, order=order)
    return order


class RefundFailed(CartError):
    code = "refund_failed"


@transaction.atomic
def order_cancel(*, order: Order) -> Order:
    """Cancel a paid order: the provider refunds its total, then its items go back in stock. A refund
    the provider refuses leaves the order paid (RefundFailed). The refund is keyed by the order, so a
    cancel tried again after a failure past the refund (the commit) refunds once."""
    order = Order.objects.select_for_update().get(pk=order.pk)
    if order.status != Order.Status.PAID:
        raise OrderStatusConflict(f"A {order.get_status_display()} order cannot be cancelled.", status=order.status)
    provider = provider_at(order.payment_provider or provider_path())  # the one that took the payment
    if not hasattr(provider, "refund"):
        raise RefundFailed(f"The payment provider ({order.payment_provider}) cannot refund; the order stays paid.")
    result = provider.refund(order.payment_reference, order.total, order.currency, f"refund:{order.id}")
    if not result.ok:
        logger.warning("refund refused", extra={"order_id": str(order.id), "reason": result.failure_reason})
        raise RefundFailed(f"The refund was refused ({result.failure_reason}); the order stays paid.",
                           failure_reason=result.failure_reason)
    lines = list(order.lines.all())
    _locked_variants(line.variant_id for line in lines if line.variant_id)
    _restock(lines)
    order.status = Order.Status.CANCELLED
    order.cancelled_at = timezone.now()
    order.refund_reference = result.reference[:200]
    order.save(update_fields=["status", "cancelled_at", "refund_reference"])
    return order


@transaction.atomic
def order_fulfil(*, order: Order) -> Order:
    order = Order.objects.select_for_update().get(pk=order.pk)
    if order.status != Order.Status.PAID:
        raise OrderStatusConflict(f"A {order.get_status_display()} order cannot be fulfilled.", status=order.status)
    order.status = Order.Status.FULFILLED
    order.fulfilled_at = timezone.now()
    order.save(update_fields=["status", "fulfilled_at"])
    return order
