"""Checkout: captured prices, stock decrement, payment, the order_placed hook, cancel, no oversell."""

import threading
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F
from rest_framework.test import APIClient

from catalog.models import Variant
from shop.carts.models import Cart, Order
from shop.carts.payments import PaymentResult
from shop.carts.services import OrderStatusConflict, order_cancel
from shop.carts.signals import order_placed
from tests.carts.conftest import PROBLEM, a_scan, add, checkout, make_variant, new_shopper_client


@pytest.fixture
def placed(settings):
    """Orders announced by `order_placed`, with whether it came inside the order's transaction."""
    seen = []

    def receiver(sender, order, **kwargs):
        seen.append((order.id, order.status, transaction.get_connection().in_atomic_block))

    order_placed.connect(receiver)
    yield seen
    order_placed.disconnect(receiver)


def test_checkout_captures_prices_decrements_stock_and_closes_the_cart(shopper_client, recording_provider, placed):
    tee, cap = make_variant(price="19.99", stock=5), make_variant(price="12.50", stock=1)
    scan = a_scan(shopper_client)
    add(shopper_client, tee, 3, scan=scan)
    cart_id = add(shopper_client, cap, 1).json()["id"]

    response = checkout(shopper_client, HTTP_IDEMPOTENCY_KEY="order-1")
    assert response.status_code == 201, response.content
    order = response.json()
    assert order["status"] == "paid" and order["currency"] == "EUR"
    assert order["subtotal"] == order["total"] == "72.47" and order["item_count"] == 4
    assert [(line["sku"], line["unit_price"], line["quantity"], line["line_total"]) for line in order["lines"]] == [
        (tee.sku, "19.99", 3, "59.97"),
        (cap.sku, "12.50", 1, "12.50"),
    ]
    assert order["lines"][0]["scan_id"] == str(scan.id) and order["lines"][1]["scan_id"] is None
    assert [{k: v for k, v in charge.items() if k != "key"} for charge in recording_provider.charges] == [
        {"amount": Decimal("72.47"), "currency": "EUR", "token": "tok_visa"}
    ]
    assert placed == [(Order.objects.get().id, "paid", True)]
    assert Variant.objects.get(id=tee.id).stock == 2 and Variant.objects.get(id=cap.id).stock == 0

    # The cart is closed; the next one starts empty.
    assert Cart.objects.get(id=cart_id).status == "ordered"
    fresh = shopper_client.get("/api/v1/cart/").json()
    assert fresh["id"] != cart_id and fresh["lines"] == []

    # A retry with the same key is the same order, charged once.
    again = checkout(shopper_client, HTTP_IDEMPOTENCY_KEY="order-1")
    assert again.status_code == 201 and again.json()["id"] == order["id"]
    assert Order.objects.count() == 1 and len(recording_provider.charges) == 1

    # Later catalog edits change nothing in the order.
    Variant.objects.filter(id=tee.id).update(price="25.00")
    stored = shopper_client.get(f"/api/v1/orders/{order['id']}/").json()
    assert stored["lines"][0]["unit_price"] == "19.99" and stored["total"] == "72.47"
    assert checkout(shopper_client).json()["code"] == "cart_empty"


def test_a_declined_payment_keeps_stock_and_cart(shopper_client, placed):
    tee = make_variant(price="10.00", stock=3)
    add(shopper_client, tee, 2)
    cart_before = shopper_client.get("/api/v1/cart/").json()

    response = checkout(shopper_client, "tok_declined", HTTP_IDEMPOTENCY_KEY="try-1")
    assert response.status_code == 402 and response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "payment_declined" and problem["failure_reason"] == "card_declined"
    assert Variant.objects.get(id=tee.id).stock == 3
    assert shopper_client.get("/api/v1/cart/").json() == cart_before
    assert Order.objects.get(id=problem["order_id"]).status == "payment_failed"
    assert placed == []
    assert "Idempotent-Replayed" not in response
    # The same request again gets the same answer, without another attempt, and says it is a replay.
    replayed = checkout(shopper_client, "tok_declined", HTTP_IDEMPOTENCY_KEY="try-1")
    assert replayed.status_code == 402 and replayed.json()["order_id"] == problem["order_id"]
    assert replayed["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1

    paid = checkout(shopper_client, "tok_visa", HTTP_IDEMPOTENCY_KEY="try-2")
    assert paid.status_code == 201 and Variant.objects.get(id=tee.id).stock == 1
    statuses = [o["status"] for o in shopper_client.get("/api/v1/orders/").json()["results"]]
    assert statuses == ["paid", "payment_failed"]


def test_a_shortage_at_checkout_changes_nothing(shopper_client, recording_provider):
    tee, cap = make_variant(stock=5), make_variant(stock=5)
    add(shopper_client, tee, 2)
    add(shopper_client, cap, 4)
    Variant.objects.filter(id=cap.id).update(stock=3)  # someone else bought some meanwhile
    cart_before = shopper_client.get("/api/v1/cart/").json()

    response = checkout(shopper_client)
    assert response.status_code == 409 and response.json()["code"] == "insufficient_stock"
    assert [(line["sku"], line["requested"], line["available"]) for line in response.json()["lines"]] == [
        (cap.sku, 4, 3)
    ]
    assert shopper_client.get("/api/v1/cart/").json() == cart_before
    assert Variant.objects.get(id=tee.id).stock == 5 and Variant.objects.get(id=cap.id).stock == 3
    assert not Order.objects.exists() and recording_provider.charges == []


def test_orders_are_private(shopper_client):
    add(shopper_client, make_variant())
    order_id = checkout(shopper_client).json()["id"]
    intruder = new_shopper_client()
    response = intruder.get(f"/api/v1/orders/{order_id}/")
    assert response.status_code == 404 and response["Content-Type"] == PROBLEM
    assert intruder.get("/api/v1/orders/").json()["count"] == 0
    listing = shopper_client.get("/api/v1/orders/").json()
    assert listing["count"] == 1 and listing["results"][0]["id"] == order_id


def test_cancelling_a_paid_order_restores_stock_in_admin(shopper_client, client):
    tee = make_variant(stock=4)
    add(shopper_client, tee, 3)
    order = Order.objects.get(id=checkout(shopper_client).json()["id"])
    assert Variant.objects.get(id=tee.id).stock == 1

    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-password-1"))
    assert client.get("/admin/carts/order/?status__exact=paid").status_code == 200
    assert client.get(f"/admin/carts/order/{order.id}/change/").status_code == 200
    assert client.get("/admin/carts/cart/").status_code == 200
    response = client.post("/admin/carts/order/", {"action": "cancel_orders", "_selected_action": [str(order.id)]})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == "cancelled" and order.cancelled_at is not None
    assert order.refund_reference.startswith("test_re_")  # the shopper's money is paid back
    assert Variant.objects.get(id=tee.id).stock == 4
    with pytest.raises(OrderStatusConflict):
        order_cancel(order=order)  # twice would restock twice
    assert Variant.objects.get(id=tee.id).stock == 4


def test_concurrent_checkouts_of_the_last_unit_never_oversell(transactional_db):
    last = make_variant(price="49.00", stock=1)
    clients = []
    for _ in range(8):
        client = new_shopper_client()
        assert add(client, last).status_code == 201  # each cart holds the one unit left
        clients.append(client)
    start = threading.Barrier(len(clients))
    answers: list = []

    def buy(client: APIClient, n: int) -> None:
        try:
            start.wait(timeout=30)
            response = checkout(client, HTTP_IDEMPOTENCY_KEY=f"race-{n}")
            answers.append((response.status_code, response.json().get("code")))
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=buy, args=(client, n)) for n, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers, key=str) == [(201, None)] + [(409, "insufficient_stock")] * 7
    assert Variant.objects.get(id=last.id).stock == 0
    assert Order.objects.filter(status="paid").count() == 1 and Order.objects.count() == 1
    assert Cart.objects.filter(status="open", lines__isnull=False).count() == 7  # the others keep their carts


class KeyKeepingGateway:
    """A gateway that honours idempotency keys as real ones do (some for days): the same key answers the
    first charge's result again and charges nothing. `lose_answers`: that many charges are made but
    their answer is lost on the way back (a timeout after the gateway charged)."""

    results: dict = {}
    charged: list = []
    lose_answers = 0

    def charge(self, amount, currency, token, idempotency_key):
        if idempotency_key not in self.results:
            self.charged.append((amount, currency))
            self.results[idempotency_key] = PaymentResult(ok=True, reference=f"gw_{len(self.charged)}")
            self.tokens[idempotency_key] = token
        elif self.tokens.get(idempotency_key, token) != token:  # as Stripe does
            raise ValueError("Keys for idempotent requests can only be used with the same parameters")
        if KeyKeepingGateway.lose_answers:
            KeyKeepingGateway.lose_answers -= 1
            raise TimeoutError("read timed out")
        return self.results[idempotency_key]

    def find_charge(self, idempotency_key):
        return self.results.get(idempotency_key)

    def refund(self, reference, amount, currency, idempotency_key):
        if KeyKeepingGateway.refunds_fail:
            KeyKeepingGateway.refunds_fail -= 1
            raise ConnectionError("gateway unreachable")
        self.refunded.append((reference, amount))
        return PaymentResult(ok=True, reference=f"re_{reference}")


@pytest.fixture
def gateway(settings):
    KeyKeepingGateway.results, KeyKeepingGateway.charged, KeyKeepingGateway.refunded = {}, [], []
    KeyKeepingGateway.tokens, KeyKeepingGateway.lose_answers, KeyKeepingGateway.refunds_fail = {}, 0, 0
    settings.PAYMENT_PROVIDER = "tests.carts.test_checkout.KeyKeepingGateway"
    return KeyKeepingGateway


def test_a_reused_idempotency_key_never_stands_for_an_earlier_orders_charge(shopper_client, settings, gateway):
    """A key kept by the gateway longer than by us (IDEMPOTENCY_KEY_TTL_HOURS), or an app whose counter
    started again: the new order is charged, not paid with the earlier order's charge."""
    from datetime import timedelta

    from shop.core.models import IdempotencyRecord

    add(shopper_client, make_variant(price="10.00"))
    first = checkout(shopper_client, HTTP_IDEMPOTENCY_KEY="1").json()
    assert checkout(shopper_client, HTTP_IDEMPOTENCY_KEY="1").json()["id"] == first["id"]  # a retry: charged once
    aged = F("created_at") - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS + 1)
    IdempotencyRecord.objects.update(created_at=aged)
    Order.objects.update(created_at=aged)
    add(shopper_client, make_variant(price="99.00"))
    second = checkout(shopper_client, HTTP_IDEMPOTENCY_KEY="1").json()
    assert second["status"] == "paid" and second["id"] != first["id"]
    assert gateway.charged == [(Decimal("10.00"), "EUR"), (Decimal("99.00"), "EUR")]
    assert second["payment_reference"] != first["payment_reference"]


def test_a_checkout_that_fails_after_the_charge_keeps_its_order_and_is_charged_once(
        shopper_client, gateway, monkeypatch):
    """A failure after the charge (the database going away while the payment is recorded) answers 503
    and leaves the order stored, pending, with its stock held and its cart unchangeable; the app sends
    the checkout again, without the Idempotency-Key it never had or with a new one and a new wallet
    token (which a Stripe-like gateway refuses under the same key), and the first charge, looked up,
    pays the order. After a decline, a new attempt is a new charge."""
    from django import db

    import shop.carts.services as services

    failures = [db.OperationalError("server closed the connection unexpectedly")]
    close_cart = services._close_cart

    def fails_once(order):
        if failures:
            raise failures.pop()
        close_cart(order)

    monkeypatch.setattr(services, "_close_cart", fails_once)
    tee = make_variant(price="30.00", stock=2)
    add(shopper_client, tee)
    undone = checkout(shopper_client)
    assert undone.status_code == 503
    pending = Order.objects.get()
    assert pending.status == "pending_payment" and Variant.objects.get(id=tee.id).stock == 1
    refused = add(shopper_client, make_variant(price="1.00"))
    assert refused.status_code == 409 and refused.json()["code"] == "checkout_in_progress"
    assert refused.json()["order_id"] == str(pending.id)
    assert gateway.charged == [(Decimal("30.00"), "EUR")]

    paid = checkout(shopper_client, "tok_fresh_from_the_wallet", HTTP_IDEMPOTENCY_KEY="another-key")
    assert paid.status_code == 201 and paid.json()["id"] == str(pending.id) and paid.json()["status"] == "paid"
    assert gateway.charged == [(Decimal("30.00"), "EUR")] and Variant.objects.get(id=tee.id).stock == 1

    gateway.results = {}  # a gateway that declines once, then charges the same card
    add(shopper_client, make_variant(price="5.00"))
    declined = PaymentResult(ok=False, failure_reason="insufficient_funds")
    original = KeyKeepingGateway.charge
    first = {}

    def decline_first(self, amount, currency, token, idempotency_key):
        if not first:
            first["key"] = idempotency_key
            KeyKeepingGateway.results[idempotency_key] = declined
        return original(self, amount, currency, token, idempotency_key)

    KeyKeepingGateway.charge = decline_first
    try:
        assert checkout(shopper_client).status_code == 402
        assert checkout(shopper_client).status_code == 201  # topped up: the new attempt is charged
    finally:
        KeyKeepingGateway.charge = original
    assert gateway.charged[-1] == (Decimal("5.00"), "EUR")


def test_a_gateway_that_does_not_answer_leaves_the_order_pending_and_a_retry_is_charged_once(
        shopper_client, gateway, placed):
    tee = make_variant(price="12.00", stock=3)
    add(shopper_client, tee, 2)
    gateway.lose_answers = 1  # charged, but the answer times out
    response = checkout(shopper_client, HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 503 and response["Content-Type"] == PROBLEM and response["Retry-After"] == "5"
    problem = response.json()
    assert problem["code"] == "payment_pending"
    order = Order.objects.get(id=problem["order_id"])
    assert order.status == "pending_payment" and Variant.objects.get(id=tee.id).stock == 1 and placed == []

    again = checkout(shopper_client, HTTP_IDEMPOTENCY_KEY="k1")  # the error was not stored: it runs again
    assert again.status_code == 201 and again.json()["id"] == str(order.id) and again.json()["status"] == "paid"
    assert gateway.charged == [(Decimal("24.00"), "EUR")] and placed == [(order.id, "paid", True)]
    replay = checkout(shopper_client, HTTP_IDEMPOTENCY_KEY="k1")
    assert replay["Idempotent-Replayed"] == "true" and replay.json()["id"] == str(order.id)
    assert shopper_client.get("/api/v1/cart/").json()["lines"] == []  # the cart was closed


def test_a_second_request_under_the_same_key_during_a_checkout_is_told_to_wait(shopper_client, gateway):
    add(shopper_client, make_variant(price="8.00"))
    answers = []
    original = KeyKeepingGateway.charge

    def impatient(self, *args, **kwargs):  # the app sends again while the gateway is still thinking
        answers.append(checkout(shopper_client, HTTP_IDEMPOTENCY_KEY="same"))
        return original(self, *args, **kwargs)

    KeyKeepingGateway.charge = impatient
    try:
        first = checkout(shopper_client, HTTP_IDEMPOTENCY_KEY="same")
    finally:
        KeyKeepingGateway.charge = original
    assert first.status_code == 201
    assert answers[0].status_code == 409 and answers[0].json()["code"] == "request_in_progress"
    assert gateway.charged == [(Decimal("8.00"), "EUR")]


def test_stale_pending_orders_are_settled_from_the_providers_records(shopper_client, gateway, placed, settings):
    """The checkout's process died before the charge (the gateway never heard of it) or after it (the
    answer lost, the shopper gone): the sweep fails the first, its stock back and its cart free again,
    and records the second as paid, attributed and its cart closed. A charge that still arrives for an
    order given up is refunded at once."""
    from datetime import timedelta

    from shop.carts.services import _order_open, order_settle
    from shop.carts.tasks import reconcile_pending_orders

    never_charged_shopper, charged_shopper = shopper_client, new_shopper_client()
    tee, cap = make_variant(price="10.00", stock=1), make_variant(price="20.00", stock=1)
    add(never_charged_shopper, tee)
    add(charged_shopper, cap)
    never_charged, _ = _order_open(shopper=never_charged_shopper.shopper, expected_total=None, expected_currency=None)
    gateway.lose_answers = 1
    assert checkout(charged_shopper).status_code == 503
    charged = Order.objects.get(shopper=charged_shopper.shopper)
    assert Variant.objects.get(id=tee.id).stock == Variant.objects.get(id=cap.id).stock == 0

    nothing = {"paid": 0, "payment_failed": 0, "not_completed": 0, "unreachable": 0, "refunded": 0}
    assert reconcile_pending_orders() == nothing
    Order.objects.update(payment_attempted_at=F("payment_attempted_at")
                         - timedelta(seconds=settings.CHECKOUT_PENDING_SECONDS + 1))
    assert reconcile_pending_orders() == {**nothing, "paid": 1, "not_completed": 1}

    never_charged.refresh_from_db()
    charged.refresh_from_db()
    assert (never_charged.status, never_charged.payment_failure_reason) == ("payment_failed", "not_completed")
    assert Variant.objects.get(id=tee.id).stock == 1 and add(never_charged_shopper, make_variant()).status_code == 201
    assert (charged.status, charged.payment_reference) == ("paid", "gw_1") and placed == [(charged.id, "paid", True)]
    assert Variant.objects.get(id=cap.id).stock == 0 and Cart.objects.get(id=charged.cart_id).status == "ordered"
    assert gateway.charged == [(Decimal("20.00"), "EUR")]

    # A charge that still comes for the order given up is refunded; a refund the gateway does not answer
    # is kept due, and the sweep refunds it.
    gateway.refunds_fail = 1
    late = order_settle(order=never_charged, result=PaymentResult(ok=True, reference="gw_late"))
    assert (late.status, late.payment_reference, late.refund_reference) == ("payment_failed", "gw_late", "")
    assert gateway.refunded == [] and reconcile_pending_orders() == {**nothing, "refunded": 1}
    late.refresh_from_db()
    assert late.refund_reference == "re_gw_late" and gateway.refunded == [("gw_late", Decimal("10.00"))]
    assert reconcile_pending_orders() == nothing and placed == [(charged.id, "paid", True)]


def test_the_sweep_leaves_an_order_that_a_retry_is_charging(shopper_client, gateway, settings):
    """The sweep asks the gateway about an order whose checkout stopped long ago; meanwhile the shopper
    sends it again (it takes the order up and charges). The sweep must not fail it and put its stock
    back under the retry's charge: it leaves it to the retry."""
    from datetime import timedelta

    from django.utils import timezone

    from shop.carts.tasks import reconcile_pending_orders

    tee = make_variant(price="15.00", stock=1)
    add(shopper_client, tee)
    gateway.lose_answers = 1
    assert checkout(shopper_client).status_code == 503
    order = Order.objects.get()
    gateway.results = {}  # as if the gateway never received that first charge
    Order.objects.update(payment_attempted_at=timezone.now() - timedelta(seconds=settings.CHECKOUT_PENDING_SECONDS + 1))
    original = KeyKeepingGateway.find_charge

    def retry_meanwhile(self, idempotency_key):
        answer = original(self, idempotency_key)  # nothing yet
        KeyKeepingGateway.find_charge = original
        gateway.lose_answers = 1  # the retry's charge is made, its answer still on the way
        retried.append(checkout(shopper_client))
        return answer

    retried = []
    KeyKeepingGateway.find_charge = retry_meanwhile
    try:
        counts = reconcile_pending_orders()
    finally:
        KeyKeepingGateway.find_charge = original
    assert retried[0].status_code == 503 and retried[0].json()["order_id"] == str(order.id)
    assert counts == {"paid": 0, "payment_failed": 0, "not_completed": 0, "unreachable": 0, "refunded": 0}
    order.refresh_from_db()
    assert order.status == "pending_payment" and Variant.objects.get(id=tee.id).stock == 0  # left to the retry
    paid = checkout(shopper_client)
    assert paid.status_code == 201 and paid.json()["status"] == "paid" and gateway.refunded == []
    # the first charge's record was wiped above to stand for one never received; the retry charged, and
    # the last try was paid by that charge, found by its key, without another
    assert gateway.charged == [(Decimal("15.00"), "EUR")] * 2


def test_a_failing_receiver_of_order_placed_does_not_undo_the_payment(shopper_client, gateway, placed, caplog):
    """The money is taken: a receiver that raises (attribution broken) costs its own writes, logged,
    not the order's record, which would otherwise stay pending, its cart locked, on every retry."""
    def broken(sender, order, **kwargs):
        raise RuntimeError("attribution is broken")

    add(shopper_client, make_variant(price="7.00"))
    order_placed.connect(broken)
    try:
        response = checkout(shopper_client)
    finally:
        order_placed.disconnect(broken)
    assert response.status_code == 201 and response.json()["status"] == "paid"
    assert "a receiver of order_placed failed" in caplog.text
    assert shopper_client.get("/api/v1/cart/").json()["lines"] == []


def test_a_checkout_whose_stored_answer_was_lost_is_found_by_its_key(shopper_client, gateway):
    """The order was paid but its answer never stored (the database gone just after); the app sends the
    same checkout under the same key, having added an item meanwhile: it gets the paid order, and the
    new cart is not charged under that key."""
    from shop.core.models import IdempotencyRecord

    add(shopper_client, make_variant(price="20.00"))
    first = checkout(shopper_client, HTTP_IDEMPOTENCY_KEY="checkout-7")
    IdempotencyRecord.objects.all().delete()  # the stored answer lost
    add(shopper_client, make_variant(price="3.00"))
    again = checkout(shopper_client, HTTP_IDEMPOTENCY_KEY="checkout-7")
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert gateway.charged == [(Decimal("20.00"), "EUR")]
    assert len(shopper_client.get("/api/v1/cart/").json()["lines"]) == 1  # the new cart waits for its own


def test_a_payment_provider_without_what_checkout_needs_fails_the_system_check(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.PAYMENT_PROVIDER = "tests.carts.conftest.RecordingPaymentProvider"  # charge only
    with pytest.raises(SystemCheckError, match="lacks find_charge, refund"):
        call_command("check")
    settings.PAYMENT_PROVIDER = "tests.carts.test_checkout.KeyKeepingGateway"
    call_command("check")


def test_no_row_stays_locked_while_the_gateway_answers(transactional_db, gateway):
    """A slow gateway holds up nobody else: the variants (other shoppers' checkouts of them, a stock
    edit) and the cart are free while it thinks."""
    from django import db

    client = new_shopper_client()
    tee = make_variant(price="9.00", stock=5)
    add(client, tee)
    seen = []
    original = KeyKeepingGateway.charge

    def slow(self, *args, **kwargs):
        def elsewhere():
            try:
                with transaction.atomic():
                    Variant.objects.select_for_update(nowait=True).get(id=tee.id)
                    Cart.objects.select_for_update(nowait=True).get(shopper=client.shopper, status="open")
                seen.append("free")
            except db.OperationalError as exc:
                seen.append(str(exc).strip())
            finally:
                connection.close()

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join(timeout=30)
        return original(self, *args, **kwargs)

    KeyKeepingGateway.charge = slow
    try:
        assert checkout(client).status_code == 201
    finally:
        KeyKeepingGateway.charge = original
    assert seen == ["free"]


def test_a_price_changed_since_the_cart_was_shown_is_a_conflict_and_nothing_is_charged(
        shopper_client, recording_provider):
    """The app sends the total it showed: a price raised meanwhile (a merchandiser, a re-import) is 409
    price_changed with the new total, no charge and no stock taken; the shopper confirms the new one."""
    tee = make_variant(price="19.99", stock=3)
    add(shopper_client, tee, 2)
    Variant.objects.filter(id=tee.id).update(price="29.99")
    response = shopper_client.post("/api/v1/orders/", {"payment_token": "tok_visa", "expected_total": "39.98",
                                                       "expected_currency": "EUR"}, format="json")
    assert response.status_code == 409 and response["Content-Type"] == PROBLEM
    problem = response.json()
    assert (problem["code"], problem["total"], problem["currency"]) == ("price_changed", "59.98", "EUR")
    assert recording_provider.charges == [] and not Order.objects.exists()
    assert Variant.objects.get(id=tee.id).stock == 3
    confirmed = shopper_client.post("/api/v1/orders/", {"payment_token": "tok_visa", "expected_total": "59.98"},
                                    format="json")
    assert confirmed.status_code == 201 and confirmed.json()["total"] == "59.98"



class RefusingRefunds(KeyKeepingGateway):
    refunded: list = []

    def refund(self, reference, amount, currency, idempotency_key):
        return PaymentResult(ok=False, failure_reason="charge_disputed")


def test_an_order_whose_refund_is_refused_stays_paid_with_its_stock_taken(shopper_client, client, settings):
    settings.PAYMENT_PROVIDER = "tests.carts.test_checkout.RefusingRefunds"
    tee = make_variant(stock=4)
    add(shopper_client, tee, 3)
    order = Order.objects.get(id=checkout(shopper_client).json()["id"])
    client.force_login(get_user_model().objects.create_superuser("ops2", "ops2@example.com", "a-long-password-1"))
    response = client.post("/admin/carts/order/", {"action": "cancel_orders", "_selected_action": [str(order.id)]},
                           follow=True)
    assert "The refund was refused (charge_disputed); the order stays paid." in response.content.decode()
    order.refresh_from_db()
    assert (order.status, order.refund_reference) == ("paid", "") and Variant.objects.get(id=tee.id).stock == 1


def test_a_refund_goes_to_the_provider_that_took_the_payment(shopper_client, client, settings):
    tee = make_variant(stock=2)
    add(shopper_client, tee)
    order = Order.objects.get(id=checkout(shopper_client).json()["id"])  # the default test provider
    settings.PAYMENT_PROVIDER = "tests.carts.test_checkout.RefusingRefunds"  # switched since
    order_cancel(order=order)
    order.refresh_from_db()
    assert order.status == "cancelled" and order.refund_reference.startswith("test_re_")


def test_a_late_charge_whose_refund_is_refused_is_left_to_a_person(shopper_client, settings, caplog):
    """Refused, a refund is logged for a person and not tried again every minute: tried after a refund by
    hand, it could pay the money back twice."""
    from shop.carts.services import NOT_COMPLETED, _order_open, order_settle
    from shop.carts.tasks import reconcile_pending_orders

    settings.PAYMENT_PROVIDER = "tests.carts.test_checkout.RefusingRefunds"
    add(shopper_client, make_variant(price="9.00"))
    order, _ = _order_open(shopper=shopper_client.shopper, expected_total=None, expected_currency=None)
    order_settle(order=order, result=PaymentResult(ok=False, failure_reason=NOT_COMPLETED))  # given up
    late = order_settle(order=order, result=PaymentResult(ok=True, reference="gw_late"))
    assert (late.payment_reference, late.refund_reference, late.refund_due) == ("gw_late", "", False)
    assert "refund was refused: refund it by hand" in caplog.text
    assert reconcile_pending_orders()["refunded"] == 0
