import json
import logging

import pytest

from shop.core.logging import RequestIdFilter


@pytest.fixture
def captured_json_lines():
    """Attach the project's JSON formatter and request-id filter, as settings configure them."""
    import io

    from pythonjsonlogger.json import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"))
    logger = logging.getLogger("shop.shoppers")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


@pytest.mark.django_db
def test_every_log_line_of_a_request_carries_its_request_id(client, captured_json_lines, monkeypatch):
    from shop.shoppers import apis

    original = apis.shopper_register

    def logged_register(**kwargs):
        logging.getLogger("shop.shoppers").info("registering a shopper")
        result = original(**kwargs)
        logging.getLogger("shop.shoppers").info("registered")
        return result

    monkeypatch.setattr(apis, "shopper_register", logged_register)
    response = client.post(
        "/api/v1/shoppers/", {"platform": "android"}, content_type="application/json", HTTP_X_REQUEST_ID="req-42.a"
    )
    assert response.status_code == 201
    assert response["X-Request-ID"] == "req-42.a"
    lines = [json.loads(line) for line in captured_json_lines.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["registering a shopper", "registered"]
    assert all(line["request_id"] == "req-42.a" for line in lines)


@pytest.mark.django_db
def test_a_malformed_incoming_request_id_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces\n")
    assert response["X-Request-ID"] != "bad id with spaces\n"
    assert len(response["X-Request-ID"]) == 32
