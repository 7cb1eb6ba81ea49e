"""The cart as the app sees it: lines, totals in Decimal, stock and currency rules, privacy."""

from shop.carts.models import CartEvent, CartLine
from tests.carts.conftest import PROBLEM, a_scan, add, make_variant, new_shopper_client


def lines_by_sku(body) -> dict:
    return {line["sku"]: line for line in body["lines"]}


def test_add_merge_update_and_remove_lines_with_exact_totals(shopper_client):
    empty = shopper_client.get("/api/v1/cart/").json()
    assert empty["lines"] == [] and empty["subtotal"] == "0.00" and empty["currency"] is None

    tee, socks = make_variant(price="19.99"), make_variant(price="5.00")
    first = add(shopper_client, tee, 2)
    assert first.status_code == 201
    merged = add(shopper_client, tee, 1)
    assert merged.status_code == 200
    body = add(shopper_client, socks, 1).json()
    assert body["id"] == empty["id"]
    line = lines_by_sku(body)[tee.sku]
    assert line == {
        "id": line["id"], "variant_id": tee.id, "sku": tee.sku, "product_id": tee.product_id,
        "title": tee.product.title, "options": {"size": "M"}, "unit_price": "19.99", "quantity": 3,
        "line_total": "59.97", "currency": "EUR", "scan_id": None, "in_stock": True,
    }  # fmt: skip
    assert body["subtotal"] == "64.97" and body["item_count"] == 4 and body["currency"] == "EUR"

    socks_line = lines_by_sku(body)[socks.sku]["id"]
    added_at = body["updated_at"]
    body = shopper_client.patch(f"/api/v1/cart/items/{socks_line}/", {"quantity": 3}, format="json").json()
    assert body["subtotal"] == "74.97" and body["updated_at"] > added_at  # every change moves the cart's time
    body = shopper_client.patch(f"/api/v1/cart/items/{line['id']}/", {"quantity": 0}, format="json").json()
    assert list(lines_by_sku(body)) == [socks.sku] and body["subtotal"] == "15.00"
    changed_at = body["updated_at"]
    response = shopper_client.delete(f"/api/v1/cart/items/{socks_line}/")
    assert response.status_code == 200 and response.json()["lines"] == [] and response.json()["subtotal"] == "0.00"
    assert response.json()["updated_at"] > changed_at
    # Every add was an event for marketing, and removing lines does not take them back.
    assert list(CartEvent.objects.order_by("id").values_list("variant_id", "quantity")) == [
        (tee.id, 2),
        (tee.id, 1),
        (socks.id, 1),
    ]


def test_stock_availability_and_bad_input_are_problems(shopper_client):
    tee = make_variant(stock=2)
    response = add(shopper_client, tee, 3)
    assert response.status_code == 409 and response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "insufficient_stock" and response.json()["available"] == 2
    assert add(shopper_client, tee, 2).status_code == 201
    again = add(shopper_client, tee, 1).json()
    assert again["code"] == "insufficient_stock" and again["in_cart"] == 2
    line_id = CartLine.objects.get().id
    assert shopper_client.patch(f"/api/v1/cart/items/{line_id}/", {"quantity": 5}, format="json").json()["code"] == (
        "insufficient_stock"
    )

    retired = make_variant(active=False)
    assert add(shopper_client, retired).json()["code"] == "product_unavailable"
    unknown = shopper_client.post("/api/v1/cart/items/", {"variant_id": 999999}, format="json")
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["field"] == "variant_id"
    for quantity in (0, 100):
        assert add(shopper_client, make_variant(), quantity).status_code == 400
    assert CartEvent.objects.count() == 1  # refused adds are not events


def test_one_currency_per_cart(shopper_client):
    add(shopper_client, make_variant(currency="EUR"))
    response = add(shopper_client, make_variant(currency="USD"))
    assert response.status_code == 409 and response.json()["code"] == "currency_mismatch"
    assert len(shopper_client.get("/api/v1/cart/").json()["lines"]) == 1


def test_a_cart_whose_prices_came_to_be_in_two_currencies_shows_no_single_currency_total(shopper_client):
    """A price re-imported in another currency after the add: the cart does not show euros and dollars
    summed as euros; each line keeps its own currency, and checkout refuses it."""
    from catalog.models import Variant

    add(shopper_client, make_variant(price="19.99", currency="EUR"))
    scarf = make_variant(price="5.00", currency="EUR")
    add(shopper_client, scarf)
    assert shopper_client.get("/api/v1/cart/").json()["subtotal"] == "24.99"
    Variant.objects.filter(id=scarf.id).update(currency="USD")
    body = shopper_client.get("/api/v1/cart/").json()
    assert (body["currency"], body["subtotal"]) == (None, None)
    assert sorted(line["currency"] for line in body["lines"]) == ["EUR", "USD"]
    response = shopper_client.post("/api/v1/orders/", {"payment_token": "tok_visa"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "currency_mismatch"


def test_a_line_remembers_the_shoppers_own_scan_only(shopper_client):
    tee = make_variant()
    scan = a_scan(shopper_client)
    body = add(shopper_client, tee, scan=scan).json()
    assert body["lines"][0]["scan_id"] == str(scan.id)
    assert CartEvent.objects.get().scan_id == scan.id

    someone_elses = a_scan(new_shopper_client())
    response = add(shopper_client, tee, scan=someone_elses)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "scan_id", "code": "does_not_exist", "detail": "No scan of yours has this id."}
    ]
    bad = shopper_client.post("/api/v1/cart/items/", {"variant_id": tee.id, "scan_id": "not-a-uuid"}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "scan_id"


def test_another_shoppers_cart_lines_are_not_found(shopper_client):
    add(shopper_client, make_variant(), 2)
    line_id = CartLine.objects.get().id
    intruder = new_shopper_client()
    assert intruder.get("/api/v1/cart/").json()["lines"] == []
    for response in (
        intruder.patch(f"/api/v1/cart/items/{line_id}/", {"quantity": 1}, format="json"),
        intruder.delete(f"/api/v1/cart/items/{line_id}/"),
    ):
        assert response.status_code == 404 and response["Content-Type"] == PROBLEM
    assert CartLine.objects.get().quantity == 2
    assert shopper_client.__class__().get("/api/v1/cart/").status_code == 401


def test_an_idempotent_add_is_replayed(shopper_client):
    tee = make_variant()
    first = add(shopper_client, tee, 2, HTTP_IDEMPOTENCY_KEY="add-1")
    again = add(shopper_client, tee, 2, HTTP_IDEMPOTENCY_KEY="add-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert CartLine.objects.get().quantity == 2 and CartEvent.objects.count() == 1

    other = add(shopper_client, tee, 3, HTTP_IDEMPOTENCY_KEY="add-1")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert CartLine.objects.get().quantity == 2


def test_a_line_changed_after_it_was_checked_out_or_removed_is_a_conflict_not_a_500(shopper_client):
    """Requests that waited for a checkout, or for another request removing the line, re-read the line
    under the cart's lock (here: the line as such a request had read it before)."""
    from shop.carts.models import Order
    from shop.carts.services import LineGone, cart_line_remove, cart_line_update
    from tests.carts.conftest import checkout

    tee, socks = make_variant(price="19.99"), make_variant(price="5.00")
    add(shopper_client, tee, 2)
    add(shopper_client, socks, 1)
    tee_line, socks_line = CartLine.objects.get(variant=tee), CartLine.objects.get(variant=socks)
    cart_line_remove(line=socks_line)  # another request removes it
    for change in (lambda: cart_line_update(line=socks_line, quantity=3), lambda: cart_line_remove(line=socks_line)):
        try:
            change()
            raise AssertionError("a removed line was changed")
        except LineGone as gone:
            assert gone.code == "line_gone" and gone.extensions == {"line_id": socks_line.pk}
    assert checkout(shopper_client).status_code == 201  # the cart is ordered: its lines stay the order's
    for change in (lambda: cart_line_update(line=tee_line, quantity=1), lambda: cart_line_remove(line=tee_line)):
        try:
            change()
            raise AssertionError("an ordered line was changed")
        except LineGone:
            pass
    assert CartLine.objects.filter(pk=tee_line.pk, quantity=2).exists()
    assert Order.objects.get().lines.get().quantity == 2
    # the API answers a line that is not in the open cart as before
    response = shopper_client.delete(f"/api/v1/cart/items/{tee_line.pk}/")
    assert response.status_code == 404 and response["Content-Type"] == PROBLEM


def test_a_cart_past_what_an_order_can_total_is_refused_not_a_500(shopper_client):
    """99 of two variants at 60,000,000 (a price in IDR or VND) made the cart a 500 to read, and its
    checkout a 500 at the order's insert: an add past an order's largest total is refused; a cart
    that got there by a price rise reads fine and checks out as a 409 with nothing charged."""
    from shop.carts.models import Order

    dear, dearer = make_variant(price="60000000.00", stock=500), make_variant(price="60000000.00", stock=500)
    assert add(shopper_client, dear, 99).status_code == 201
    refused = add(shopper_client, dearer, 99)
    assert refused.status_code == 409 and refused["Content-Type"] == PROBLEM
    assert refused.json()["code"] == "total_limit" and refused.json()["maximum"] == "9999999999.99"
    assert add(shopper_client, dearer, 50).status_code == 201  # 8,940,000,000.00 in all
    line = lines_by_sku(shopper_client.get("/api/v1/cart/").json())[dearer.sku]["id"]
    raised = shopper_client.patch(f"/api/v1/cart/items/{line}/", {"quantity": 99}, format="json")
    assert raised.status_code == 409 and raised.json()["code"] == "total_limit"

    type(dear).objects.filter(pk=dear.pk).update(price="99999999.99")  # the catalog's highest price
    cart = shopper_client.get("/api/v1/cart/")
    assert cart.status_code == 200 and cart.json()["subtotal"] == "12899999999.01"
    checkout = shopper_client.post("/api/v1/orders/", {"payment_token": "tok_visa"}, format="json")
    assert checkout.status_code == 409 and checkout.json()["code"] == "total_limit"
    assert not Order.objects.exists()
