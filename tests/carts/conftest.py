import itertools
from decimal import Decimal

import pytest

from catalog.models import Category, Product, Variant
from shop.carts.payments import PaymentResult
from shop.scans.models import Scan

_counter = itertools.count(1)
PROBLEM = "application/problem+json"


def make_variant(*, price="19.99", stock=10, currency="EUR", active=True, title=None) -> Variant:
    """A sellable variant without pictures (carts never need them)."""
    n = next(_counter)
    category = Category.objects.create(name=f"Tops {n}", slug=f"cart-tops-{n}")
    product = Product.objects.create(title=title or f"Tee {n}", category=category, handle=f"cart-p-{n}", active=active)
    return Variant.objects.create(
        product=product, sku=f"CART-{n}", price=price, stock=stock, currency=currency, options={"size": "M"}
    )


def add(client, variant: Variant, quantity: int = 1, **extra):
    body = {"variant_id": variant.id, "quantity": quantity}
    if "scan" in extra:
        body["scan_id"] = str(extra.pop("scan").id)
    return client.post("/api/v1/cart/items/", body, format="json", **extra)


def checkout(client, token: str = "tok_visa", **extra):
    return client.post("/api/v1/orders/", {"payment_token": token}, format="json", **extra)


def a_scan(client) -> Scan:
    return Scan.objects.create(shopper=client.shopper, kind="look", status="done", result_kind="look")


class RecordingPaymentProvider:
    """Accepts every charge and remembers what it was asked."""

    charges: list[dict] = []

    def charge(self, amount: Decimal, currency: str, token: str, idempotency_key: str) -> PaymentResult:
        self.charges.append({"amount": amount, "currency": currency, "token": token, "key": idempotency_key})
        return PaymentResult(ok=True, reference=f"rec_{len(self.charges)}")


@pytest.fixture
def recording_provider(settings):
    RecordingPaymentProvider.charges = []
    settings.PAYMENT_PROVIDER = "tests.carts.conftest.RecordingPaymentProvider"
    return RecordingPaymentProvider


def new_shopper_client():
    from rest_framework.test import APIClient

    from shop.shoppers.services import shopper_register

    shopper, token = shopper_register(platform="android")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    client.shopper = shopper
    return client
