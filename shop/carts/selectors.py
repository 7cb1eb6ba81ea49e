"""Reads for carts and orders. Every read is scoped to one shopper, so nobody sees another's."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Prefetch, QuerySet

from shop.carts.models import Cart, CartLine, Order, OrderLine
from shop.shoppers.models import Shopper


@dataclass(frozen=True)
class CartSummary:
    cart: Cart
    lines: list[CartLine]
    currency: str | None  # None while empty, or with lines in several currencies
    subtotal: Decimal | None  # None with lines in several currencies
    item_count: int


def cart_summary(*, cart: Cart) -> CartSummary:
    """The cart's lines and totals. Lines whose prices came to be in several currencies (a price list
    re-imported in another currency) have no currency and no subtotal: a sum of euros and dollars is
    no amount (checkout refuses such a cart: 409 `currency_mismatch`)."""
    lines = list(cart.lines.select_related("variant__product").order_by("created_at", "id"))
    currencies = {line.variant.currency for line in lines}
    one = len(currencies) == 1
    return CartSummary(
        cart=cart,
        lines=lines,
        currency=currencies.pop() if one else None,
        subtotal=sum((line.line_total for line in lines), Decimal("0.00")) if one or not lines else None,
        item_count=sum(line.quantity for line in lines),
    )


def cart_line_of(*, shopper: Shopper, line_id: int) -> CartLine | None:
    """A line of the shopper's open cart."""
    return (
        CartLine.objects.select_related("variant__product")
        .filter(id=line_id, cart__shopper=shopper, cart__status=Cart.Status.OPEN)
        .first()
    )


def orders_of(*, shopper: Shopper) -> QuerySet[Order]:
    return Order.objects.filter(shopper=shopper).prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("id"))
    )


def order_of(*, shopper: Shopper, order_id) -> Order | None:
    return orders_of(shopper=shopper).filter(id=order_id).first()
