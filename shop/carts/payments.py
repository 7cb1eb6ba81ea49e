"""Payment providers. Checkout charges through the one named by the PAYMENT_PROVIDER setting
(a dotted path to a class; default: the test provider, which talks to no gateway)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULT_PROVIDER = "shop.carts.payments.TestPaymentProvider"


@dataclass(frozen=True)
class PaymentResult:
    ok: bool
    reference: str = ""
    failure_reason: str = ""


class PaymentProvider(Protocol):
    def charge(self, amount: Decimal, currency: str, token: str, idempotency_key: str) -> PaymentResult:
        """Charge `amount` to the card behind `token`. The same `idempotency_key` must never
        charge twice: a retry returns the first attempt's result."""
        ...

    def refund(self, reference: str, amount: Decimal, currency: str, idempotency_key: str) -> PaymentResult:
        """Pay back `amount` of the charge `reference`. The same `idempotency_key` must never refund
        twice. `reference` of the result: the refund's own."""
        ...


class TestPaymentProvider:
    """A deterministic stand-in for a gateway: `tok_declined` (and `tok_insufficient_funds`) are
    declined, any other `tok_...` token is charged, anything else is an invalid token. The
    reference is derived from the idempotency key, so a retry gets the same one."""

    DECLINES = {"tok_declined": "card_declined", "tok_insufficient_funds": "insufficient_funds"}

    def charge(self, amount: Decimal, currency: str, token: str, idempotency_key: str) -> PaymentResult:
        if token in self.DECLINES:
            return PaymentResult(ok=False, failure_reason=self.DECLINES[token])
        if not token.startswith("tok_"):
            return PaymentResult(ok=False, failure_reason="invalid_token")
        digest = hashlib.sha256(f"{idempotency_key}|{amount}|{currency}".encode()).hexdigest()
        return PaymentResult(ok=True, reference=f"test_ch_{digest[:24]}")

    def refund(self, reference: str, amount: Decimal, currency: str, idempotency_key: str) -> PaymentResult:
        if not reference.startswith("test_ch_"):
            return PaymentResult(ok=False, failure_reason="no_such_charge")
        digest = hashlib.sha256(f"{idempotency_key}|{reference}|{amount}|{currency}".encode()).hexdigest()
        return PaymentResult(ok=True, reference=f"test_re_{digest[:24]}")


def provider_path() -> str:
    return getattr(settings, "PAYMENT_PROVIDER", DEFAULT_PROVIDER)


@lru_cache(maxsize=4)
def _provider(path: str) -> PaymentProvider:
    return import_string(path)()


def payment_provider() -> PaymentProvider:
    return _provider(provider_path())


def provider_at(path: str) -> PaymentProvider:
    """The provider of that dotted path (an order's own, for its refund after PAYMENT_PROVIDER changed)."""
    return _provider(path)
