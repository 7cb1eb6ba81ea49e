from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Product, Variant
from shop.scans.models import Scan, ScanItem
from shop.scans.services import scan_photos_purge
from tests.scans.conftest import new_shopper_client, post_scan, street_photo_of


@pytest.fixture
def done_scan(demo_catalog, django_capture_on_commit_callbacks):
    client = new_shopper_client()
    product = Product.objects.get(handle="demo-sneaker-shoes-00")
    with django_capture_on_commit_callbacks(execute=True):
        scan_id = post_scan(client, street_photo_of(product, seed=8)).json()["id"]
    scan = client.get(f"/api/v1/scans/{scan_id}/").json()
    assert scan["status"] == "done"
    return client, scan, product


def refine(client, scan_id, **body):
    response = client.post(f"/api/v1/scans/{scan_id}/search", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_refining_by_a_box_searches_that_region(done_scan):
    client, scan, product = done_scan
    item = next(i for i in scan["items"] if product.id in [p["id"] for p in i["products"]] and not i["whole_image"])
    boxed = refine(client, scan["id"], box=item["box"], k=5)
    assert boxed["box"] == item["box"]
    assert product.id in [p["id"] for p in boxed["results"]]
    # The empty corner of the photo finds other things than the product.
    corner = refine(client, scan["id"], box=[0.0, 0.0, 0.08, 0.08], k=5)
    assert corner["results"] and [p["id"] for p in corner["results"]] != [p["id"] for p in boxed["results"]]


def test_refining_by_an_items_own_box_finds_what_the_scan_found(done_scan):
    """The box of an item the scan found is that item, masked as the scan saw it: the same best
    products with the same scores, not a plain crop whose background scored everything lower."""
    client, scan, _ = done_scan
    items = [i for i in scan["items"] if not i["whole_image"]]
    assert items
    for item in items:
        boxed = refine(client, scan["id"], box=item["box"], k=3)
        scanned = [(p["id"], p["score"]) for p in item["products"][:3]]
        assert [p["id"] for p in boxed["results"]] == [pid for pid, _ in scanned]
        for product, (_, score) in zip(boxed["results"], scanned):
            assert product["score"] == pytest.approx(score, abs=0.01)


def test_refining_by_colour_keeps_only_products_of_that_colour(done_scan):
    client, scan, _ = done_scan
    everything = refine(client, scan["id"], k=12)
    colours_before = {v["options"]["color"] for p in everything["results"] for v in p["variants"]}
    assert len(colours_before) > 1
    target = sorted(colours_before)[0]
    in_colour = refine(client, scan["id"], text=f"in {target} please", k=12)
    assert in_colour["text_used_as"] == "color_filter" and in_colour["colors"] == [target]
    assert in_colour["results"]
    for product in in_colour["results"]:
        assert target in {v["options"]["color"] for v in product["variants"]}
    by_filter = refine(client, scan["id"], filters={"color": [target]}, k=12)
    assert [p["id"] for p in by_filter["results"]] == [p["id"] for p in in_colour["results"]]


def test_refining_by_price_and_category(done_scan):
    client, scan, product = done_scan
    Variant.objects.filter(product=product).update(price="9.00")
    cheap = refine(client, scan["id"], filters={"price_max": "10", "category": [product.category_id]}, k=5)
    assert [p["id"] for p in cheap["results"]] == [product.id]
    assert refine(client, scan["id"], filters={"price_min": "100000"}, k=5)["results"] == []


def test_price_filters_are_in_one_currency(done_scan):
    """A catalog selling in euros and dollars: "under 10" needs its currency, and a product is kept
    only by a variant priced in that currency (its 9 USD is no 9 EUR)."""
    client, scan, product = done_scan
    Variant.objects.filter(product=product).update(price="9.00", currency="USD")
    other = Product.objects.exclude(pk=product.pk).filter(category=product.category).first()
    Variant.objects.filter(product=other).update(price="9.00")
    same_category = {"category": [product.category_id]}
    dollars = refine(client, scan["id"], filters={"price_max": "10", "currency": "usd", **same_category}, k=5)
    assert [p["id"] for p in dollars["results"]] == [product.id]
    euros = refine(client, scan["id"], filters={"price_max": "10", "currency": "EUR", **same_category}, k=5)
    assert [p["id"] for p in euros["results"]] == [other.id]
    for filters in ({"price_max": "10"}, {"price_min": "1", "currency": "JPY"}):
        response = client.post(f"/api/v1/scans/{scan['id']}/search", {"filters": filters}, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["errors"][0]["field"].endswith("currency")
        assert "EUR, USD" in response.json()["errors"][0]["detail"]


def test_no_confident_match_is_said_plainly(done_scan, settings):
    client, scan, _ = done_scan
    settings.SCAN_MIN_SCORE = {"*": 1.01}
    result = refine(client, scan["id"], k=3)
    assert result["confident"] is False and result["results"]


def test_bad_refinements_are_problems(done_scan):
    client, scan, _ = done_scan
    response = client.post(f"/api/v1/scans/{scan['id']}/search", {"box": [0.5, 0.5, 0.4, 0.9]}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "box"


def test_retention_deletes_old_photos_and_keeps_results(done_scan, settings):
    client, scan, _ = done_scan
    row = Scan.objects.get(id=scan["id"])
    name, storage = row.photo.name, row.photo.storage
    assert storage.exists(name)
    assert scan_photos_purge() == 0  # not old yet
    Scan.objects.filter(id=row.id).update(created_at=timezone.now() - timedelta(days=settings.SCAN_RETENTION_DAYS + 1))
    assert scan_photos_purge() == 1
    assert not storage.exists(name)
    body = client.get(f"/api/v1/scans/{scan['id']}/").json()
    assert body["photo_url"] is None and body["photo_deleted_at"]
    assert body["items"] == scan["items"]
    assert ScanItem.objects.filter(scan_id=scan["id"]).count() == len(scan["items"])
    response = client.post(f"/api/v1/scans/{scan['id']}/search", {}, format="json")
    assert response.status_code == 410 and response.json()["code"] == "photo_deleted"


def test_a_photo_gone_from_storage_is_410_and_one_undeletable_file_does_not_stop_the_purge(
        done_scan, settings, monkeypatch):
    """The bucket's lifecycle rule can expire a photo before the hourly purge clears its row: refining
    or fetching it is a 410, not a 500. A file the storage will not delete is tried again next time,
    and the other old photos are purged."""
    from django.core.files.base import ContentFile

    client, scan, _ = done_scan
    row = Scan.objects.get(id=scan["id"])
    row.photo.storage.delete(row.photo.name)
    for response in (client.post(f"/api/v1/scans/{scan['id']}/search", {}, format="json"),
                     client.get(f"/api/v1/scans/{scan['id']}/photo")):
        assert response.status_code == 410 and response.json()["code"] == "photo_deleted"

    stuck = Scan.objects.create(shopper=row.shopper, kind="look", status="done", result_kind="look")
    stuck.photo.save("stuck.jpg", ContentFile(b"jpeg"), save=True)
    old = timezone.now() - timedelta(days=settings.SCAN_RETENTION_DAYS + 1)
    Scan.objects.filter(id=stuck.id).update(created_at=old - timedelta(hours=1))  # the oldest, first in line
    Scan.objects.filter(id=row.id).update(created_at=old)
    from django.core.files.storage import storages

    storage_class = type(storages["default"])
    real_delete = storage_class.delete

    def locked(storage, name):
        if name == stuck.photo.name:
            raise PermissionError("object lock")
        return real_delete(storage, name)

    monkeypatch.setattr(storage_class, "delete", locked)
    assert scan_photos_purge() == 1
    assert Scan.objects.get(id=row.id).photo_deleted_at and Scan.objects.get(id=stuck.id).photo
    monkeypatch.setattr(storage_class, "delete", real_delete)
    assert scan_photos_purge() == 1 and not Scan.objects.get(id=stuck.id).photo


def test_more_like_this(demo_catalog):
    client = new_shopper_client()
    product = Product.objects.get(handle="demo-dress-women-00")
    body = client.get(f"/api/v1/products/{product.id}/similar/?k=5").json()
    assert body["model_key"] == "color-texture-v1"
    ids = [p["id"] for p in body["results"]]
    assert len(ids) == 5 and product.id not in ids
    assert client.get("/api/v1/products/999999/similar/").status_code == 404
    assert client.get(f"/api/v1/products/{product.id}/similar/?k=500").status_code == 400


def test_stale_scans_are_queued_again_and_finish_once(demo_catalog, settings):
    from shop.scans.tasks import requeue_stale_scans

    client = new_shopper_client()
    lost = post_scan(client, street_photo_of(Product.objects.first())).json()["id"]  # its message never ran
    assert requeue_stale_scans() == 0  # not stale yet
    Scan.objects.filter(id=lost).update(created_at=timezone.now() - timedelta(seconds=settings.SCAN_REQUEUE_AFTER_SECONDS + 1))
    assert requeue_stale_scans() == 1  # eager here: the task runs at once
    scan = Scan.objects.get(id=lost)
    assert scan.status == "done" and scan.attempts == 1
    assert requeue_stale_scans() == 0


def test_a_stale_scan_is_sent_again_once_a_period_not_every_minute_of_a_backlog(demo_catalog, settings):
    """While the vision workers are down or behind, beat runs every minute: each run used to add one
    more copy of every stale scan to the queue."""
    from shop.scans.tasks import process_scan, requeue_stale_scans

    client = new_shopper_client()
    waiting = post_scan(client, street_photo_of(Product.objects.first())).json()["id"]
    period = timedelta(seconds=settings.SCAN_REQUEUE_AFTER_SECONDS)
    now = timezone.now()
    Scan.objects.filter(id=waiting).update(status=Scan.Status.PENDING, created_at=now - period * 3)
    sent = []

    def broker_down(scan_id):
        raise ConnectionError("broker restarting")

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(process_scan, "delay", broker_down)
        with pytest.raises(ConnectionError):
            requeue_stale_scans()
        patched.setattr(process_scan, "delay", sent.append)  # the broker is back, the workers still down
        assert requeue_stale_scans() == 1 and sent == [waiting]  # not marked sent while it was not
        assert requeue_stale_scans() == 0  # beat's next runs within the period send nothing more
        Scan.objects.filter(id=waiting).update(requeued_at=timezone.now() - period - timedelta(seconds=1))
        assert requeue_stale_scans() == 1 and sent == [waiting, waiting]  # a period later: once more
