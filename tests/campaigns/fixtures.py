"""Campaign fixtures shared by the ad-scan tests here and the real vision worker's tests (registered
for every test module by `pytest_plugins` in tests/conftest.py): a campaign with four creatives of
one template, registered as the admin registers them, and a scan of a photographed creative."""

from datetime import date

import pytest
from django.core.files.base import ContentFile
from vision import adgen

from catalog.models import Product
from shop.campaigns.models import AdCreative, AdCreativeProduct, Campaign
from shop.campaigns.services import ad_creative_prepare
from tests.scans.conftest import jpeg, post_scan

TEMPLATE_SEED = 3


def register_creative(campaign: Campaign, page: adgen.Creative, name: str, products: list[Product]) -> AdCreative:
    creative = AdCreative(campaign=campaign, name=name, metadata={"headline": name})
    creative.image.save(f"{name}.jpg", ContentFile(jpeg(page.image)), save=False)
    ad_creative_prepare(creative=creative)
    creative.save()
    width, height = page.image.size
    for position, (product, box) in enumerate(zip(products, page.products, strict=False)):
        x0, y0, x1, y1 = box.box
        AdCreativeProduct.objects.create(
            creative=creative, product=product, position=position,
            x0=x0 / width, y0=y0 / height, x1=x1 / width, y1=y1 / height,
        )  # fmt: skip
    return creative


@pytest.fixture
def campaign_with_creatives(demo_catalog):
    campaign = Campaign.objects.create(
        name="Autumn print", code="autumn-print", channel="magazine", starts_on=date(2026, 9, 1), status="active"
    )
    template = adgen.make_template(TEMPLATE_SEED)
    products = list(Product.objects.order_by("id"))
    creatives = []
    for n in range(4):
        page = adgen.make_creative(template, seed=n, detail="rich")
        creatives.append((register_creative(campaign, page, f"autumn-{n}", products[n * 3 : n * 3 + 3]), page))
    return campaign, template, creatives


def scan_recognising(shopper, creative_page, django_capture_on_commit_callbacks, seed=5) -> dict:
    """The scan (as the shopper reads it) of an easy photo of `creative_page`, its tasks run."""
    photo, _ = adgen.photograph(creative_page.image, seed=seed, difficulty="easy")
    with django_capture_on_commit_callbacks(execute=True):
        scan_id = post_scan(shopper, jpeg(photo)).json()["id"]
    return shopper.get(f"/api/v1/scans/{scan_id}/").json()
