"""Rate limits on scan creation and on checkout, per shopper and per client IP.

A brake on runaway apps and casual abuse (each scan costs a photo decode and a vision run), not a
security boundary: anyone can register more shoppers, and client IPs are shared (carrier NAT) or
spoofable unless REST_FRAMEWORK["NUM_PROXIES"] matches the proxies in front of the service.
Histories live in Django's cache, so every process must share one cache (Redis) for the limits to
hold across processes; with the default per-process LocMem cache each process counts on its own.

The classes are installed through REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] and act only on
`POST /api/v1/scans/` and `POST /api/v1/orders/` (every other request passes untouched); rates are
read from settings at request time (THROTTLE_SCANS_PER_SHOPPER, THROTTLE_SCANS_PER_IP,
THROTTLE_CHECKOUTS_PER_SHOPPER, THROTTLE_CHECKOUTS_PER_IP), so a changed setting applies at once.
Checkout's limits brake card testing: every attempt asks the payment provider and stores an order.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

SCAN_CREATE_VIEW = "ScanListCreateApi"
CHECKOUT_VIEW = "OrderListCreateApi"


class _ScanCreateThrottle(SimpleRateThrottle):
    rate_setting = ""
    view_name = SCAN_CREATE_VIEW

    def __init__(self) -> None:
        # SimpleRateThrottle reads its rate in __init__ from a dict frozen at import; defer to allow_request.
        pass

    def get_rate(self) -> str | None:
        return getattr(settings, self.rate_setting) or None

    def allow_request(self, request, view) -> bool:
        if request.method != "POST" or view.__class__.__name__ != self.view_name:
            return True
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


class ScanCreateShopperThrottle(_ScanCreateThrottle):
    """THROTTLE_SCANS_PER_SHOPPER scans per shopper token."""

    scope = "scan_create_shopper"
    rate_setting = "THROTTLE_SCANS_PER_SHOPPER"

    def get_cache_key(self, request, view) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None  # anonymous requests are refused (401) before any scan is made
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class ScanCreateIpThrottle(_ScanCreateThrottle):
    """THROTTLE_SCANS_PER_IP scans per client IP, whichever shopper sends them."""

    scope = "scan_create_ip"
    rate_setting = "THROTTLE_SCANS_PER_IP"

    def get_cache_key(self, request, view) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class CheckoutShopperThrottle(ScanCreateShopperThrottle):
    """THROTTLE_CHECKOUTS_PER_SHOPPER checkouts per shopper token."""

    scope = "checkout_shopper"
    rate_setting = "THROTTLE_CHECKOUTS_PER_SHOPPER"
    view_name = CHECKOUT_VIEW


class CheckoutIpThrottle(ScanCreateIpThrottle):
    """THROTTLE_CHECKOUTS_PER_IP checkouts per client IP, whichever shopper sends them."""

    scope = "checkout_ip"
    rate_setting = "THROTTLE_CHECKOUTS_PER_IP"
    view_name = CHECKOUT_VIEW
