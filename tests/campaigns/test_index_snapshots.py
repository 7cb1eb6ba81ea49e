"""Creative index snapshots (shop.campaigns.recognition): a fresh worker loads the learnt index instead
of comparing every creative with its neighbours inside its first scans, then catches up with what
changed; a snapshot it may not trust is passed over, never a reason to fail a scan."""

import io
import logging
import pytest
from django.core.files.storage import storages
from django.core.management import call_command
from django.test import override_settings
from vision import adgen
from vision.creatives import CreativeIndex

from catalog.models import Product
from shop.campaigns import recognition
from shop.campaigns.models import AdCreative
from shop.campaigns.tasks import snapshot_creative_index
from tests.campaigns.fixtures import register_creative, scan_recognising
from tests.scans.conftest import new_shopper_client
from tests.shoppers.storage import bucket_keys, s3_storage


@pytest.fixture
def compared(monkeypatch):
    """Creatives compared with their neighbours (the template learning a snapshot saves), in order."""
    calls = []
    original = CreativeIndex._compare_with_neighbours
    monkeypatch.setattr(CreativeIndex, "_compare_with_neighbours",
                        lambda self, entry: calls.append(entry.creative_id) or original(self, entry))
    return calls


def snapshots() -> list[str]:
    return recognition._snapshot_names(storages[recognition.SNAPSHOT_STORAGE])


def recognised(page) -> int | None:
    photo, _ = adgen.photograph(page.image, seed=7, difficulty="easy")
    with recognition.using_creative_index() as index:
        match = index.match(photo)
    return None if match is None else match.creative_id


def test_a_fresh_worker_loads_the_snapshot_and_recognises_without_learning_again(
    campaign_with_creatives, compared, django_capture_on_commit_callbacks
):
    campaign, _, creatives = campaign_with_creatives
    out = io.StringIO()
    call_command("build_creative_index", stdout=out, verbosity=0)
    assert "4 creatives" in out.getvalue() and len(snapshots()) == 1
    assert len(compared) == 4  # the command built the index from the features
    compared.clear()
    recognition.reset()  # a fresh worker process
    body = scan_recognising(new_shopper_client(), creatives[1][1], django_capture_on_commit_callbacks)
    assert body["result_kind"] == "ad" and body["ad"]["creative"]["id"] == creatives[1][0].id
    assert compared == [], "loaded from the snapshot: no creative compared with its neighbours again"


def test_creatives_changed_since_the_snapshot_are_caught_up_with(campaign_with_creatives, compared):
    campaign, template, creatives = campaign_with_creatives
    call_command("build_creative_index", stdout=io.StringIO(), verbosity=0)
    new_page = adgen.make_creative(template, seed=11, detail="rich")
    new = register_creative(campaign, new_page, "autumn-new", list(Product.objects.order_by("id")[:2]))
    AdCreative.objects.filter(pk=creatives[0][0].pk).update(status=AdCreative.Status.INACTIVE)
    recognition.reset()
    compared.clear()
    assert recognised(new_page) == new.id
    assert recognised(creatives[0][1]) is None  # set inactive after the snapshot was written
    assert recognised(creatives[2][1]) == creatives[2][0].id
    assert new.id in compared and len(compared) < 5  # only the new one and the neighbours of the one gone


def test_an_altered_snapshot_is_refused_and_the_index_built_from_the_features(
    campaign_with_creatives, compared, caplog
):
    _, _, creatives = campaign_with_creatives
    name = recognition.save_snapshot(force=True)
    path = storages[recognition.SNAPSHOT_STORAGE].path(name)
    data = bytearray(open(path, "rb").read())
    data[-100] ^= 0xFF
    open(path, "wb").write(bytes(data))
    recognition.reset()
    compared.clear()
    with caplog.at_level(logging.WARNING, logger="shop.campaigns.recognition"):
        assert recognised(creatives[3][1]) == creatives[3][0].id
    assert [r.error for r in caplog.records if r.getMessage() == "creative index snapshot refused"] == [
        "bad signature (another key, or altered)"]
    assert len(compared) == 4


def test_a_snapshot_signed_under_another_secret_key_is_not_loaded(campaign_with_creatives, compared, settings):
    _, _, creatives = campaign_with_creatives
    recognition.save_snapshot(force=True)
    settings.SECRET_KEY = "another deployment's key " * 3
    recognition.reset()
    compared.clear()
    assert recognised(creatives[0][1]) == creatives[0][0].id
    assert len(compared) == 4


def test_the_periodic_task_writes_a_snapshot_only_when_creatives_changed(campaign_with_creatives):
    campaign, template, _ = campaign_with_creatives
    first = snapshot_creative_index.delay().get()
    assert first is not None and snapshots() == [first]
    assert snapshot_creative_index.delay().get() is None  # nothing changed
    recognition.reset()  # another worker, loading the snapshot: nothing changed for it either
    assert snapshot_creative_index.delay().get() is None
    register_creative(campaign, adgen.make_creative(template, seed=12, detail="rich"), "autumn-12", [])
    second = snapshot_creative_index.delay().get()
    assert second is not None and snapshots() == [second], "the older snapshot is deleted"
    recognition.reset()
    with recognition.using_creative_index() as index:
        assert len(index) == 5


def test_with_no_snapshot_storage_answering_the_index_is_built(campaign_with_creatives, settings, caplog):
    _, _, creatives = campaign_with_creatives
    settings.STORAGES = {**settings.STORAGES, "creative_index": {"BACKEND": "no.such.Storage"}}
    recognition.reset()
    with caplog.at_level(logging.ERROR, logger="shop.campaigns.recognition"):
        assert recognised(creatives[2][1]) == creatives[2][0].id
    assert "creative index snapshots could not be listed" in caplog.text


def test_snapshots_are_kept_in_s3_under_their_own_prefix(campaign_with_creatives, s3_server, compared):
    _, _, creatives = campaign_with_creatives
    with s3_storage(s3_server) as (client, bucket):
        from django.conf import settings

        with override_settings(STORAGES={**settings.STORAGES, "creative_index": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"location": "creative-index", "file_overwrite": True}}}):
            name = recognition.save_snapshot(force=True)
            assert bucket_keys(client, bucket) == [f"creative-index/{name}"]
            recognition.reset()
            compared.clear()
            assert recognised(creatives[1][1]) == creatives[1][0].id
            assert compared == []
