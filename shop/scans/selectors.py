from django.db.models import Prefetch, QuerySet

from catalog.models import ProductImage, Variant
from shop.scans.models import Scan, ScanItem, ScanMatch
from shop.shoppers.models import Shopper


def scans_of(*, shopper: Shopper) -> QuerySet[Scan]:
    """A shopper's own scans: every read goes through here, so nobody sees another's."""
    return Scan.objects.filter(shopper=shopper)


def scan_with_results(*, shopper: Shopper, scan_id) -> Scan | None:
    """The shopper's scan with its items and their matches, of products still sold: one deactivated since
    the scan (discontinued, recalled) is left out, as search leaves it out (the cart would refuse it)."""
    matches = ScanMatch.objects.filter(product__active=True).select_related(
        "product__brand", "product__category").prefetch_related(
        Prefetch("product__variants", queryset=Variant.objects.order_by("price", "sku")),
        Prefetch("product__images", queryset=ProductImage.objects.order_by("-is_primary", "position", "id")),
    )
    items = ScanItem.objects.prefetch_related(Prefetch("matches", queryset=matches))
    return scans_of(shopper=shopper).prefetch_related(Prefetch("items", queryset=items)).filter(id=scan_id).first()
