from collections.abc import Callable
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

from shop.shoppers.models import Shopper


def shopper_for_user(*, user) -> Shopper | None:
    return Shopper.objects.filter(user=user).first() if user.is_authenticated else None


def shopper_export(*, shopper: Shopper, photo_url: Callable[[Any], str | None]) -> dict:
    """Everything stored about a shopper, as plain JSON-ready data (GDPR art. 15/20).

    `photo_url(scan)` gives the address of its stored photo for its owner (time-limited with S3), or None.
    """
    from shop.campaigns.models import ScanAttribution
    from shop.carts.models import Cart, CartEvent, Order
    from shop.carts.serializers import OrderSerializer
    from shop.scans.models import Scan, ScanItem

    scans = Scan.objects.filter(shopper=shopper).order_by("created_at").prefetch_related(
        Prefetch("items", queryset=ScanItem.objects.prefetch_related("matches"))
    )
    carts = Cart.objects.filter(shopper=shopper).order_by("created_at").prefetch_related("lines")
    orders = Order.objects.filter(shopper=shopper).order_by("created_at").prefetch_related("lines")
    events = CartEvent.objects.filter(shopper=shopper).order_by("created_at")
    ad_scans = (
        ScanAttribution.objects.filter(shopper=shopper).select_related("campaign", "creative").order_by("created_at")
    )
    return {
        "format": "shop-the-look shopper export v1",
        "exported_at": timezone.now(),
        "profile": {
            "id": shopper.id,
            "platform": shopper.platform,
            "app_version": shopper.app_version,
            "locale": shopper.locale,
            "region": shopper.region,
            "created_at": shopper.created_at,
        },
        "scans": [
            {
                "id": scan.id,
                "kind": scan.kind,
                "status": scan.status,
                "result_kind": scan.result_kind,
                "failure_reason": scan.failure_reason,
                "created_at": scan.created_at,
                "finished_at": scan.finished_at,
                "width": scan.width,
                "height": scan.height,
                "filters": scan.filters,
                "photo_url": photo_url(scan),
                "photo_deleted_at": scan.photo_deleted_at,
                "items": [
                    {
                        "position": item.position,
                        "box": [item.x0, item.y0, item.x1, item.y1],
                        "category": item.category,
                        "score": item.score,
                        "colors": item.colors,
                        "matches": [
                            {"product_id": m.product_id, "rank": m.rank, "score": m.score} for m in item.matches.all()
                        ],
                    }
                    for item in scan.items.all()
                ],
            }
            for scan in scans
        ],
        "carts": [
            {
                "id": cart.id,
                "status": cart.status,
                "created_at": cart.created_at,
                "closed_at": cart.closed_at,
                "lines": [
                    {
                        "variant_id": line.variant_id,
                        "quantity": line.quantity,
                        "scan_id": line.scan_id,
                        "created_at": line.created_at,
                    }
                    for line in cart.lines.all()
                ],
            }
            for cart in carts
        ],
        "cart_events": [
            {
                "variant_id": event.variant_id,
                "product_id": event.product_id,
                "quantity": event.quantity,
                "scan_id": event.scan_id,
                "created_at": event.created_at,
            }
            for event in events
        ],
        "orders": OrderSerializer(orders, many=True).data,
        "ad_scans": [
            {
                "scan_id": attribution.scan_id,
                "campaign_code": attribution.campaign.code,
                "creative_name": attribution.creative.name,
                "created_at": attribution.created_at,
            }
            for attribution in ad_scans
        ],
    }
