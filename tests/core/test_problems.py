import pytest

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, code: str):
    assert response.status_code == status
    assert response["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith("/" + code.replace("_", "-"))
    assert body["title"] and body["detail"]
    assert body["request_id"] == response["X-Request-ID"]
    return body


@pytest.mark.django_db
def test_unknown_address_is_a_404_problem(client):
    body = assert_problem(client.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert body["instance"] == "/api/v1/no-such-thing/"
    assert_problem(client.get("/nowhere"), 404, "not_found")


@pytest.mark.django_db
def test_a_post_missing_its_trailing_slash_is_redirected_with_its_method_and_body(client):
    """308, not 301: a client following a 301 sends a GET without the body (a shopper registered as a
    list of shoppers, an order that was never placed)."""
    response = client.post("/api/v1/shoppers", {"platform": "android"}, content_type="application/json")
    assert response.status_code == 308 and response["Location"] == "/api/v1/shoppers/"
    followed = client.post("/api/v1/shoppers", {"platform": "android"}, content_type="application/json", follow=True)
    assert followed.status_code == 201 and followed.json()["token"]
    assert client.get("/api/v1/scans").status_code == 301  # reads keep the usual redirect


@pytest.mark.django_db
def test_wrong_method_is_a_405_problem_with_allow_header(client):
    response = client.delete("/api/v1/shoppers/")
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]
    assert_problem(client.post("/healthz"), 405, "method_not_allowed")


@pytest.mark.django_db
def test_json_nested_too_deeply_is_a_400_problem_not_a_500(api_client):
    """Python's decoder gives up on deep nesting with a RecursionError, which DRF does not catch."""
    deep = "[" * 100_000
    response = api_client.post("/api/v1/shoppers/", deep, content_type="application/json")
    assert_problem(response, 400, "parse_error")
    shopper = api_client.post("/api/v1/shoppers/", {"platform": "ios"}, format="json").json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {shopper}")
    scan = api_client.post("/api/v1/scans/", {"filters": deep}, format="multipart")
    body = assert_problem(scan, 400, "validation_error")
    assert any(error["field"] == "filters" for error in body["errors"])


@pytest.mark.django_db
def test_validation_error_is_a_400_problem_with_field_errors(api_client):
    response = api_client.post("/api/v1/shoppers/", {"platform": "palm-pilot", "locale": "x" * 40}, format="json")
    body = assert_problem(response, 400, "validation_error")
    fields = {error["field"]: error for error in body["errors"]}
    assert fields["platform"]["code"] == "invalid_choice"
    assert "palm-pilot" in fields["platform"]["detail"]
    assert "locale" in fields


@pytest.mark.django_db
def test_malformed_json_is_a_400_problem(api_client):
    response = api_client.generic("POST", "/api/v1/shoppers/", "{not json", content_type="application/json")
    assert_problem(response, 400, "parse_error")


@pytest.mark.django_db
def test_browser_asking_for_html_still_gets_problem_json(client):
    response = client.get("/api/v1/shoppers/me", HTTP_ACCEPT="text/html")
    assert_problem(response, 401, "not_authenticated")


def test_server_error_handler_answers_problem_json(rf):
    from shop.core.problems import handler500

    response = handler500(rf.get("/api/v1/anything"))
    assert response.status_code == 500
    assert response["Content-Type"] == PROBLEM
    assert "unexpected" in response.content.decode()


@pytest.mark.django_db
def test_an_unhandled_exception_in_a_view_becomes_a_500_problem(client, monkeypatch):
    from shop.shoppers import apis

    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(apis, "shopper_register", broken)
    client.raise_request_exception = False
    response = client.post("/api/v1/shoppers/", {"platform": "ios"}, content_type="application/json")
    body = assert_problem(response, 500, "server_error")
    assert "database on fire" not in body["detail"]


def test_the_openapi_schema_generates_without_errors_or_warnings(db):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("spectacular", "--fail-on-warn", "--validate", stdout=out, stderr=StringIO())
    schema = out.getvalue()
    for path in ("/api/v1/scans/", "/api/v1/cart/", "/api/v1/orders/", "/api/v1/reports/campaigns/roi/", "/readyz"):
        assert f"  {path}:" in schema


@pytest.mark.django_db
def test_a_database_outage_is_a_503_problem_with_retry_after(api_client, monkeypatch):
    from django import db

    from shop.shoppers import apis

    def unreachable(**kwargs):
        raise db.OperationalError("connection to server on socket failed: No such file or directory")

    monkeypatch.setattr(apis, "shopper_register", unreachable)
    response = api_client.post("/api/v1/shoppers/", {"platform": "ios"}, format="json")
    body = assert_problem(response, 503, "database_unavailable")
    assert response["Retry-After"] == "5"
    assert "socket" not in body["detail"]
