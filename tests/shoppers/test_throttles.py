"""Scan creation, refinement, checkout and direct-upload URLs are rate-limited per shopper and per client
IP; nothing else is."""

import io

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests.scans.conftest import new_shopper_client

PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


def post_scan(client, ip: str):
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (30, 90, 200)).save(out, "JPEG")
    photo = SimpleUploadedFile("p.jpg", out.getvalue(), content_type="image/jpeg")
    return client.post("/api/v1/scans/", {"photo": photo}, format="multipart", REMOTE_ADDR=ip)


def test_the_shopper_limit_refuses_the_next_scan_with_a_429_problem(db, settings):
    settings.THROTTLE_SCANS_PER_SHOPPER, settings.THROTTLE_SCANS_PER_IP = "2/min", "100/min"
    busy, other = new_shopper_client(), new_shopper_client()
    assert [post_scan(busy, "10.9.0.1").status_code for _ in range(2)] == [202, 202]
    refused = post_scan(busy, "10.9.0.1")
    assert refused.status_code == 429 and refused["Content-Type"] == PROBLEM
    assert refused.json()["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Only scan creation is limited, and only for this shopper.
    assert busy.get("/api/v1/scans/").status_code == 200
    assert post_scan(other, "10.9.0.1").status_code == 202


def test_the_ip_limit_counts_every_shopper_behind_one_address(db, settings):
    settings.THROTTLE_SCANS_PER_SHOPPER, settings.THROTTLE_SCANS_PER_IP = "100/min", "2/min"
    first, second = new_shopper_client(), new_shopper_client()
    assert post_scan(first, "10.9.0.2").status_code == 202
    assert post_scan(second, "10.9.0.2").status_code == 202
    assert post_scan(second, "10.9.0.2").status_code == 429
    assert post_scan(second, "10.9.0.3").status_code == 202  # another address has its own count
    # A forged X-Forwarded-For does not make a new client (NUM_PROXIES=0 uses REMOTE_ADDR).
    forged = first.post("/api/v1/scans/", {}, format="multipart", REMOTE_ADDR="10.9.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert forged.status_code == 429


def test_an_empty_rate_turns_a_limit_off(db, settings):
    settings.THROTTLE_SCANS_PER_SHOPPER, settings.THROTTLE_SCANS_PER_IP = "", "1/min"
    shopper = new_shopper_client()
    assert post_scan(shopper, "10.9.0.4").status_code == 202
    assert post_scan(shopper, "10.9.0.4").status_code == 429


def test_checkout_attempts_are_limited_per_shopper_against_card_testing(db, settings):
    """Each checkout asks the payment provider and stores an order: a token trying card after card is
    stopped at THROTTLE_CHECKOUTS_PER_SHOPPER, with nothing more asked of the provider."""
    from shop.carts.models import Order
    from tests.carts.conftest import add, checkout, make_variant

    settings.THROTTLE_CHECKOUTS_PER_SHOPPER, settings.THROTTLE_CHECKOUTS_PER_IP = "3/min", "100/min"
    tester, other = new_shopper_client(), new_shopper_client()
    add(tester, make_variant())
    assert [checkout(tester, "tok_declined").status_code for _ in range(3)] == [402, 402, 402]
    refused = checkout(tester, "tok_visa")
    assert refused.status_code == 429 and refused.json()["code"] == "throttled"
    assert Order.objects.filter(shopper=tester.shopper).count() == 3
    assert tester.get("/api/v1/cart/").status_code == 200  # only checkout is limited
    add(other, make_variant())
    assert checkout(other).status_code == 201


def test_direct_upload_urls_are_limited_per_shopper(db, settings, s3_server):
    """Each upload URL lets its holder store a photo of up to UPLOAD_MAX_BYTES in the bucket: a token
    asking for URL after URL is stopped at THROTTLE_UPLOADS_PER_SHOPPER, and another shopper is not."""
    from tests.shoppers.storage import s3_storage

    settings.THROTTLE_UPLOADS_PER_SHOPPER, settings.THROTTLE_UPLOADS_PER_IP = "2/min", "100/min"
    with s3_storage(s3_server):
        hoarder, other = new_shopper_client(), new_shopper_client()
        granted = [hoarder.post("/api/v1/uploads/", REMOTE_ADDR="10.9.0.7") for _ in range(2)]
        assert [r.status_code for r in granted] == [201, 201] and all(r.json()["upload_key"] for r in granted)
        refused = hoarder.post("/api/v1/uploads/", REMOTE_ADDR="10.9.0.7")
        assert refused.status_code == 429 and refused.json()["code"] == "throttled"
        assert other.post("/api/v1/uploads/", REMOTE_ADDR="10.9.0.7").status_code == 201


def test_refinements_are_limited_per_shopper(db, settings):
    """Each refinement decodes and embeds the photo in the web process: a token sending them in a loop
    is stopped at THROTTLE_REFINES_PER_SHOPPER (the scan's own answer is not needed to be refused)."""
    from shop.scans.models import Scan

    settings.THROTTLE_REFINES_PER_SHOPPER, settings.THROTTLE_REFINES_PER_IP = "2/min", "100/min"
    shopper = new_shopper_client()
    scan = Scan.objects.create(shopper=shopper.shopper, kind="look", status="done", result_kind="look")
    url = f"/api/v1/scans/{scan.id}/search"
    answers = [shopper.post(url, {}, format="json", REMOTE_ADDR="10.9.0.8").status_code for _ in range(3)]
    assert answers == [410, 410, 429]  # no photo stored here: 410 until the limit
    assert shopper.get(f"/api/v1/scans/{scan.id}/").status_code == 200  # reads are not limited


def test_registrations_are_limited_per_client_ip(db, settings):
    """Each registration made a user, a profile and a token at no cost, and each token a fresh
    per-shopper quota: a loop filled those tables without limit."""
    from rest_framework.test import APIClient

    settings.THROTTLE_REGISTRATIONS_PER_IP = "2/min"
    client = APIClient()

    def register(ip):
        return client.post("/api/v1/shoppers/", {"platform": "ios"}, format="json", REMOTE_ADDR=ip)

    assert [register("10.9.0.7").status_code for _ in range(2)] == [201, 201]
    refused = register("10.9.0.7")
    assert refused.status_code == 429 and refused["Content-Type"] == PROBLEM
    assert register("10.9.0.8").status_code == 201  # another address
