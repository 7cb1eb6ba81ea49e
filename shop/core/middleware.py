import codecs

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseRedirectBase
from django.middleware.common import CommonMiddleware
from django.utils.http import escape_leading_slashes

from shop.core.logging import bind_request_id, new_request_id
from shop.core.problems import PROBLEM_CONTENT_TYPE, problem_response

REQUEST_ID_HEADER = "X-Request-ID"


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        # Cleared on request_finished (see CoreConfig.ready), after Django's own error logging.
        bind_request_id(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestCharsetMiddleware:
    """A body whose declared charset is no text encoding (`charset=rot13`, `hex`) is a 400 before
    anything reads it: Django accepts any codec name, and reading the form (the CSRF check of the
    admin's login does, outside DRF) raised LookupError, a 500. So is a query string with a NUL."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any("\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values):
            # PostgreSQL refuses NULs in text: an admin search for "%00" was a 500
            return problem_response(request, status=400, code="null_character",
                                    detail="The query string holds a NUL character.")
        charset = getattr(request, "content_params", {}).get("charset")
        if charset and _is_codec(charset):  # a name Python does not know Django ignores (UTF-8 is read)
            try:
                b"a".decode(charset, "replace")  # decoding nothing succeeds even with rot13
            except LookupError:
                return problem_response(request, status=400, code="unsupported_charset",
                                        detail=f"The body's charset {charset[:40]!r} is not a text encoding.")
        return self.get_response(request)


def _is_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


class ProblemDetailsMiddleware:
    """Turn any remaining plain error response (Django's 405, CSRF 403, ...) into problem details.

    DRF views and the error handlers already answer with problem details; this catches responses
    that Django builds itself. Admin pages keep their HTML.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and not response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)
            and not request.path.startswith("/admin/")
        ):
            problem = problem_response(request, status=response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    problem[header] = response[header]
            return problem
        return response


class _PermanentRedirectKeepingMethod(HttpResponseRedirectBase):
    status_code = 308


class AppendSlashMiddleware(CommonMiddleware):
    """Django's CommonMiddleware, but a POST, PUT, PATCH or DELETE to a path missing its trailing slash is
    redirected with 308, which keeps the method and the body; the 301 it sent made clients send a GET
    without the body (and with DEBUG on it was a 500)."""

    def process_response(self, request, response):
        if (response.status_code == 404 and request.method not in ("GET", "HEAD")
                and self.should_redirect_with_slash(request)):
            return _PermanentRedirectKeepingMethod(escape_leading_slashes(request.get_full_path(force_append_slash=True)))
        return super().process_response(request, response)
