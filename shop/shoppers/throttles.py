"""Rate limits on scan creation, refinement, checkout and direct uploads, per shopper and per client IP.

A brake on runaway apps and casual abuse (each scan costs a photo decode and a vision run), not a
security boundary: anyone can register more shoppers, and client IPs are shared (carrier NAT) or
spoofable unless REST_FRAMEWORK["NUM_PROXIES"] matches the proxies in front of the service.
Histories live in Django's cache, so every process must share one cache (Redis) for the limits to
hold across processes; with the default per-process LocMem cache each process counts on its own.

The classes are installed through REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] and act only on
`POST /api/v1/scans/`, `POST /api/v1/orders/`, `POST /api/v1/uploads/` and
`POST /api/v1/scans/{id}/search`, and registration (`POST /api/v1/shoppers/`, per IP) (every other
request passes untouched); rates are read from settings
at request time (THROTTLE_SCANS_PER_SHOPPER, THROTTLE_SCANS_PER_IP, THROTTLE_CHECKOUTS_PER_...,
THROTTLE_UPLOADS_PER_..., THROTTLE_REFINES_PER_..., THROTTLE_REGISTRATIONS_PER_IP), so a changed setting applies at once. Checkout's limits brake card testing: every attempt asks the payment provider and
stores an order. Upload limits keep one token from filling the bucket: each URL lets its holder store
a photo of up to UPLOAD_MAX_BYTES (for a day, until the lifecycle rule expires it).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

SCAN_CREATE_VIEW = "ScanListCreateApi"
CHECKOUT_VIEW = "OrderListCreateApi"
UPLOAD_VIEW = "UploadApi"
REFINE_VIEW = "ScanRefineApi"
REGISTER_VIEW = "ShopperRegisterApi"


class _PostThrottle(SimpleRateThrottle):
    """POSTs to `view_name`, at the rate of the `rate_setting` setting; every other request passes."""

    rate_setting = ""
    view_name = ""

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


class _PerShopper(_PostThrottle):
    def get_cache_key(self, request, view) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None  # anonymous requests are refused (401) before anything is made
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class _PerIp(_PostThrottle):
    def get_cache_key(self, request, view) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ScanCreateShopperThrottle(_PerShopper):
    """THROTTLE_SCANS_PER_SHOPPER scans per shopper token."""

    scope, rate_setting, view_name = "scan_create_shopper", "THROTTLE_SCANS_PER_SHOPPER", SCAN_CREATE_VIEW


class ScanCreateIpThrottle(_PerIp):
    """THROTTLE_SCANS_PER_IP scans per client IP, whichever shopper sends them."""

    scope, rate_setting, view_name = "scan_create_ip", "THROTTLE_SCANS_PER_IP", SCAN_CREATE_VIEW


class CheckoutShopperThrottle(_PerShopper):
    """THROTTLE_CHECKOUTS_PER_SHOPPER checkouts per shopper token."""

    scope, rate_setting, view_name = "checkout_shopper", "THROTTLE_CHECKOUTS_PER_SHOPPER", CHECKOUT_VIEW


class CheckoutIpThrottle(_PerIp):
    """THROTTLE_CHECKOUTS_PER_IP checkouts per client IP, whichever shopper sends them."""

    scope, rate_setting, view_name = "checkout_ip", "THROTTLE_CHECKOUTS_PER_IP", CHECKOUT_VIEW


class UploadShopperThrottle(_PerShopper):
    """THROTTLE_UPLOADS_PER_SHOPPER direct-upload URLs per shopper token."""

    scope, rate_setting, view_name = "upload_shopper", "THROTTLE_UPLOADS_PER_SHOPPER", UPLOAD_VIEW


class UploadIpThrottle(_PerIp):
    """THROTTLE_UPLOADS_PER_IP direct-upload URLs per client IP, whichever shopper asks."""

    scope, rate_setting, view_name = "upload_ip", "THROTTLE_UPLOADS_PER_IP", UPLOAD_VIEW


class RefineShopperThrottle(_PerShopper):
    """THROTTLE_REFINES_PER_SHOPPER refinements per shopper token (each decodes and embeds the photo in
    the web process)."""

    scope, rate_setting, view_name = "refine_shopper", "THROTTLE_REFINES_PER_SHOPPER", REFINE_VIEW


class RefineIpThrottle(_PerIp):
    """THROTTLE_REFINES_PER_IP refinements per client IP, whichever shopper asks."""

    scope, rate_setting, view_name = "refine_ip", "THROTTLE_REFINES_PER_IP", REFINE_VIEW


class RegisterIpThrottle(_PerIp):
    """THROTTLE_REGISTRATIONS_PER_IP new shoppers per client IP: each is a user, a profile and a token,
    and a fresh token is a fresh per-shopper quota for everything above."""

    scope, rate_setting, view_name = "register_ip", "THROTTLE_REGISTRATIONS_PER_IP", REGISTER_VIEW
