"""Writes for carts and orders: adding to the cart, checkout with an atomic stock decrement, cancel.

Lock order, the same everywhere so that concurrent requests queue instead of deadlocking:
the order, then the shopper's open cart, then the variants by ascending id (a cart write reads its
pending order without locking it).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import Variant
from shop.carts.models import CENT, MAX_LINE_QUANTITY, Cart, CartEvent, CartLine, Order, OrderLine
from shop.carts.payments import PaymentResult, provider_at, provider_path
from shop.carts.signals import order_placed
from shop.core.idempotency import expired_before
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


class TotalLimit(CartError):
    code = "total_limit"


MAX_ORDER_TOTAL = Decimal("9999999999.99")  # an order's total column: 12 digits, 2 decimals


def _check_total_limit(total: Decimal, currency: str) -> None:
    if total > MAX_ORDER_TOTAL:
        raise TotalLimit(f"An order totals at most {MAX_ORDER_TOTAL} {currency}; this cart would total {total}.",
                         maximum=str(MAX_ORDER_TOTAL), total=str(total), currency=currency)


def _cart_total_with(cart: Cart, variant: Variant, quantity: int) -> Decimal:
    """The cart's total with the variant's line at `quantity`, at today's prices."""
    others = cart.lines.exclude(variant=variant).select_related("variant")
    return sum((line.line_total for line in others), CartLine(variant=variant, quantity=quantity).line_total)


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
    _refuse_while_pending(cart)
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
    _check_total_limit(_cart_total_with(cart, variant, wanted), variant.currency)
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
    _refuse_while_pending(cart)
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
    if quantity > line.quantity:
        _check_total_limit(_cart_total_with(line.cart, variant, quantity), variant.currency)
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


def charge_key(order: Order) -> str:
    """The charge's key at the provider: the order's own id. The order is committed before the charge,
    so every try of one checkout (a retry with or without an Idempotency-Key, with a new wallet token, the
    reconciliation sweep) charges under one key and the provider charges once; another order (another
    cart, the cart changed, a new attempt after a decline) has another, so a gateway that keeps keys
    longer than we do never answers a new order with an earlier order's charge."""
    return f"order:{order.id}"


class CheckoutInProgress(CartError):
    code = "checkout_in_progress"


class PaymentPending(Exception):
    """The provider's answer did not come (a network failure, a timeout): the order stays pending with
    its stock held. The same checkout sent again asks again under the same key (charged at most once);
    otherwise the reconciliation sweep settles it."""

    def __init__(self, order: Order) -> None:
        super().__init__(f"order {order.id}: the payment provider did not answer")
        self.order = order


def _pending_order(cart: Cart) -> Order | None:
    return Order.objects.filter(cart=cart, status=Order.Status.PENDING_PAYMENT).order_by("created_at").first()


def _refuse_while_pending(cart: Cart) -> None:
    """A cart whose checkout waits for the payment does not change: the order charges what it held."""
    pending = _pending_order(cart)
    if pending is not None:
        raise CheckoutInProgress("This cart's checkout is waiting for the payment; the cart can change once "
                                 "it is paid or declined.", order_id=str(pending.id))


def _check_expected(total: Decimal, currency: str, expected_total: Decimal | None, expected_currency: str | None,
                    detail: str = "The total changed since the cart was shown: nothing was charged.",
                    **extensions) -> None:
    if (expected_total is not None and expected_total != total) or (expected_currency and expected_currency != currency):
        raise PriceChanged(detail, total=str(total), currency=currency,
                           expected_total=None if expected_total is None else str(expected_total), **extensions)


def order_place(*, shopper: Shopper, payment_token: str, expected_total: Decimal | None = None,
                expected_currency: str | None = None, client_key: str = "") -> Order:
    """Turn the shopper's open cart into an order and charge it, in three steps, so that no charge is
    ever made for an order that is not stored, and no row stays locked while the gateway answers:

    1. One transaction (`_order_open`): the cart and its variants are locked (ascending id), the stock
       checked and decremented, and the order written as `pending_payment` with prices captured now.
       If the cart already has a pending order (a retry of a checkout that stopped after this step),
       that order is taken as it is.
    2. No transaction: the provider charges the order's total under the order's key (`charge_key`).
       No answer (an exception) raises PaymentPending and the order stays pending; a TypeError,
       AttributeError, NameError or ImportError (a bug in the provider's code) is raised as it is.
    3. One transaction (`order_settle`): paid, the cart is closed (the next read opens a fresh one) and
       `shop.carts.signals.order_placed` is sent with `order=` inside this transaction (the hook for
       attribution); declined, the stock is put back and the order kept as `payment_failed`, the cart
       left as it was.

    An order left pending (the process killed, step 3 failing, the shopper gone) is settled by the next
    checkout of the cart (which asks the provider what became of the first charge before charging) or by
    `reconcile_pending_orders`. `client_key`: the request's Idempotency-Key; a checkout under a key that
    already made an order (within IDEMPOTENCY_KEY_TTL_HOURS) is that order, even when the stored answer
    was lost. `expected_total` / `expected_currency`: what the app showed; another total is PriceChanged.
    Raises CartEmpty, ProductUnavailable, CurrencyMismatch, InsufficientStock or PriceChanged before
    anything is written or charged.
    """
    order, resumed = _order_open(shopper=shopper, expected_total=expected_total, expected_currency=expected_currency,
                                 client_key=client_key)
    if order.status != Order.Status.PENDING_PAYMENT:
        return order  # the checkout under this Idempotency-Key was settled already: its order, as it is
    provider = provider_at(order.payment_provider)
    try:
        # A checkout sent again asks what became of its first charge before charging: a gateway that
        # refuses a key reused with other parameters (a wallet's new token) still answers the first.
        find_charge = getattr(provider, "find_charge", None) if resumed else None
        result = find_charge(charge_key(order)) if find_charge else None
        if result is None:
            result = provider.charge(amount=order.total, currency=order.currency, token=payment_token,
                                     idempotency_key=charge_key(order))
    except (TypeError, AttributeError, NameError, ImportError):
        raise  # a bug in the provider's code, not a gateway that did not answer: a 500 (the order stays pending)
    except Exception as exc:  # the gateway's client raises what it likes: any of it is "no answer"
        logger.warning("payment provider gave no answer; the order stays pending",
                       extra={"order_id": str(order.id), "error": repr(exc)[:300]})
        raise PaymentPending(order) from exc
    return order_settle(order=order, result=result)


@transaction.atomic
def _order_open(*, shopper: Shopper, expected_total: Decimal | None, expected_currency: str | None,
                client_key: str = "") -> tuple[Order, bool]:
    """Step 1 of `order_place`: (the order to charge, whether it was written by an earlier try).

    Locks in the documented order: a pending order of the shopper's open cart first (the same checkout
    again; the sweep's `order_settle` may hold it, and then wants the cart), then the cart."""
    if client_key:
        earlier = (Order.objects.filter(shopper=shopper, client_key=client_key, created_at__gte=expired_before())
                   .exclude(status=Order.Status.PENDING_PAYMENT)
                   .exclude(payment_failure_reason=NOT_COMPLETED)  # given up: a new try makes a new order
                   .order_by("-created_at").first())
        if earlier is not None:
            return earlier, True
    seen = Order.objects.filter(cart__shopper=shopper, cart__status=Cart.Status.OPEN,
                                status=Order.Status.PENDING_PAYMENT).order_by("created_at").first()
    pending = (Order.objects.select_for_update().filter(pk=seen.pk, status=Order.Status.PENDING_PAYMENT).first()
               if seen else None)  # None: settled meanwhile (the sweep, another try)
    cart = Cart.objects.select_for_update().filter(shopper=shopper, status=Cart.Status.OPEN).first()
    if pending is not None and cart is not None and pending.cart_id == cart.id:
        # the same checkout again: its order, captured then, is what is charged
        _check_expected(pending.total, pending.currency, expected_total, expected_currency,
                        "This cart's checkout waits for its payment at another total than the one shown.",
                        order_id=str(pending.id))
        pending.payment_attempted_at = timezone.now()
        pending.save(update_fields=["payment_attempted_at"])
        return pending, True
    if cart is not None:
        _refuse_while_pending(cart)  # another checkout wrote one since the look above: it is that one's
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
    _check_total_limit(total, currency)  # prices raised since the adds; the order's row would overflow
    _check_expected(total, currency, expected_total, expected_currency)

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
        client_key=client_key,
        payment_attempted_at=timezone.now(),
    )
    for line in captured:
        line.order = order
    OrderLine.objects.bulk_create(captured)
    return order, False


@transaction.atomic
def order_settle(*, order: Order, result: PaymentResult, attempted_before=None) -> Order:
    """Record the provider's `result` for a pending order (step 3 of `order_place`; the sweep's too).

    An order settled meanwhile (a concurrent try of the same checkout, the sweep) is returned as it is,
    but for one case: a charge that succeeded for an order the sweep had given up on (the provider had
    not heard of it when asked, and a try's answer came later) is refunded at once, or marked for the
    sweep to refund if the provider does not answer. `attempted_before` (the sweep's): an order that a
    checkout took up again since is left pending, its retry settles it.

    A receiver of `order_placed` that raises does not undo the payment's record: its writes are rolled
    back (a savepoint) and the failure logged; the order is paid, with its cart closed."""
    order = Order.objects.select_for_update().get(pk=order.pk)
    if order.status != Order.Status.PENDING_PAYMENT:
        if result.ok and order.status == Order.Status.PAYMENT_FAILED and not order.payment_reference:
            _refund_late_charge(order, result)
        return order
    if attempted_before is not None and order.payment_attempted_at and order.payment_attempted_at >= attempted_before:
        return order
    if not result.ok:
        _restock(list(order.lines.all()))
        order.status = Order.Status.PAYMENT_FAILED
        order.payment_failure_reason = result.failure_reason[:200]
        order.save(update_fields=["status", "payment_failure_reason"])
        logger.info("payment declined", extra={"order_id": str(order.id), "reason": result.failure_reason})
        return order

    order.status = Order.Status.PAID
    order.payment_reference = result.reference
    order.paid_at = timezone.now()
    order.save(update_fields=["status", "payment_reference", "paid_at"])
    _close_cart(order)
    try:
        with transaction.atomic():
            order_placed.send(sender=Order, order=order)
    except Exception as exc:
        if isinstance(exc, DatabaseError) and (connection.needs_rollback or not connection.is_usable()):
            raise  # the database itself failed: the whole record is undone, the order stays pending
        logger.exception("a receiver of order_placed failed; the order is paid without its writes",
                         extra={"order_id": str(order.id), "error": repr(exc)[:300]})
    return order


def _close_cart(order: Order) -> None:
    """Its cart did not change while the order was pending (`_refuse_while_pending`): close it."""
    Cart.objects.filter(pk=order.cart_id, status=Cart.Status.OPEN).update(
        status=Cart.Status.ORDERED, closed_at=order.paid_at, updated_at=order.paid_at)


def _refund_late_charge(order: Order, result: PaymentResult) -> None:
    """Refund a charge that came for an order given up. Its reference is kept whatever happens: a refund
    the provider does not answer is due (payment_reference without refund_reference) and the sweep
    tries it again."""
    order.payment_reference = result.reference
    order.refund_due = True
    order.save(update_fields=["payment_reference", "refund_due"])
    logger.warning("a charge came after its order was given up: refunding it",
                   extra={"order_id": str(order.id), "reference": result.reference})
    _refund_due(order)


def _refund_due(order: Order) -> bool:
    """Try the refund of a given-up order's late charge; True once refunded. No answer leaves it due
    (the sweep tries again); a refusal is logged for a person and no longer tried (tried again later,
    after a refund by hand, it could pay the money back twice)."""
    try:
        refund = provider_at(order.payment_provider).refund(order.payment_reference, order.total, order.currency,
                                                            f"refund:{order.id}")
    except Exception as exc:
        logger.error("a late charge's refund got no answer; the sweep tries again",
                     extra={"order_id": str(order.id), "error": repr(exc)[:300]})
        return False
    order.refund_due = False
    if not refund.ok:
        logger.error("a late charge's refund was refused: refund it by hand",
                     extra={"order_id": str(order.id), "reference": order.payment_reference,
                            "reason": refund.failure_reason})
        order.save(update_fields=["refund_due"])
        return False
    order.refund_reference = refund.reference[:200]
    order.save(update_fields=["refund_reference", "refund_due"])
    return True


NOT_COMPLETED = "not_completed"  # the reason of an order whose charge the provider never received


def order_reconcile(*, order: Order, attempted_before=None) -> Order:
    """Settle a pending order from what the provider knows of its charge: paid, declined, or (never
    received: the checkout stopped before the charge) failed as `not_completed`, its stock put back.
    `attempted_before`: leave it pending if a checkout took it up since (see `order_settle`)."""
    order = Order.objects.get(pk=order.pk)
    if order.status != Order.Status.PENDING_PAYMENT:
        raise OrderStatusConflict(f"A {order.get_status_display()} order has nothing to reconcile.",
                                  status=order.status)
    provider = provider_at(order.payment_provider)
    if not hasattr(provider, "find_charge"):
        raise CartError(f"The payment provider ({order.payment_provider}) cannot look up a charge; "
                        "the order stays pending.")
    result = provider.find_charge(charge_key(order))
    return order_settle(order=order, result=result or PaymentResult(ok=False, failure_reason=NOT_COMPLETED),
                        attempted_before=attempted_before)


def orders_reconcile(*, older_than_seconds: int, now=None) -> dict[str, int]:
    """Reconcile the orders no checkout has tried to charge for `older_than_seconds` (longer than a
    checkout takes, its gateway call included), and refund the late charges of orders given up whose
    refund did not go through. Returns how many were found paid, declined or not completed, how many
    could not be asked about (left for the next run), and how many late charges were refunded."""
    before = (now or timezone.now()) - timedelta(seconds=older_than_seconds)
    counts = {"paid": 0, "payment_failed": 0, NOT_COMPLETED: 0, "unreachable": 0, "refunded": 0}
    stale = Order.objects.filter(status=Order.Status.PENDING_PAYMENT, payment_attempted_at__lt=before)
    for order in stale.order_by("payment_attempted_at").only("pk"):
        try:
            settled = order_reconcile(order=order, attempted_before=before)
        except OrderStatusConflict:
            continue  # settled meanwhile by the shopper's own retry
        except Exception:  # the provider down or refusing: the next run asks again
            logger.exception("could not reconcile a pending order", extra={"order_id": str(order.pk)})
            counts["unreachable"] += 1
            continue
        if settled.status == Order.Status.PENDING_PAYMENT:
            continue  # a retry took it up meanwhile
        reason = NOT_COMPLETED if settled.payment_failure_reason == NOT_COMPLETED else settled.status
        counts[reason] = counts.get(reason, 0) + 1
    for order in Order.objects.filter(refund_due=True).order_by("created_at"):
        counts["refunded"] += _refund_due(order)
    return counts


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
