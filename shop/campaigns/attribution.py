"""Attribution of orders to campaigns, stored when the order is placed.

Two definitions, both stated in the ROI report:

- **product, last touch** — each order line goes to the campaign whose ad the shopper scanned
  most recently within ATTRIBUTION_WINDOW_DAYS before the order, among the campaigns whose
  creatives promote the line's product;
- **campaign window** — the whole order counts for every campaign of which the shopper scanned any
  ad within the window.

The window is inclusive at both ends (a scan exactly `window` before the order counts). Rows keep
the window in force, so changing the setting later does not rewrite history.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from shop.campaigns.models import AdCreativeProduct, OrderCampaignAttribution, OrderLineAttribution, ScanAttribution


def attribute_order(*, order) -> None:
    placed_at = order.created_at
    window = settings.ATTRIBUTION_WINDOW_DAYS
    # An order whose shopper was erased before it was paid finds their scans through the erasure's key.
    whose = {"erased_shopper": order.erased_shopper} if order.erased_shopper else {"shopper_id": order.shopper_id}
    touches = list(
        ScanAttribution.objects.filter(
            **whose, created_at__gte=placed_at - timedelta(days=window), created_at__lte=placed_at
        ).order_by("-created_at", "-id")
    )
    if not touches:
        return
    lines = list(order.lines.all())
    campaigns_by_product: dict[int, set[int]] = {}
    for product_id, campaign_id in AdCreativeProduct.objects.filter(
        product_id__in=[line.product_id for line in lines], creative__campaign_id__in={t.campaign_id for t in touches}
    ).values_list("product_id", "creative__campaign_id"):
        campaigns_by_product.setdefault(product_id, set()).add(campaign_id)
    for line in lines:
        promoting = campaigns_by_product.get(line.product_id, set())
        touch = next((t for t in touches if t.campaign_id in promoting), None)  # most recent first
        if touch is not None:
            OrderLineAttribution.objects.create(
                line=line, campaign_id=touch.campaign_id, touch=touch, window_days=window,
                revenue=line.line_total, units=line.quantity, attributed_at=placed_at,
            )  # fmt: skip
    units = sum(line.quantity for line in lines)
    for campaign_id in dict.fromkeys(t.campaign_id for t in touches):
        last = next(t for t in touches if t.campaign_id == campaign_id)
        OrderCampaignAttribution.objects.create(
            order=order, campaign_id=campaign_id, touch=last, window_days=window,
            revenue=order.total, units=units, attributed_at=placed_at,
        )  # fmt: skip
