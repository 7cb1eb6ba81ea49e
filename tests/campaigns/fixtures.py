"""Campaign fixtures shared by the campaign tests here and by other packages' tests (registered for
every test module by `pytest_plugins` in tests/conftest.py): a campaign with four creatives of one
template, registered as the admin registers them, and a scan of a photographed creative (the ad-scan
and real vision worker tests); a campaign with a creative, attributed ad scans, orders and the ROI
report (the attribution, browser and privacy tests); staff logged in to admin (the catalog's pages too)
and the reports."""

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone
from vision import adgen

from catalog.models import Product
from shop.campaigns.models import AdCreative, AdCreativeProduct, Campaign, ScanAttribution
from shop.campaigns.services import ad_creative_prepare
from shop.scans.models import Scan
from tests.scans.conftest import jpeg, post_scan

TEMPLATE_SEED = 3
TODAY = timezone.localdate()


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


def make_campaign(code: str, products: list[Product]) -> tuple[Campaign, AdCreative]:
    campaign = Campaign.objects.create(
        name=code.title(), code=code, channel="poster", starts_on=TODAY - timedelta(days=60)
    )
    creative = AdCreative.objects.create(campaign=campaign, name=f"{code}-creative", image="creatives/x.jpg")
    for position, product in enumerate(products):
        AdCreativeProduct.objects.create(creative=creative, product=product, position=position)
    return campaign, creative


def ad_scan(client, creative: AdCreative, *, ago: timedelta) -> Scan:
    """A finished ad scan of `creative` by this shopper, `ago` before now."""
    when = timezone.now() - ago
    scan = Scan.objects.create(shopper=client.shopper, kind="ad", status="done", result_kind="ad")
    Scan.objects.filter(id=scan.id).update(created_at=when)
    ScanAttribution.objects.create(
        scan=scan, campaign=creative.campaign, creative=creative, shopper=client.shopper,
        confidence=0.9, homography=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], created_at=when,
    )  # fmt: skip
    return scan


def buy(client, product: Product, quantity: int = 1, scan: Scan | None = None) -> dict:
    variant = product.variants.order_by("id").first()
    body = {"variant_id": variant.id, "quantity": quantity}
    if scan is not None:
        body["scan_id"] = str(scan.id)
    assert client.post("/api/v1/cart/items/", body, format="json").status_code in (200, 201)
    response = client.post("/api/v1/orders/", {"payment_token": "tok_visa"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def roi(client, **params) -> dict:
    query = {"start": (TODAY - timedelta(days=30)).isoformat(), "end": TODAY.isoformat(), **params}
    response = client.get("/api/v1/reports/campaigns/roi/", query)
    assert response.status_code == 200, response.content
    return {c["code"]: c for c in response.json()["campaigns"]}


@pytest.fixture
def staff(client, db):
    """The test client, logged in as staff (a superuser): merchandisers' and marketers' admin pages, the reports."""
    client.force_login(get_user_model().objects.create_superuser("marketer", "m@example.com", "a-long-password-1"))
    return client
