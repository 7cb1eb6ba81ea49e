import io
from datetime import date, timedelta

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from PIL import Image, ImageDraw

from catalog.models import Product
from shop import vision_adapter
from shop.campaigns import recognition
from shop.campaigns.models import AdCreative, AdCreativeProduct, Campaign, ScanAttribution
from tests.campaigns.fixtures import TEMPLATE_SEED, register_creative, scan_recognising
from tests.scans.conftest import jpeg, new_shopper_client, post_scan, street_photo_of
from vision import adgen


def test_a_photographed_creative_is_recognised_and_attributed(campaign_with_creatives, django_capture_on_commit_callbacks):
    campaign, _, creatives = campaign_with_creatives
    creative, page = creatives[2]
    photo, _ = adgen.photograph(page.image, seed=5, difficulty="easy")
    shopper = new_shopper_client()
    with django_capture_on_commit_callbacks(execute=True):
        scan_id = post_scan(shopper, jpeg(photo)).json()["id"]
    body = shopper.get(f"/api/v1/scans/{scan_id}/").json()
    assert body["status"] == "done" and body["result_kind"] == "ad", body
    assert body["ad"]["campaign"]["code"] == "autumn-print"
    assert body["ad"]["creative"] == {"id": creative.id, "name": "autumn-2", "metadata": {"headline": "autumn-2"}}
    promoted = list(creative.placements.values_list("product_id", flat=True))
    assert [p["id"] for p in body["ad"]["products"]] == promoted
    for card in body["ad"]["products"]:
        x0, y0, x1, y1 = card["box"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    assert body["items"] == [] and "ad_match" in body["timings"]
    attribution = ScanAttribution.objects.get(scan_id=scan_id)
    assert (attribution.campaign, attribution.creative, attribution.shopper) == (campaign, creative, shopper.shopper)


def test_a_photo_with_no_ad_falls_through_to_shop_the_look(campaign_with_creatives, django_capture_on_commit_callbacks):
    shopper = new_shopper_client()
    with django_capture_on_commit_callbacks(execute=True):
        auto_id = post_scan(shopper, street_photo_of(Product.objects.first())).json()["id"]
        ad_only_id = post_scan(shopper, street_photo_of(Product.objects.first(), seed=9), fields={"kind": "ad"}).json()["id"]
    auto = shopper.get(f"/api/v1/scans/{auto_id}/").json()
    assert auto["result_kind"] == "look" and auto["ad"] is None and auto["items"]
    ad_only = shopper.get(f"/api/v1/scans/{ad_only_id}/").json()
    assert ad_only["status"] == "done" and ad_only["result_kind"] == "none" and ad_only["items"] == []
    assert not ScanAttribution.objects.exists()


def test_a_creative_with_unreadable_features_is_left_out_and_the_others_still_recognised(
    campaign_with_creatives, django_capture_on_commit_callbacks
):
    _, _, creatives = campaign_with_creatives
    damaged, _ = creatives[0]
    AdCreative.objects.filter(pk=damaged.pk).update(features=b"not a features archive")
    recognition.reset()  # a worker process that starts now
    creative, page = creatives[1]
    body = scan_recognising(new_shopper_client(), page, django_capture_on_commit_callbacks, seed=6)
    assert body["status"] == "done" and body["ad"]["creative"]["id"] == creative.id, body
    with recognition.using_creative_index() as index:
        assert damaged.pk not in index and creative.pk in index


def test_a_fault_of_ad_recognition_still_answers_an_auto_scan_with_the_look(
    campaign_with_creatives, django_capture_on_commit_callbacks, monkeypatch
):
    from vision.creatives import CreativeIndex

    def broken(self, photo):
        raise RuntimeError("the descriptor index is broken")

    monkeypatch.setattr(CreativeIndex, "match", broken)
    shopper = new_shopper_client()
    with django_capture_on_commit_callbacks(execute=True):
        auto_id = post_scan(shopper, street_photo_of(Product.objects.first())).json()["id"]
        ad_only_id = post_scan(shopper, street_photo_of(Product.objects.first(), seed=9), fields={"kind": "ad"}).json()["id"]
    auto = shopper.get(f"/api/v1/scans/{auto_id}/").json()
    assert auto["status"] == "done" and auto["result_kind"] == "look" and auto["items"], auto
    ad_only = shopper.get(f"/api/v1/scans/{ad_only_id}/").json()
    assert ad_only["status"] == "failed", ad_only  # an ad-only scan has nothing else to answer with


def test_a_recognised_creative_keeps_its_scans_it_is_set_inactive_not_deleted(
    campaign_with_creatives, staff, django_capture_on_commit_callbacks
):
    campaign, _, creatives = campaign_with_creatives
    creative, page = creatives[2]
    shopper = new_shopper_client()
    scan_id = scan_recognising(shopper, page, django_capture_on_commit_callbacks)["id"]
    assert shopper.get(f"/api/v1/scans/{scan_id}/").json()["result_kind"] == "ad"
    response = staff.post(f"/admin/campaigns/adcreative/{creative.pk}/delete/", {"post": "yes"})
    assert response.status_code == 200 and "protected" in response.content.decode().lower()
    assert AdCreative.objects.filter(pk=creative.pk).exists() and ScanAttribution.objects.count() == 1
    AdCreative.objects.filter(pk=creative.pk).update(status=AdCreative.Status.INACTIVE)
    assert scan_recognising(new_shopper_client(), page, django_capture_on_commit_callbacks, seed=6)["result_kind"] != "ad"
    # deleting the whole campaign deletes its history with it, as the marketer asked
    campaign.delete()
    assert not ScanAttribution.objects.exists()
    # the shopper's scan stays an ad scan, with no campaign left to show (README: "ad": null)
    answer = shopper.get(f"/api/v1/scans/{scan_id}/").json()
    assert answer["status"] == "done" and answer["result_kind"] == "ad" and answer["ad"] is None, answer


def _deleted(creative: AdCreative) -> int:
    return AdCreative.objects.order_by("-id").first().id + 1000


def _set_inactive(creative: AdCreative) -> int:
    AdCreative.objects.filter(pk=creative.pk).update(status=AdCreative.Status.INACTIVE)
    return creative.pk


def _campaign_made_a_draft(creative: AdCreative) -> int:
    Campaign.objects.filter(pk=creative.campaign_id).update(status=Campaign.Status.DRAFT)
    return creative.pk


@pytest.mark.parametrize("since", [_deleted, _set_inactive, _campaign_made_a_draft], ids=lambda f: f.__name__[1:])
def test_a_creative_no_longer_recognised_since_its_photo_was_matched_answers_with_the_look(
    since, campaign_with_creatives, django_capture_on_commit_callbacks, monkeypatch
):
    from vision.creatives import CreativeIndex, Match

    matched = since(campaign_with_creatives[2][1][0])
    monkeypatch.setattr(CreativeIndex, "match", lambda self, photo: Match(matched, 0.9, 40, np.eye(3), 0.5))
    shopper = new_shopper_client()
    with django_capture_on_commit_callbacks(execute=True):
        scan_id = post_scan(shopper, street_photo_of(Product.objects.first())).json()["id"]
    body = shopper.get(f"/api/v1/scans/{scan_id}/").json()
    assert body["status"] == "done" and body["result_kind"] == "look" and body["items"], body
    assert not ScanAttribution.objects.exists()


def test_a_campaign_out_of_draft_is_recognised_though_as_many_creatives_left(
    campaign_with_creatives, django_capture_on_commit_callbacks
):
    """A worker's index follows campaigns' status even when the count of recognisable creatives and
    their last update stay the same: one creative deleted, a draft campaign's older one activated."""
    campaign, template, creatives = campaign_with_creatives
    draft = Campaign.objects.create(name="Winter print", code="winter-print", channel="poster",
                                    starts_on=date(2026, 11, 1))
    winter_page = adgen.make_creative(template, seed=7, detail="rich")
    winter = register_creative(draft, winter_page, "winter-0", list(Product.objects.order_by("id")[:2]))
    kept, _ = creatives[1]
    kept.metadata = {"headline": "autumn-1, edited"}
    kept.save()  # the newest creative update is now one that stays
    with recognition.using_creative_index() as index:
        assert winter.pk not in index and len(index) == 4
    creatives[3][0].delete()
    draft.status = Campaign.Status.ACTIVE
    draft.save()
    body = scan_recognising(new_shopper_client(), winter_page, django_capture_on_commit_callbacks)
    assert body["result_kind"] == "ad" and body["ad"]["campaign"]["code"] == "winter-print", body
    with recognition.using_creative_index() as index:
        assert winter.pk in index and creatives[3][0].pk not in index and len(index) == 4
    campaign.status = Campaign.Status.DRAFT
    campaign.save()
    with recognition.using_creative_index() as index:
        assert len(index) == 1


def test_a_creative_changed_under_an_earlier_time_stamp_is_still_reloaded(
    campaign_with_creatives, django_capture_on_commit_callbacks
):
    """A worker notices a change whatever its time stamp says: a save stamped before one it already saw
    (clocks of two web hosts apart, a slow admin save committing after a quicker one) still reaches it."""
    _, template, creatives = campaign_with_creatives
    newest, _ = creatives[1]
    newest.metadata = {"headline": "autumn-1, edited"}
    newest.save()  # the last update of all, which the worker sees
    with recognition.using_creative_index() as index:
        assert len(index) == 4
    replaced, _ = creatives[0]
    new_page = adgen.make_creative(template, seed=11, detail="rich")
    stamped = replaced.updated_at + timedelta(milliseconds=1)  # later than its own, earlier than the newest
    assert stamped < AdCreative.objects.get(pk=newest.pk).updated_at
    AdCreative.objects.filter(pk=replaced.pk).update(
        features=vision_adapter.extract_features(new_page.image).to_bytes(), updated_at=stamped)
    body = scan_recognising(new_shopper_client(), new_page, django_capture_on_commit_callbacks)
    assert body["result_kind"] == "ad" and body["ad"]["creative"]["id"] == replaced.pk, body


def test_a_products_position_is_four_fractions_of_the_page_or_none(campaign_with_creatives):
    creative = campaign_with_creatives[2][0][0]
    product = Product.objects.exclude(id__in=creative.placements.values("product_id")).first()
    for box in [(120, 300, 400, 700), (0.6, 0.1, 0.2, 0.5), (0.1, 0.1, 0.5, None), (-0.1, 0, 0.5, 0.5)]:
        placement = AdCreativeProduct(creative=creative, product=product, position=9,
                                      **dict(zip(("x0", "y0", "x1", "y1"), box, strict=True)))
        with pytest.raises(ValidationError, match="four fractions of the artwork"):
            placement.full_clean()
        with pytest.raises(IntegrityError), transaction.atomic():
            placement.save()
    AdCreativeProduct(creative=creative, product=product, position=9).full_clean()
    AdCreativeProduct(creative=creative, product=product, position=9, x0=0, y0=0.2, x1=1, y1=0.5).full_clean()


def test_an_unregistered_page_in_the_same_template_is_not_accepted(
    campaign_with_creatives, django_capture_on_commit_callbacks
):
    _, template, _ = campaign_with_creatives
    shopper = new_shopper_client()
    for seed in range(3):
        page = adgen.make_unregistered_page(template, seed=seed, detail="rich")
        photo, _ = adgen.photograph(page, seed=seed, difficulty="easy")
        with django_capture_on_commit_callbacks(execute=True):
            scan_id = post_scan(shopper, jpeg(photo), fields={"kind": "ad"}).json()["id"]
        assert shopper.get(f"/api/v1/scans/{scan_id}/").json()["result_kind"] == "none"
    assert not ScanAttribution.objects.exists()


def _admin_add_creative(client, campaign, picture: Image.Image, name: str, filename: str | None = None):
    upload = SimpleUploadedFile(filename or f"{name}.jpg", jpeg(picture), content_type="image/jpeg")
    return client.post(
        "/admin/campaigns/adcreative/add/",
        {
            "campaign": campaign.pk, "name": name, "image": upload, "status": "active", "metadata": "{}",
            "placements-TOTAL_FORMS": "0", "placements-INITIAL_FORMS": "0",
        },  # fmt: skip
        follow=True,
    )


def test_an_uploaded_creative_is_stored_under_the_suffix_of_its_content(campaign_with_creatives, staff):
    # The storage serves a file by its suffix: markup in a JPEG's comment must never be served as a page.
    campaign, template, _ = campaign_with_creatives
    page = adgen.make_creative(template, seed=7, detail="rich")
    response = _admin_add_creative(staff, campaign, page.image, "renamed", filename="artwork.html")
    assert response.status_code == 200
    stored = AdCreative.objects.get(name="renamed").image.name
    assert stored.startswith("creatives/") and stored.endswith(".jpg") and "artwork" not in stored


def test_an_artwork_over_the_upload_limit_is_refused_before_it_is_read(campaign_with_creatives, staff, settings):
    campaign, template, _ = campaign_with_creatives
    settings.UPLOAD_MAX_BYTES = 10_000
    page = adgen.make_creative(template, seed=8, detail="rich")
    response = _admin_add_creative(staff, campaign, page.image, "too-big")
    assert response.status_code == 200 and "the limit is 10000 bytes" in response.content.decode()
    assert not AdCreative.objects.filter(name="too-big").exists()


def test_uploading_a_near_duplicate_creative_warns(campaign_with_creatives, staff):
    campaign, _, creatives = campaign_with_creatives
    _, page = creatives[1]
    edited = page.image.copy()
    ImageDraw.Draw(edited).rectangle((20, edited.height - 60, 200, edited.height - 20), fill=(255, 255, 255))
    response = _admin_add_creative(staff, campaign, edited, "autumn-1-reprint")
    page_text = response.content.decode()
    assert "near-duplicate of autumn-1" in page_text
    assert AdCreative.objects.get(name="autumn-1-reprint").duplicate_of[0][0] == creatives[1][0].id
    # An unrelated creative of the same template gets no such warning.
    other = adgen.make_creative(adgen.make_template(TEMPLATE_SEED), seed=40, detail="rich").image
    assert "near-duplicate" not in _admin_add_creative(staff, campaign, other, "autumn-40").content.decode()


def test_past_a_web_sized_index_the_near_duplicate_check_is_made_by_a_vision_worker(
        campaign_with_creatives, staff, settings, django_capture_on_commit_callbacks):
    """A web process would otherwise hold the whole creative index (1.4 GiB at 10,000 creatives) for
    this check: past CREATIVE_DUPLICATE_CHECK_IN_WEB the worker makes it (run eagerly here) and the
    creatives list shows what it found."""
    from shop.campaigns import recognition

    settings.CREATIVE_DUPLICATE_CHECK_IN_WEB = 2  # the fixture has 4
    campaign, _, creatives = campaign_with_creatives
    _, page = creatives[1]
    edited = page.image.copy()
    ImageDraw.Draw(edited).rectangle((20, edited.height - 60, 200, edited.height - 20), fill=(255, 255, 255))
    recognition.reset()  # a fresh web process
    with django_capture_on_commit_callbacks(execute=True):  # the worker's task runs at the commit
        response = _admin_add_creative(staff, campaign, edited, "autumn-1-reprint")
        assert recognition.indexed_creatives() == 0  # the web process loaded no index
    assert "a vision worker checks it for near-duplicates" in response.content.decode()
    reprint = AdCreative.objects.get(name="autumn-1-reprint")
    assert reprint.duplicate_of[0][0] == creatives[1][0].id
    assert f"#{creatives[1][0].id} (" in staff.get("/admin/campaigns/adcreative/").content.decode()


def test_a_lost_near_duplicate_check_says_so_and_is_sent_again_by_beat(
        campaign_with_creatives, staff, settings, monkeypatch, django_capture_on_commit_callbacks):
    """The broker down at the save: the check was never made and the list showed "—", as for a creative
    checked and found distinct. It says "not checked yet", and beat's sweep sends the check again."""
    from datetime import timedelta

    from shop.campaigns import recognition
    from shop.campaigns.tasks import check_creative_duplicates, recheck_creative_duplicates

    settings.CREATIVE_DUPLICATE_CHECK_IN_WEB = 2
    campaign, _, creatives = campaign_with_creatives
    edited = creatives[1][1].image.copy()
    ImageDraw.Draw(edited).rectangle((20, edited.height - 60, 200, edited.height - 20), fill=(255, 255, 255))
    recognition.reset()

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(check_creative_duplicates, "delay", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            assert _admin_add_creative(staff, campaign, edited, "autumn-1-reprint").status_code == 200  # followed
    reprint = AdCreative.objects.get(name="autumn-1-reprint")
    assert reprint.duplicate_of is None
    assert "not checked yet" in staff.get("/admin/campaigns/adcreative/").content.decode()

    assert recheck_creative_duplicates() == 0  # not yet: its message may only be behind others
    AdCreative.objects.filter(pk=reprint.pk).update(updated_at=reprint.updated_at - timedelta(minutes=11))
    assert recheck_creative_duplicates() == 1  # the check runs (eagerly here)
    assert AdCreative.objects.get(pk=reprint.pk).duplicate_of[0][0] == creatives[1][0].id
    assert recheck_creative_duplicates() == 0


def _admin_change_artwork(client, creative: AdCreative, picture: Image.Image):
    upload = SimpleUploadedFile("revised.jpg", jpeg(picture), content_type="image/jpeg")
    return client.post(
        f"/admin/campaigns/adcreative/{creative.pk}/change/",
        {
            "campaign": creative.campaign_id, "name": creative.name, "image": upload, "status": "active",
            "metadata": "{}", "placements-TOTAL_FORMS": "0", "placements-INITIAL_FORMS": "0",
        },  # fmt: skip
        follow=True,
    )


def test_the_artwork_of_a_recognised_creative_cannot_be_replaced(
    campaign_with_creatives, staff, django_capture_on_commit_callbacks
):
    """Its scans' answers place its products on their photos through poses of this artwork."""
    _, template, creatives = campaign_with_creatives
    scanned, page = creatives[2]
    assert scan_recognising(new_shopper_client(), page, django_capture_on_commit_callbacks)["result_kind"] == "ad"
    before = AdCreative.objects.get(pk=scanned.pk)
    revised = adgen.make_creative(template, seed=21, detail="rich").image
    response = _admin_change_artwork(staff, scanned, revised)
    assert "was recognised in 1 scans" in response.content.decode()
    after = AdCreative.objects.get(pk=scanned.pk)
    assert (after.image.name, bytes(after.features)) == (before.image.name, bytes(before.features))
    unscanned = creatives[0][0]
    assert "was recognised in" not in _admin_change_artwork(staff, unscanned, revised).content.decode()
    assert AdCreative.objects.get(pk=unscanned.pk).image.name != unscanned.image.name


def test_artwork_files_follow_their_creative(campaign_with_creatives, staff, django_capture_on_commit_callbacks):
    """A replaced artwork, a deleted creative and a deleted campaign's creatives leave no file in storage."""
    from django.core.files.storage import default_storage

    campaign, template, creatives = campaign_with_creatives
    replaced = creatives[0][0]
    old_name = replaced.image.name
    with django_capture_on_commit_callbacks(execute=True):
        _admin_change_artwork(staff, replaced, adgen.make_creative(template, seed=22, detail="rich").image)
    new_name = AdCreative.objects.get(pk=replaced.pk).image.name
    assert new_name != old_name and default_storage.exists(new_name) and not default_storage.exists(old_name)

    deleted = creatives[1][0]
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(f"/admin/campaigns/adcreative/{deleted.pk}/delete/", {"post": "yes"})
    assert not AdCreative.objects.filter(pk=deleted.pk).exists() and not default_storage.exists(deleted.image.name)

    names = list(AdCreative.objects.filter(campaign=campaign).values_list("image", flat=True))
    assert names and all(default_storage.exists(name) for name in names)
    with django_capture_on_commit_callbacks(execute=True):
        campaign.delete()
    assert not any(default_storage.exists(name) for name in names)


def test_reading_an_ad_scan_does_not_read_the_creatives_features(
    campaign_with_creatives, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    shopper = new_shopper_client()
    photo, _ = adgen.photograph(campaign_with_creatives[2][1][1].image, seed=5, difficulty="easy")
    with django_capture_on_commit_callbacks(execute=True):
        scan_id = post_scan(shopper, jpeg(photo)).json()["id"]
    with CaptureQueriesContext(connection) as queries:
        body = shopper.get(f"/api/v1/scans/{scan_id}/").json()
    assert body["result_kind"] == "ad" and body["ad"]["products"], body
    assert not [q["sql"] for q in queries.captured_queries if '"campaigns_adcreative"."features"' in q["sql"]]


def test_a_flat_featureless_creative_rates_lower_than_a_detailed_one(campaign_with_creatives, staff):
    campaign, _, creatives = campaign_with_creatives
    flat = Image.new("RGB", (720, 1000), (236, 230, 220))
    ImageDraw.Draw(flat).rectangle((300, 450, 420, 550), fill=(200, 40, 40))
    response = _admin_add_creative(staff, campaign, flat, "flat")
    flat_creative = AdCreative.objects.get(name="flat")
    detailed = creatives[0][0]
    assert flat_creative.rating < detailed.rating
    assert flat_creative.rating_details["advice"]
    assert "recognisability" in response.content.decode()
    listing = staff.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "★" in listing and "autumn-0" in listing


def test_admin_lists_count_creatives_and_scans_without_reading_features(
    campaign_with_creatives, staff, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    campaign, _, creatives = campaign_with_creatives
    for seed in (5, 6):
        assert scan_recognising(new_shopper_client(), creatives[2][1], django_capture_on_commit_callbacks,
                                 seed=seed)["result_kind"] == "ad"
    pages = ("/admin/campaigns/campaign/", f"/admin/campaigns/campaign/{campaign.pk}/change/",
             "/admin/campaigns/adcreative/", "/admin/campaigns/scanattribution/")
    with CaptureQueriesContext(connection) as queries:
        responses = [staff.get(page) for page in pages]
    assert all(response.status_code == 200 for response in responses)
    # the campaign's 4 creatives and 2 scans, counted apart (a join of both would count 4 x 2)
    row = responses[0].content.decode().split('<td class="field-code">autumn-print</td>')[1].split("</tr>")[0]
    assert '<td class="field-creative_count">4</td>' in row and '<td class="field-scan_count">2</td>' in row
    assert not [q["sql"] for q in queries.captured_queries if '"campaigns_adcreative"."features"' in q["sql"]]


def first_format(data: bytes) -> bytes:
    """Features as the first format stored them: no keypoint frames."""
    from vision.creatives import CreativeFeatures

    stored = CreativeFeatures.from_bytes(bytes(data))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, format=np.array("creative-features"), version=np.array(1, np.int32),
                        keypoints=stored.keypoints, descriptors=stored.descriptors,
                        image_size=np.array(stored.image_size, np.int32),
                        pixel_scale=np.array(stored.pixel_scale, np.float32))
    return buffer.getvalue()


def test_admin_shows_outdated_features_and_extracts_them_again(campaign_with_creatives, staff):
    from vision.creatives import CreativeFeatures

    _, _, creatives = campaign_with_creatives
    old = creatives[0][0]
    AdCreative.objects.filter(pk=old.pk).update(features=first_format(old.features))
    page = staff.get(f"/admin/campaigns/adcreative/{old.pk}/change/").content.decode()
    assert "older format, without keypoint frames" in page
    response = staff.post("/admin/campaigns/adcreative/", {
        "action": "extract_features_again", "_selected_action": [old.pk]}, follow=True)
    assert "Features extracted again for 1 creatives." in response.content.decode()
    assert CreativeFeatures.from_bytes(bytes(AdCreative.objects.get(pk=old.pk).features)).has_frames
    page = staff.get(f"/admin/campaigns/adcreative/{old.pk}/change/").content.decode()
    assert "features with keypoint frames" in page and "older format" not in page


def test_extracting_features_again_for_many_creatives_goes_to_a_worker(campaign_with_creatives, staff, monkeypatch):
    """Each takes a few hundred ms: a large selection would run past the web server's timeout, so it is
    queued for a vision worker (run eagerly here) and the page answers at once."""
    import shop.campaigns.admin as campaigns_admin
    from vision.creatives import CreativeFeatures

    monkeypatch.setattr(campaigns_admin, "EXTRACT_IN_REQUEST", 1)
    _, _, creatives = campaign_with_creatives
    chosen = [creatives[0][0], creatives[1][0]]
    for creative in chosen:
        AdCreative.objects.filter(pk=creative.pk).update(features=first_format(creative.features))
    response = staff.post("/admin/campaigns/adcreative/", {
        "action": "extract_features_again", "_selected_action": [c.pk for c in chosen]}, follow=True)
    assert "2 creatives queued: a vision worker extracts their features again" in response.content.decode()
    assert all(CreativeFeatures.from_bytes(bytes(AdCreative.objects.get(pk=c.pk).features)).has_frames for c in chosen)


def test_a_creative_deleted_while_its_worker_extracts_features_again_is_passed_over(campaign_with_creatives, monkeypatch):
    """The task read its batch, a marketer deleted one creative, and its save raised "did not affect
    any rows": the rest of the batch was never extracted again."""
    import shop.campaigns.services as services
    from shop.campaigns.tasks import refresh_creatives_features
    from vision.creatives import CreativeFeatures

    _, _, creatives = campaign_with_creatives
    gone, kept = creatives[0][0], creatives[1][0]
    for creative in (gone, kept):
        AdCreative.objects.filter(pk=creative.pk).update(features=first_format(creative.features))
    extract = services.ad_creative_extract

    def extract_while_deleted(*, creative):
        extract(creative=creative)
        if creative.pk == gone.pk:
            AdCreative.objects.filter(pk=gone.pk).delete()

    monkeypatch.setattr(services, "ad_creative_extract", extract_while_deleted)
    assert refresh_creatives_features([gone.pk, kept.pk]) == 1
    assert CreativeFeatures.from_bytes(bytes(AdCreative.objects.get(pk=kept.pk).features)).has_frames
    assert not AdCreative.objects.filter(pk=gone.pk).exists()


def test_extracting_features_again_reports_an_unreadable_artwork_and_goes_on(campaign_with_creatives, staff):
    from django.core.files.storage import default_storage

    _, _, creatives = campaign_with_creatives
    broken, fine = creatives[0][0], creatives[1][0]
    default_storage.delete(broken.image.name)
    assert default_storage.save(broken.image.name, ContentFile(b"not a picture")) == broken.image.name
    response = staff.post("/admin/campaigns/adcreative/", {
        "action": "extract_features_again", "_selected_action": [broken.pk, fine.pk]}, follow=True)
    page = response.content.decode()
    assert response.status_code == 200 and "Features extracted again for 1 creatives." in page
    assert "Not extracted: autumn-0 (" in page
    assert bytes(AdCreative.objects.get(pk=broken.pk).features) == bytes(broken.features)  # what it had is kept


def test_extracting_features_again_reports_an_artwork_the_storage_refuses_and_goes_on(
        campaign_with_creatives, staff, monkeypatch):
    """S3 refusing one artwork (AccessDenied) is reported on that creative; the others are extracted."""
    from botocore.exceptions import ClientError
    from django.core.files.storage import storages

    _, _, creatives = campaign_with_creatives
    refused, fine = creatives[0][0], creatives[1][0]
    storage_class = type(storages["default"])
    real_open = storage_class.open

    def s3_open(storage, name, mode="rb"):
        if name == refused.image.name:
            raise ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
                              "GetObject")
        return real_open(storage, name, mode)

    monkeypatch.setattr(storage_class, "open", s3_open)
    response = staff.post("/admin/campaigns/adcreative/", {
        "action": "extract_features_again", "_selected_action": [refused.pk, fine.pk]}, follow=True)
    page = response.content.decode()
    assert response.status_code == 200 and "Features extracted again for 1 creatives." in page
    assert "Not extracted: autumn-0 (" in page and "AccessDenied" in page


def test_refresh_creative_features_upgrades_features_stored_by_the_first_format(campaign_with_creatives):
    """Creatives whose features were stored before keypoint frames were (format 1) are matched without
    the look in place; the command extracts theirs again from the artwork, and leaves the others be."""
    from django.core.management import call_command

    from shop.campaigns.selectors import creatives_with_outdated_features
    from vision.creatives import CreativeFeatures

    _, _, creatives = campaign_with_creatives
    old, kept = creatives[0][0], creatives[1][0]
    stored = CreativeFeatures.from_bytes(bytes(old.features))
    AdCreative.objects.filter(pk=old.pk).update(features=first_format(old.features))
    assert not CreativeFeatures.from_bytes(bytes(AdCreative.objects.get(pk=old.pk).features)).has_frames
    assert creatives_with_outdated_features() == [old.pk]
    kept_updated = AdCreative.objects.get(pk=kept.pk).updated_at
    out = io.StringIO()
    call_command("refresh_creative_features", stdout=out, verbosity=0)
    assert "1 creatives' features extracted again, 0 failed" in out.getvalue()
    refreshed = CreativeFeatures.from_bytes(bytes(AdCreative.objects.get(pk=old.pk).features))
    assert refreshed.has_frames and len(refreshed) == len(stored)
    np.testing.assert_array_equal(refreshed.descriptors, stored.descriptors)
    assert creatives_with_outdated_features() == []
    assert AdCreative.objects.get(pk=kept.pk).updated_at == kept_updated
