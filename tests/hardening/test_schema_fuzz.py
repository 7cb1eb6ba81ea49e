"""Property-based tests of the whole API against its own OpenAPI schema (issue 9, item 2).

schemathesis generates requests for every operation of `/api/schema/` (valid and invalid ones:
wrong types, missing fields, random bytes for the multipart `photo`) and sends them in process
through the WSGI application, inside the test's database transaction (no network, no worker: the
scan task queued on commit never runs). Every response must be no 5xx and match the schema: status
code, content type, headers and body, plus schemathesis's other built-in checks, except where
SCHEMA_GAPS names a check the schema is not precise enough for, and why. Derandomized, so CI sees
the same examples each run. No stateful (linked) runs: the schema declares no OpenAPI links.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import (
    is_unexpected_http_status_case,
    negative_data_rejection,
    positive_data_acceptance,
    status_code_conformance,
)

from shop.wsgi import application

PROBLEM = "application/problem+json"
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Requests go through the real WSGI handler, whose request_started/finished signals close the
    database connection, which would end the test's transaction; Django's test client disconnects
    the same handler for the same reason."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(db, settings, wsgi_keeps_the_test_connection):
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from shop.shoppers.services import shopper_register

    settings.THROTTLE_SCANS_PER_SHOPPER = None  # many scans from one shopper and one address
    settings.THROTTLE_SCANS_PER_IP = None
    settings.THROTTLE_REGISTRATIONS_PER_IP = None  # many shoppers registered from one address
    settings.SCAN_WAIT_MAX_SECONDS = 0.2
    _, shopper_token = shopper_register(platform="ios", app_version="1.0.0")
    staff = get_user_model().objects.create_user("fuzz-staff", password="x", is_staff=True)
    return {
        "shopper": {"Authorization": f"Token {shopper_token}"},
        "staff": {"Authorization": f"Token {Token.objects.create(user=staff).key}"},
    }


def undocumented_statuses_are_problems(ctx, response, case):
    """In place of `status_code_conformance` (see SCHEMA_GAPS): a status the schema does not list
    must be a 4xx problem-details answer with the project's stable code, never anything else."""
    if case.method.upper() != case.operation.method.upper() or is_unexpected_http_status_case(case):
        return None  # a probe of another method or request shape (OPTIONS, TRACE...): not this operation's answer
    responses = case.operation.definition.raw.get("responses", {})
    status = response.status_code
    if {str(status), f"{str(status)[0]}XX", "default"} & set(responses):
        return None
    assert 400 <= status < 500, f"undocumented status {status}: {response.content[:300]!r}"
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type == PROBLEM, f"a {status} answered as {content_type!r}, not problem details"
    body = json.loads(response.content)
    assert body["status"] == status and body["code"] and body["type"].endswith(body["code"].replace("_", "-")), body
    return True


# Where the schema is not precise enough for a built-in check, per operation, with the reason.
# Everything here is reported on issue 9 as a schema gap to close, not as accepted behaviour.
SCHEMA_GAPS = {
    # No operation documents its error answers: drf-spectacular lists only the success response, while
    # every view also answers 400/401/403/404/409/413/415/422/429 as problem details. The built-in
    # check would fail on each; `undocumented_statuses_are_problems` checks those answers instead.
    "*": {status_code_conformance},
    # DRF's LimitOffsetPagination ignores a `limit`/`offset` that is not an integer (?offset=null)
    # and uses the default, where the schema says integer: negative cases are accepted.
    "GET /api/v1/scans/": {negative_data_rejection},
    "GET /api/v1/orders/": {negative_data_rejection},
    # DRF reads an empty form field of an optional input (region= in multipart or urlencoded) as
    # "absent" and uses the default, where the schema's minLength says invalid; JSON bodies are strict.
    "POST /api/v1/shoppers/": {negative_data_rejection},
    # `campaign` is a list of slugs and start <= end <= start + 366 days: the schema says only
    # "array of strings" and two dates, so schema-valid requests get a (correct) 400.
    "GET /api/v1/reports/campaigns/roi/": {positive_data_acceptance},
    "GET /api/v1/reports/trends/": {positive_data_acceptance},
    # Schema-valid but rightly refused: a photo must be a decodable image (random bytes are 415/422),
    # and `filters` may be null per the schema but the serializer refuses null.
    "POST /api/v1/scans/": {positive_data_acceptance},
    # The variant and scan ids must exist (a schema cannot say so); the 400 is right.
    "POST /api/v1/cart/items/": {positive_data_acceptance},
    # The Idempotency-Key header is documented as any string; the service accepts 1 to 255
    # printable ASCII characters (schema gap: no pattern/maxLength on the parameter).
    "POST /api/v1/orders/": {positive_data_acceptance},
    # `k` is 1..50 in the view but the parameter has no minimum/maximum in the schema (schema gap).
    "GET /api/v1/products/{product_id}/similar/": {positive_data_acceptance},
}


@schema.parametrize()
@hypothesis_settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, auth_headers):
    who = "staff" if case.path.startswith("/api/v1/reports/") else "shopper"
    excluded = SCHEMA_GAPS["*"] | SCHEMA_GAPS.get(f"{case.method.upper()} {case.path}", set())
    case.call_and_validate(
        headers=auth_headers[who],
        excluded_checks=list(excluded),
        additional_checks=[undocumented_statuses_are_problems],
    )


def test_every_schema_gap_names_an_operation_of_the_schema():
    """An exclusion must not outlive its operation (a renamed path would silently drop it)."""
    paths = schema.raw_schema["paths"]
    operations = {f"{method.upper()} {path}" for path, methods in paths.items() for method in methods}
    assert set(SCHEMA_GAPS) - {"*"} <= operations, set(SCHEMA_GAPS) - {"*"} - operations
