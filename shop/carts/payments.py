"""Payment providers. Checkout charges through the one named by the PAYMENT_PROVIDER setting
(a dotted path to a class; default: the test provider, which talks to no gateway)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.core.cache import cache
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
        charge twice: a retry returns the first attempt's result. A network failure or timeout raises
        (any exception): checkout keeps the order pending and finds out later (`find_charge`). A retry
        of a checkout asks `find_charge` first, so a gateway that refuses a key reused with another
        token (a wallet's fresh one) is not asked to charge again."""
        ...

    def find_charge(self, idempotency_key: str) -> PaymentResult | None:
        """The result of the charge sent under `idempotency_key`, or None when the gateway never
        received one. Reconciliation asks it about orders whose checkout stopped after the order was
        written (the process killed, the gateway's answer lost)."""
        ...

    def refund(self, reference: str, amount: Decimal, currency: str, idempotency_key: str) -> PaymentResult:
        """Pay back `amount` of the charge `reference`. The same `idempotency_key` must never refund
        twice. `reference` of the result: the refund's own."""
        ...


class TestPaymentProvider:
    """A stand-in for a gateway that talks to none: `tok_declined` (and `tok_insufficient_funds`) are
    declined, any other `tok_...` token is charged, anything else is an invalid token. Like a gateway it
    keeps each key's first result (in Django's cache, LEDGER_DAYS): a retry gets it again, whatever its
    token, and `find_charge` reads it. The ledger is shared by the processes only through a shared cache
    (CACHE_URL); with the default per-process one, the worker's reconciliation finds no charge made by a
    web process, and fails such a stuck order as not completed (no money moves here either way)."""

    DECLINES = {"tok_declined": "card_declined", "tok_insufficient_funds": "insufficient_funds"}
    LEDGER_DAYS = 30

    def charge(self, amount: Decimal, currency: str, token: str, idempotency_key: str) -> PaymentResult:
        kept = self.find_charge(idempotency_key)
        if kept is not None:
            return kept
        if token in self.DECLINES:
            result = PaymentResult(ok=False, failure_reason=self.DECLINES[token])
        elif not token.startswith("tok_"):
            result = PaymentResult(ok=False, failure_reason="invalid_token")
        else:
            digest = hashlib.sha256(f"{idempotency_key}|{amount}|{currency}".encode()).hexdigest()
            result = PaymentResult(ok=True, reference=f"test_ch_{digest[:24]}")
        cache.add(self._ledger_key(idempotency_key), asdict(result), timeout=self.LEDGER_DAYS * 86400)
        return self.find_charge(idempotency_key) or result  # a concurrent first attempt's, if it came first

    def find_charge(self, idempotency_key: str) -> PaymentResult | None:
        kept = cache.get(self._ledger_key(idempotency_key))
        return PaymentResult(**kept) if kept else None

    @staticmethod
    def _ledger_key(idempotency_key: str) -> str:
        return "test-payments:" + hashlib.sha256(idempotency_key.encode()).hexdigest()

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
