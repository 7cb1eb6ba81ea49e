import numpy as np

from catalog.selectors import products_by_ids
from catalog.serializers import ProductCardSerializer
from shop.campaigns.models import ScanAttribution
from shop.campaigns.services import project_box


def recognised_ad(scan, *, context: dict) -> dict | None:
    """The campaign, the creative's metadata and its products, with each product's place on the photo."""
    attribution = (
        ScanAttribution.objects.select_related("campaign", "creative").defer("creative__features")
        .filter(scan=scan).first()
    )
    if attribution is None:
        return None
    creative, campaign = attribution.creative, attribution.campaign
    placements = list(creative.placements.all())
    products = products_by_ids([p.product_id for p in placements])
    homography = np.array(attribution.homography, dtype=float)
    cards = []
    for placement in placements:
        product = products.get(placement.product_id)
        if product is None or not product.active:
            continue
        card = ProductCardSerializer(product, context=context).data
        has_box = None not in (placement.x0, placement.y0, placement.x1, placement.y1)
        card["box"] = (
            project_box(
                homography,
                (placement.x0, placement.y0, placement.x1, placement.y1),
                (creative.width, creative.height),
                (scan.width, scan.height),
            )
            if has_box
            else None
        )
        cards.append(card)
    return {
        "campaign": {"code": campaign.code, "name": campaign.name, "channel": campaign.channel},
        "creative": {"id": creative.id, "name": creative.name, "metadata": creative.metadata},
        "confidence": round(attribution.confidence, 4),
        "products": cards,
    }
