import pytest
from django.test import override_settings

from tests.conftest import free_port


@pytest.mark.django_db
def test_healthz_answers_without_touching_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_every_dependency(client):
    response = client.get("/readyz")
    body = response.json()
    assert set(body["checks"]) == {"database", "broker", "storage", "model"}
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["pgvector"].startswith("0.8")
    assert body["checks"]["storage"]["ok"] is True
    assert body["checks"]["model"]["key"]
    assert "pretrained" in body["checks"]["model"]
    assert response.status_code == (200 if body["ready"] else 503)


@pytest.mark.django_db
def test_readyz_is_503_problem_when_the_broker_is_unreachable(client):
    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # a port nothing listens on
    with override_settings(CELERY_BROKER_URL=unreachable, CELERY_BROKER_TRANSPORT_OPTIONS={}, BROKER_EMBEDDED=False):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "dependency_unavailable"
    assert "broker" in body["detail"]
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_the_web_probe_stays_ready_while_the_shared_broker_is_down(client, settings):
    """The load balancer's probe (`?scope=web`) asks what a web process itself needs: with the broker
    down for a restart every web pod went unready, and every request (catalog, carts, checkout) got 503."""
    settings.VISION_MODEL = "color-texture-v1"
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(CELERY_BROKER_URL=unreachable, CELERY_BROKER_TRANSPORT_OPTIONS={}, BROKER_EMBEDDED=False):
        response = client.get("/readyz?scope=web")
        assert client.get("/readyz?scope=nonsense").status_code == 400
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["scope"] == "web" and set(body["checks"]) == {"database", "model"}


@pytest.mark.django_db
def test_readyz_is_503_when_the_embedded_broker_folder_is_gone(client, tmp_path):
    missing = tmp_path / "gone"
    options = {"data_folder_in": str(missing), "data_folder_out": str(missing), "control_folder": str(missing)}
    with override_settings(CELERY_BROKER_URL="filesystem://", CELERY_BROKER_TRANSPORT_OPTIONS=options):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


@pytest.mark.django_db
def test_readyz_fails_storage_when_the_bucket_is_missing(client, s3_server):
    """A HEAD on an object answers 404 for a missing bucket too, which read as "no such file" and passed,
    while every upload failed: the bucket itself is asked."""
    from tests.shoppers.storage import s3_storage

    with s3_storage(s3_server) as (s3, bucket):
        assert client.get("/readyz").json()["checks"]["storage"]["ok"] is True
        s3.delete_bucket(Bucket=bucket)
        response = client.get("/readyz")
    assert response.status_code == 503
    storage = response.json()["checks"]["storage"]
    assert storage["ok"] is False and "404" in storage["error"]
