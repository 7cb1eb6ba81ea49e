"""A shopper exports and deletes their data; orders and campaign figures survive, anonymised."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token

from shop.campaigns.models import OrderCampaignAttribution, OrderLineAttribution, ScanAttribution
from shop.carts.models import Cart, CartEvent, Order, OrderLine
from shop.scans.models import Scan, ScanItem, ScanMatch
from shop.shoppers.models import Shopper
from shop.shoppers.services import DELETED_SHOPPER_ID, shopper_delete
from tests.campaigns.fixtures import ad_scan, buy, make_campaign, roi
from tests.carts.conftest import make_variant
from tests.scans.conftest import new_shopper_client
from tests.shoppers.storage import bucket_keys, s3_storage

PROBLEM = "application/problem+json"


def photo_bytes(color="red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, "JPEG")
    return out.getvalue()


def scan_with_photo(client, *, product=None) -> Scan:
    """A finished look scan with a stored photo and (given a product) one item and match."""
    scan = Scan(shopper=client.shopper, kind="look", status="done", result_kind="look", filters={"max_price": 50})
    scan.photo.save("ignored.jpg", ContentFile(photo_bytes()), save=True)
    if product is not None:
        item = ScanItem.objects.create(scan=scan, position=0, x0=0, y0=0, x1=1, y1=1, category="tops", score=0.9)
        ScanMatch.objects.create(item=item, product=product, rank=1, score=0.8)
    return scan


@pytest.fixture
def shoppers(db):
    """A with a look scan, an ad scan, an attributed paid order and an open cart; B with a scan and an order."""
    a, b = new_shopper_client(), new_shopper_client()
    tee, sock = make_variant(price="20.00"), make_variant(price="5.00")
    campaign, creative = make_campaign("privacy-spring", [tee.product])
    a.look = scan_with_photo(a, product=tee.product)
    a.ad = ad_scan(a, creative, ago=timedelta(hours=1))
    a.order = buy(a, tee.product, quantity=2, scan=a.ad)
    assert a.post("/api/v1/cart/items/", {"variant_id": sock.id, "quantity": 1}, format="json").status_code == 201
    b.look = scan_with_photo(b)
    b.order = buy(b, sock.product)
    a.campaign, b.campaign = campaign, campaign
    return a, b


def recognition(staff) -> list[dict]:
    query = {"start": (timezone.localdate() - timedelta(days=30)).isoformat(), "end": timezone.localdate().isoformat()}
    response = staff.get("/api/v1/reports/campaigns/roi/", query)
    assert response.status_code == 200, response.content
    return response.json()["recognition_rate"]


def test_the_export_holds_the_shoppers_data_and_nobody_elses(shoppers):
    a, b = shoppers
    response = a.get("/api/v1/shoppers/me/export")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="shopper-{a.shopper.id}.json"'
    assert response["Cache-Control"] == "no-store"
    data = response.json()
    assert data["profile"]["id"] == str(a.shopper.id)

    scans = {scan["id"]: scan for scan in data["scans"]}
    assert set(scans) == {str(a.look.id), str(a.ad.id)}
    look = scans[str(a.look.id)]
    # the link works for its owner (local media of scans are not served: /media/scans/... was a 404)
    assert look["photo_url"] == f"http://testserver/api/v1/scans/{a.look.id}/photo"
    photo = a.get(look["photo_url"])
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"
    assert b.get(look["photo_url"]).status_code == 404
    assert look["items"][0]["category"] == "tops" and look["items"][0]["matches"][0]["rank"] == 1
    assert [o["id"] for o in data["orders"]] == [a.order["id"]]
    assert data["orders"][0]["lines"][0]["quantity"] == 2
    assert sorted(c["status"] for c in data["carts"]) == ["open", "ordered"]
    assert sum(len(c["lines"]) for c in data["carts"]) == 2
    assert len(data["cart_events"]) == 2
    assert data["ad_scans"] == [
        {"scan_id": str(a.ad.id), "campaign_code": "privacy-spring", "creative_name": "privacy-spring-creative",
         "created_at": data["ad_scans"][0]["created_at"]},
    ]  # fmt: skip
    text = response.content.decode()
    for foreign in (b.shopper.id, b.look.id, b.order["id"]):
        assert str(foreign) not in text


def test_deleting_erases_the_person_and_keeps_anonymised_figures(shoppers, staff, django_capture_on_commit_callbacks):  # noqa: F811
    a, b = shoppers
    user_id, photo = a.shopper.user_id, a.look.photo.name
    assert default_storage.exists(photo)
    before = roi(staff)["privacy-spring"]["total"]
    assert before["revenue"] == "40.00" and before["scans"] == 1 and before["add_to_carts"] == 1
    # an ad scan that recognised nothing: the day's recognition rate counts it (1 of 2 recognised)
    Scan.objects.create(shopper=a.shopper, kind="ad", status="done", result_kind="look")
    rate_before = recognition(staff)
    # (over the days the fixture's scans fall on: its ad scan may be of yesterday)
    assert (sum(day["recognised"] for day in rate_before), sum(day["scans"] for day in rate_before)) == (1, 2)

    with django_capture_on_commit_callbacks(execute=True):
        response = a.delete("/api/v1/shoppers/me")
    assert response.status_code == 204

    # The person: gone, and the token with them.
    assert not Shopper.objects.filter(id=a.shopper.id).exists()
    assert not get_user_model().objects.filter(id=user_id).exists()
    assert not Token.objects.filter(user_id=user_id).exists()
    refused = a.get("/api/v1/shoppers/me")
    assert refused.status_code == 401 and refused["Content-Type"] == PROBLEM
    assert not default_storage.exists(photo)
    assert not Scan.objects.filter(id=a.look.id).exists() and not ScanItem.objects.filter(scan_id=a.look.id).exists()
    assert not Cart.objects.filter(shopper_id=a.shopper.id).exists()
    assert not CartEvent.objects.filter(shopper_id=a.shopper.id).exists()

    # The accounts: the order, its lines and attributions stay, held by the "deleted shopper".
    order = Order.objects.get(id=a.order["id"])
    assert order.shopper_id == DELETED_SHOPPER_ID and str(order.total) == "40.00"
    assert OrderLine.objects.filter(order=order).count() == 1
    assert OrderLineAttribution.objects.filter(line__order=order).count() == 1
    assert OrderCampaignAttribution.objects.filter(order=order).count() == 1
    # The ad scan's attribution stays, without the shopper; its scan is a bare row without a photo.
    touch = ScanAttribution.objects.get(scan_id=a.ad.id)
    assert touch.shopper_id is None and touch.campaign == a.campaign
    assert touch.erased_shopper is not None and str(touch.erased_shopper) != str(a.shopper.id)  # linked to no one
    bare = Scan.objects.get(id=a.ad.id)
    assert bare.shopper_id == DELETED_SHOPPER_ID and not bare.photo and bare.filters == {}
    after = roi(staff)["privacy-spring"]["total"]
    # a report of the past does not change: the erased person is still counted, as someone unknown
    for figure in ("revenue", "orders", "units", "campaign_orders", "campaign_revenue", "scans", "add_to_carts",
                   "unique_shoppers"):
        assert after[figure] == before[figure], figure
    assert recognition(staff) == rate_before  # it was 1 of 1 after: the unrecognised scan was deleted

    # The other shopper: untouched.
    assert b.get("/api/v1/shoppers/me").status_code == 200
    assert default_storage.exists(b.look.photo.name)
    assert b.get(f"/api/v1/orders/{b.order['id']}/").status_code == 200
    assert [s["id"] for s in b.get("/api/v1/scans/").json()["results"]] == [str(b.look.id)]


def test_erasing_a_shopper_erased_meanwhile_is_done_not_an_error(db):
    """Two erasures at once (a double tap on "delete my data", staff erasing as the app does): the one
    that waited for the other's lock finds nobody to erase and is done, not a 500."""
    from shop.shoppers.models import Shopper
    from shop.shoppers.services import shopper_delete, shopper_register

    shopper, _ = shopper_register(platform="ios")
    shopper_delete(shopper=shopper)
    shopper_delete(shopper=shopper)  # as the waiting request does, with the row it authenticated
    assert not Shopper.objects.filter(id=shopper.id).exists()


def test_staff_erase_a_shopper_in_admin_as_the_app_does_not_by_a_cascade(
    shoppers, staff, django_capture_on_commit_callbacks  # noqa: F811
):
    a, b = shoppers
    photo = a.look.photo.name
    # Django's own deletion (a cascade past the service) is not offered, nor through the shopper's user
    assert staff.get(f"/admin/shoppers/shopper/{a.shopper.id}/delete/").status_code == 403
    staff.post(f"/admin/auth/user/{a.shopper.user_id}/delete/", {"post": "yes"})
    assert Shopper.objects.filter(id=a.shopper.id).exists()
    page = staff.get(f"/admin/shoppers/shopper/{a.shopper.id}/change/")
    assert page.status_code == 200 and f"/admin/auth/user/{a.shopper.user_id}/" not in page.content.decode()
    users = staff.get("/admin/auth/user/").content.decode()
    assert "marketer" in users and a.shopper.user.username not in users

    chosen = {"action": "erase", "_selected_action": [str(a.shopper.id)]}
    confirm = staff.post("/admin/shoppers/shopper/", chosen)
    assert confirm.status_code == 200 and "Erase 1 shopper?" in confirm.content.decode()
    assert Shopper.objects.filter(id=a.shopper.id).exists()  # nothing happens before the confirmation
    with django_capture_on_commit_callbacks(execute=True):
        done = staff.post("/admin/shoppers/shopper/", {**chosen, "confirm": "yes"}, follow=True)
    assert "Erased 1 shoppers." in done.content.decode()
    assert not Shopper.objects.filter(id=a.shopper.id).exists() and not default_storage.exists(photo)
    touch = ScanAttribution.objects.get(scan_id=a.ad.id)  # the campaign's history stays, anonymised
    assert touch.shopper_id is None and Scan.objects.get(id=a.ad.id).shopper_id == DELETED_SHOPPER_ID
    assert Order.objects.get(id=a.order["id"]).shopper_id == DELETED_SHOPPER_ID
    assert b.get("/api/v1/shoppers/me").status_code == 200

    kept = staff.post("/admin/shoppers/shopper/", {"action": "erase", "_selected_action": [str(DELETED_SHOPPER_ID)],
                                                   "confirm": "yes"}, follow=True)
    assert "it is kept" in kept.content.decode() and Shopper.objects.filter(id=DELETED_SHOPPER_ID).exists()


def test_an_ad_scan_attributed_while_its_shopper_is_erased_keeps_its_attribution(transactional_db):
    """A worker finishing an ad scan (its scan locked) while the shopper is erased: the erasure waits
    for it and keeps the attribution, instead of a deadlock or a cascade that deletes it unseen."""
    from shop.campaigns.models import AdCreative, Campaign
    from shop.campaigns.services import scan_record_ad
    from vision.creatives import Match

    client = new_shopper_client()
    campaign, creative = make_campaign("erase-race", [make_variant().product])
    Campaign.objects.filter(id=campaign.id).update(status="active")
    AdCreative.objects.filter(id=creative.id).update(features=b"stored features")
    scan = Scan.objects.create(shopper=client.shopper, kind="ad", status="processing")
    locked, outcome = threading.Event(), []

    def worker() -> None:
        try:
            with transaction.atomic():
                Scan.objects.select_for_update().get(id=scan.id)  # as scan_record_ad begins
                locked.set()
                with connection.cursor() as cursor:  # until the erasure waits for this scan
                    for _ in range(200):
                        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                       "AND datname = current_database() AND query LIKE '%%scans_scan%%FOR NO KEY%%'")
                        if cursor.fetchone()[0]:
                            break
                        time.sleep(0.05)
                outcome.append(scan_record_ad(scan_id=scan.id, match=Match(creative.id, 0.9, 40, np.eye(3), 0.5),
                                              timings={}))
        except Exception as exc:  # a deadlock would be raised here or in the erasure
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    assert locked.wait(timeout=30)
    shopper_delete(shopper=client.shopper)
    thread.join(timeout=60)
    assert outcome == [True]
    touch = ScanAttribution.objects.get(scan_id=scan.id)
    assert touch.shopper_id is None and touch.campaign_id == campaign.id
    assert Scan.objects.get(id=scan.id).shopper_id == DELETED_SHOPPER_ID
    assert not Shopper.objects.filter(id=client.shopper.id).exists()


def test_a_scan_posted_while_its_shopper_is_erased_is_erased_too(transactional_db, caplog):
    """A write of the shopper's that commits after the erasure read the shopper's rows (here a scan,
    between the cascade's collection and the shopper's deletion) fails the erasure's commit; it erases
    again, and the late scan goes too."""
    from django.db.models.signals import pre_delete

    client = new_shopper_client()
    scan_with_photo(client)
    late: list = []

    def post_a_scan_meanwhile(sender, instance, **kwargs):
        if late:
            return

        def post() -> None:
            try:
                late.append(Scan.objects.create(shopper_id=instance.id, kind="look", status="pending").id)
            finally:
                connection.close()

        thread = threading.Thread(target=post)
        thread.start()
        thread.join(timeout=30)

    pre_delete.connect(post_a_scan_meanwhile, sender=Shopper)
    try:
        shopper_delete(shopper=client.shopper)
    finally:
        pre_delete.disconnect(post_a_scan_meanwhile, sender=Shopper)
    assert len(late) == 1 and "erasing again" in caplog.text
    assert not Shopper.objects.filter(id=client.shopper.id).exists()
    assert not Scan.objects.filter(id=late[0]).exists() and not Scan.objects.exists()


def test_the_deleted_shopper_cannot_sign_in_and_is_shared(db):
    first, second = new_shopper_client(), new_shopper_client()
    shopper_delete(shopper=first.shopper)
    shopper_delete(shopper=second.shopper)
    tombstone = Shopper.objects.get(id=DELETED_SHOPPER_ID)
    assert tombstone.platform == "web"
    assert not tombstone.user.is_active and not tombstone.user.has_usable_password()
    assert not Token.objects.filter(user=tombstone.user).exists()
    assert Shopper.objects.filter(id=DELETED_SHOPPER_ID).count() == 1
    with pytest.raises(ValueError):
        shopper_delete(shopper=tombstone)


def test_a_failed_deletion_deletes_no_files_and_no_rows(db, monkeypatch, django_capture_on_commit_callbacks):
    a = new_shopper_client()
    scan = scan_with_photo(a)

    def fail(*args, **kwargs):
        raise RuntimeError("database trouble")

    monkeypatch.setattr(get_user_model(), "delete", fail)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        shopper_delete(shopper=a.shopper)
    assert callbacks == []
    assert Scan.objects.filter(id=scan.id).exists() and default_storage.exists(scan.photo.name)
    default_storage.delete(scan.photo.name)


def test_deleting_on_s3_removes_photos_and_pending_uploads(db, s3_server, django_capture_on_commit_callbacks):
    with s3_storage(s3_server) as (s3, bucket):
        a, b = new_shopper_client(), new_shopper_client()
        a_scan, b_scan = scan_with_photo(a), scan_with_photo(b)
        # A direct upload A asked for and never turned into a scan, sent with the presigned POST.
        upload = a.post("/api/v1/uploads/").json()
        s3.put_object(Bucket=bucket, Key=upload["upload_key"], Body=photo_bytes())
        assert set(bucket_keys(s3, bucket, f"scans/{a.shopper.id}/")) == {a_scan.photo.name}
        assert bucket_keys(s3, bucket, f"uploads/{a.shopper.id}/") == [upload["upload_key"]]

        with django_capture_on_commit_callbacks(execute=True):
            assert a.delete("/api/v1/shoppers/me").status_code == 204

        assert bucket_keys(s3, bucket, f"scans/{a.shopper.id}/") == []
        assert bucket_keys(s3, bucket, f"uploads/{a.shopper.id}/") == []
        assert bucket_keys(s3, bucket) == [b_scan.photo.name]
        assert a.get("/api/v1/shoppers/me").status_code == 401


def test_deleting_while_s3_is_down_erases_now_and_deletes_the_photos_once_it_answers(
        db, s3_server, settings, monkeypatch, django_capture_on_commit_callbacks):
    """The files were deleted in the request after the commit: with S3 down the app got a 503 and a
    'retry', whose token was already gone (401), and nothing recorded which photos were still owed."""
    from botocore.exceptions import EndpointConnectionError
    from storages.backends.s3 import S3Storage

    from shop.core.models import PendingFileDeletion
    from shop.core.services import file_deletion_settle, pending_files_delete

    with s3_storage(s3_server) as (s3, bucket):
        a = new_shopper_client()
        photo = scan_with_photo(a).photo.name

        def down(*args, **kwargs):
            raise EndpointConnectionError(endpoint_url=s3_server["endpoint_url"])

        with monkeypatch.context() as outage:
            outage.setattr(S3Storage, "delete", down)
            outage.setattr(S3Storage, "listdir", down)
            with django_capture_on_commit_callbacks(execute=True):
                assert a.delete("/api/v1/shoppers/me").status_code == 204
        assert not Shopper.objects.filter(id=a.shopper.id).exists()
        assert bucket_keys(s3, bucket, f"scans/{a.shopper.id}/") == [photo]
        owed = PendingFileDeletion.objects.all()
        assert owed.exists() and "EndpointConnectionError" in owed.first().last_error

        # S3 answers again: beat's sweep deletes what is owed, and a photo an upload in flight wrote
        # into the erased shopper's folder after the erasure (its listing) goes with them.
        s3.put_object(Bucket=bucket, Key=f"scans/{a.shopper.id}/late.jpg", Body=photo_bytes())
        later = timezone.now() + file_deletion_settle() + timedelta(seconds=1)
        pending_files_delete(now=later)
        assert bucket_keys(s3, bucket, f"scans/{a.shopper.id}/") == []
        assert not PendingFileDeletion.objects.exists()


def test_a_photo_arriving_after_its_shopper_was_erased_stores_nothing(db):
    """A scan whose request authenticated before the erasure and stored its photo after: the photo was
    written under the erased shopper's folder, the scan row failed at the commit (a 500), and the file
    stayed for nobody."""
    from shop import vision_adapter
    from shop.scans.services import ShopperErased, scan_create

    client = new_shopper_client()
    stale = client.shopper  # what the request authenticated
    shopper_delete(shopper=Shopper.objects.get(id=stale.id))
    with pytest.raises(ShopperErased):
        scan_create(shopper=stale, decoded=vision_adapter.decode(photo_bytes()))
    folder = f"scans/{stale.id}/"
    assert not (default_storage.exists(folder) and default_storage.listdir(folder)[1])
    assert not Scan.objects.filter(shopper_id=stale.id).exists()


def test_an_order_paid_after_its_shopper_was_erased_keeps_its_campaign_attribution(db):
    """An order still pending payment at the erasure (the gateway's answer lost) is paid later by the
    sweep: attribution looked for the shopper's ad scans under the deleted-shopper row and found none,
    so its revenue never reached the ROI report."""
    from shop.carts.payments import PaymentResult
    from shop.carts.services import _order_open, order_settle
    from tests.carts.conftest import add

    client = new_shopper_client()
    tee = make_variant(price="30.00", stock=2)
    campaign, creative = make_campaign("erased-pending", [tee.product])
    ad_scan(client, creative, ago=timedelta(hours=1))
    assert add(client, tee).status_code == 201
    order, _ = _order_open(shopper=client.shopper, expected_total=None, expected_currency=None)
    shopper_delete(shopper=client.shopper)

    paid = order_settle(order=Order.objects.get(id=order.id), result=PaymentResult(ok=True, reference="gw_late"))
    assert paid.status == "paid" and paid.shopper_id == DELETED_SHOPPER_ID
    line = OrderLineAttribution.objects.get(line__order=paid)
    assert line.campaign_id == campaign.id and str(line.revenue) == "30.00"
    assert OrderCampaignAttribution.objects.filter(order=paid, campaign=campaign).exists()
