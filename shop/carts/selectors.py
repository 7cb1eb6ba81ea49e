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
    currency: str | None
    subtotal: Decimal
    item_count: int


def cart_summary(*, cart: Cart) -> CartSummary:
    lines = list(cart.lines.select_related("variant__product").order_by("created_at", "id"))
    return CartSummary(
        cart=cart,
        lines=lines,
        currency=lines[0].variant.currency if lines else None,
        subtotal=sum((line.line_total for line in lines), Decimal("0.00")),
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
