"""Shopper B probes every resource of shopper A: the answer is always 404, as if it did not exist.

Also: anonymous requests get 401, reports and admin are staff-only, and presigned direct uploads are
bound to the shopper's key, a size and a lifetime.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import override_settings
from rest_framework.test import APIClient

from shop.scans.models import Scan
from tests.carts.conftest import make_variant
from tests.scans.conftest import new_shopper_client
from tests.shoppers.storage import bucket_keys, s3_storage

PROBLEM = "application/problem+json"


@pytest.fixture
def a_and_b(db):
    """Shopper A with a scan (and its photo), a line in the open cart and an order; shopper B with nothing."""
    a, b = new_shopper_client(), new_shopper_client()
    a.scan = Scan(shopper=a.shopper, kind="look", status="done", result_kind="look")
    a.scan.photo.save("x.jpg", ContentFile(b"\xff\xd8not-decoded-by-these-tests"), save=True)
    bought, kept = make_variant(), make_variant()
    assert a.post("/api/v1/cart/items/", {"variant_id": bought.id, "quantity": 1}, format="json").status_code == 201
    order = a.post("/api/v1/orders/", {"payment_token": "tok_visa"}, format="json")
    assert order.status_code == 201
    a.order_id = order.json()["id"]
    added = a.post("/api/v1/cart/items/", {"variant_id": kept.id, "quantity": 1}, format="json")
    a.line_id = added.json()["lines"][0]["id"]
    yield a, b
    a.scan.photo.delete(save=False)


def probes(a) -> list[tuple[str, str, dict]]:
    return [
        ("get", f"/api/v1/scans/{a.scan.id}/", {}),
        ("post", f"/api/v1/scans/{a.scan.id}/search", {"k": 5}),
        ("patch", f"/api/v1/cart/items/{a.line_id}/", {"quantity": 2}),
        ("delete", f"/api/v1/cart/items/{a.line_id}/", {}),
        ("get", f"/api/v1/orders/{a.order_id}/", {}),
    ]


def test_another_shoppers_resources_answer_404_problems(a_and_b):
    a, b = a_and_b
    for method, url, body in probes(a):
        response = getattr(b, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
        assert response["Content-Type"] == PROBLEM and response.json()["status"] == 404
    # Nothing of A's shows in B's lists, and A's things are unchanged.
    assert b.get("/api/v1/scans/").json()["results"] == []
    assert b.get("/api/v1/orders/").json()["results"] == []
    assert b.get("/api/v1/cart/").json()["lines"] == []
    assert a.get("/api/v1/cart/").json()["lines"][0]["quantity"] == 1
    # The same probes by A succeed, so the 404s above are not for a wrong address.
    assert a.get(f"/api/v1/scans/{a.scan.id}/").status_code == 200
    assert a.get(f"/api/v1/orders/{a.order_id}/").status_code == 200


def test_anonymous_requests_are_refused_with_401(a_and_b):
    a, _ = a_and_b
    anonymous = APIClient()
    urls = [*probes(a), ("get", "/api/v1/scans/", {}), ("post", "/api/v1/scans/", {}), ("get", "/api/v1/cart/", {}),
            ("get", "/api/v1/orders/", {}), ("post", "/api/v1/uploads/", {}), ("get", "/api/v1/shoppers/me", {}),
            ("get", "/api/v1/shoppers/me/export", {}), ("delete", "/api/v1/shoppers/me", {})]  # fmt: skip
    for method, url, body in urls:
        response = getattr(anonymous, method)(url, body, format="json")
        assert response.status_code == 401, (method, url, response.status_code)
        assert response["Content-Type"] == PROBLEM


def test_reports_and_admin_are_staff_only(a_and_b, client):
    a, _ = a_and_b
    for url in ("/api/v1/reports/campaigns/roi/", "/api/v1/reports/trends/"):
        assert a.get(url).status_code == 403
        assert a.get(url)["Content-Type"] == PROBLEM
        assert APIClient().get(url).status_code == 401
    # Admin is session-only: a shopper token is no login, and a shopper's user cannot sign in.
    admin = a.get("/admin/")
    assert admin.status_code == 302 and admin["Location"].startswith("/admin/login/")
    assert not client.login(username=a.shopper.user.username, password="")
    from django.contrib.auth.models import Permission

    staff = get_user_model().objects.create_user("marketer", password="a-long-password-1", is_staff=True)
    client.force_login(staff)
    assert client.get("/api/v1/reports/trends/").status_code == 403  # staff, but not allowed campaigns
    staff.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(get_user_model().objects.get(pk=staff.pk))
    assert client.get("/api/v1/reports/trends/").status_code == 200


def _policy(upload: dict) -> dict:
    return json.loads(base64.b64decode(upload["fields"]["policy"]))


def _signature_is_valid(fields: dict, secret: str) -> bool:
    """The policy's signature (SigV4, or SigV2 where botocore picks it): any edit of the policy
    (key, size, expiry) breaks it."""
    if "x-amz-signature" in fields:
        _, day, region, service, _ = fields["x-amz-credential"].split("/")
        key = ("AWS4" + secret).encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, fields["policy"].encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, fields["x-amz-signature"])
    digest = hmac.new(secret.encode(), fields["policy"].encode(), hashlib.sha1).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), fields["signature"])


@pytest.fixture
def s3(s3_server, db):
    with s3_storage(s3_server) as (client, bucket), override_settings(UPLOAD_MAX_BYTES=2048, UPLOAD_URL_EXPIRE_SECONDS=120):
        yield client, bucket


def test_presigned_uploads_bind_the_key_size_and_lifetime(s3, s3_server):
    client, bucket = s3
    a, b = new_shopper_client(), new_shopper_client()
    asked_at = datetime.now(timezone.utc)
    upload = a.post("/api/v1/uploads/").json()
    key = upload["upload_key"]
    assert key.startswith(f"uploads/{a.shopper.id}/") and upload["max_bytes"] == 2048

    policy = _policy(upload)
    assert {"bucket": bucket} in policy["conditions"]
    assert {"key": key} in policy["conditions"]  # exactly this key, so within A's prefix
    assert ["content-length-range", 1, 2048] in policy["conditions"]
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert timedelta(seconds=110) <= expires - asked_at <= timedelta(seconds=125)
    assert _signature_is_valid(upload["fields"], s3_server["secret_key"])
    loosened = base64.b64encode(json.dumps({**policy, "conditions": []}).encode()).decode()
    tampered = {**upload["fields"], "policy": loosened}
    assert not _signature_is_valid(tampered, s3_server["secret_key"])

    # A real POST with the returned fields stores the object under A's prefix.
    sent = requests.post(upload["url"], data=upload["fields"], files={"file": b"x" * 100}, timeout=10)
    assert sent.status_code == 204, sent.text
    assert bucket_keys(client, bucket, f"uploads/{a.shopper.id}/") == [key]

    # B cannot turn A's upload into a scan of B's (nor learn that it exists); A's object stays.
    stolen = b.post("/api/v1/scans/", {"upload_key": key}, format="json")
    assert stolen.status_code == 404 and stolen["Content-Type"] == PROBLEM
    assert bucket_keys(client, bucket, f"uploads/{a.shopper.id}/") == [key]


def test_oversized_or_misplaced_direct_uploads_are_refused(s3, s3_server):
    """AWS refuses these POSTs by the signed policy; moto's server does not check POST policies, so
    when it accepts them the service's own checks must refuse the upload."""
    client, bucket = s3
    a, b = new_shopper_client(), new_shopper_client()

    upload = a.post("/api/v1/uploads/").json()
    oversized = requests.post(upload["url"], data=upload["fields"], files={"file": b"x" * 4096}, timeout=10)
    if oversized.status_code < 300:  # moto stored it: the scan request must refuse and delete it
        refused = a.post("/api/v1/scans/", {"upload_key": upload["upload_key"]}, format="json")
        assert refused.status_code == 413 and refused.json()["code"] == "too_many_bytes"
        assert bucket_keys(client, bucket, upload["upload_key"]) == []
    else:
        assert oversized.status_code in (400, 403)

    # A's fields with the key moved into B's prefix: the signed policy names A's key only.
    planted_key = f"uploads/{b.shopper.id}/planted"
    upload = a.post("/api/v1/uploads/").json()
    misplaced = requests.post(
        upload["url"], data={**upload["fields"], "key": planted_key}, files={"file": b"x" * 100}, timeout=10
    )
    if misplaced.status_code < 300:  # moto stored it; A still cannot scan from outside A's prefix
        refused = a.post("/api/v1/scans/", {"upload_key": planted_key}, format="json")
        assert refused.status_code == 404 and refused["Content-Type"] == PROBLEM
    else:
        assert misplaced.status_code in (400, 403)
    assert {"key": upload["upload_key"]} in _policy(upload)["conditions"]
