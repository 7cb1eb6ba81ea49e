"""`manage.py wait_for_creative_index`, the vision workers' init step in Kubernetes: a worker starts
once the deploy's snapshot of its own code is in storage, not while the migration Job is still
building it (it would build the index inside its first scans and fail them on the time limit)."""

import io
import logging
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import CommandError, call_command

from shop.campaigns import recognition
from shop.campaigns.models import AdCreative


def wait(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("wait_for_creative_index", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_with_no_creative_to_recognise_a_worker_starts_at_once(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail("waited with nothing to wait for"))
    out, err = wait("--timeout", "60")
    assert "no creatives" in out and err == ""


def test_a_worker_waits_until_the_deploy_writes_the_snapshot_of_its_code(campaign_with_creatives, monkeypatch):
    storage = storages[recognition.SNAPSHOT_STORAGE]
    storage.save("0123456789abcdef-20261201T000000000000Z-00000000.snapshot", ContentFile(b"of other code"))
    slept = []

    def the_job_finishes_on_the_third_look(seconds):
        slept.append(seconds)
        if len(slept) == 2:
            call_command("build_creative_index", stdout=io.StringIO(), verbosity=0)

    monkeypatch.setattr(time, "sleep", the_job_finishes_on_the_third_look)
    out, err = wait("--interval", "5")
    (name,) = recognition._snapshot_names(storage)
    assert slept == [5, 5] and f"creative index ready: {name}" in out and err == ""


def test_without_a_snapshot_in_time_the_worker_is_let_start_with_a_warning_or_refused_when_strict(
    campaign_with_creatives, monkeypatch
):
    storages[recognition.SNAPSHOT_STORAGE].save(
        "0123456789abcdef-20261201T000000000000Z-00000000.snapshot", ContentFile(b"of other code"))
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    out, err = wait("--timeout", "0")
    assert slept == [] and "no creative index snapshot of this code after 0 s" in err and "ready" not in out
    with pytest.raises(CommandError, match="build_creative_index running or failed"):
        wait("--timeout", "0", "--strict")
    AdCreative.objects.update(status=AdCreative.Status.INACTIVE)  # nothing left to recognise
    assert "no creatives" in wait("--timeout", "0", "--strict")[0]


def test_storage_that_does_not_answer_is_looked_at_again_until_the_deadline(
    campaign_with_creatives, monkeypatch, caplog
):
    def down(storage):
        raise ConnectionError("the bucket does not answer")

    looks = []
    monkeypatch.setattr(recognition, "_snapshot_names", lambda storage: looks.append(1) or down(storage))
    with caplog.at_level(logging.WARNING):
        out, err = wait("--timeout", "0.5", "--interval", "0.1")
    assert len(looks) >= 3 and "no creative index snapshot of this code after 0.5 s" in err
    assert all("the bucket does not answer" in record.error for record in caplog.records)


@pytest.mark.django_db
@pytest.mark.parametrize("args", [("--interval", "0"), ("--timeout", "-1")])
def test_nonsense_waits_are_refused(args):
    with pytest.raises(CommandError, match="--timeout must be 0 or more"):
        wait(*args)
