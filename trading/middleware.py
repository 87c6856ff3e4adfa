"""Middleware of the web tier.

``ApiEdgeMiddleware``: the REST API's edge (``/api/``), what must be refused before any view, and
errors always in JSON:

- A NUL byte in the path or a query parameter is 422 naming the parameter (rule ``nul_byte``):
  PostgreSQL refuses NUL in text, so it must never reach a query. In the ``Authorization``
  header it is an invalid key (401). Request bodies are checked field by field by the schemas
  (``trading.schemas.Text``), so that one bad item of a batch fails alone.
- An error the API's own handlers did not render (404 for an unknown path, 405 for an
  unsupported method, a 4xx/5xx from Django) is answered as JSON ``{"detail", "code"}``
  instead of HTML or an empty body.

``ContentSecurityPolicyMiddleware``: a Content-Security-Policy on every HTML page (admin, staff login, the API docs).

Scripts, styles, images, fonts and API calls come from our own origin only:
Swagger UI is served from django-ninja's static files, not a CDN. Inline
``style`` attributes stay allowed (the admin's templates and Swagger UI set
some); inline scripts do not. ``data:`` images are Swagger UI's and the
admin's icons. Pages may not be framed.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port
from django.urls import Resolver404, resolve
from django.utils.translation import gettext_noop

from trading.errors import ErrorCode, InputRule
from trading.i18n import bilingual
from trading.schemas import NUL, nul_message

API_PREFIX = "/api/"

# msgids, rendered "中文 (English)" by bilingual() when answered.
_MESSAGES = {
    401: gettext_noop("missing or invalid API key"),
    404: gettext_noop("not found"),
    405: gettext_noop("method not allowed"),
    413: gettext_noop("request body too large"),
}


def _nul_problem(location: str, name: str) -> dict[str, object]:
    return {"loc": [location, name], "field": name, "rule": InputRule.NUL_BYTE, "msg": nul_message()}


def _nul_problems(request: HttpRequest) -> list[dict[str, object]]:
    problems: list[dict[str, object]] = []
    if NUL in request.path_info:
        try:
            kwargs = resolve(request.path_info).kwargs
        except Resolver404:
            kwargs = {}
        names = [name for name, value in kwargs.items() if NUL in str(value)] or ["path"]
        problems.extend(_nul_problem("path", name) for name in names)
    if "%00" in request.META.get("QUERY_STRING", "") or NUL in request.META.get("QUERY_STRING", ""):
        for name, values in request.GET.lists():
            if any(NUL in value for value in values) or NUL in name:
                problems.append(_nul_problem("query", name.replace(NUL, "\\x00")))
    return problems


def _error_response(status: int, detail: object, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status, json_dumps_params={"ensure_ascii": False})


def _is_json(response: HttpResponse) -> bool:
    return str(response.get("Content-Type", "")).startswith("application/json")


class ApiEdgeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        if NUL in request.META.get("HTTP_AUTHORIZATION", ""):
            return _error_response(401, bilingual(_MESSAGES[401]), ErrorCode.UNAUTHORIZED)
        problems = _nul_problems(request)
        if problems:
            return _error_response(422, problems, "invalid_input")
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response) and not getattr(response, "streaming", False):
            response = self._as_json(response)
        return response

    @staticmethod
    def _as_json(response: HttpResponse) -> HttpResponse:
        status = response.status_code
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = response.reason_phrase
        code = reason.lower().replace(" ", "_").replace("-", "_")
        answer = _error_response(status, bilingual(_MESSAGES[status]) if status in _MESSAGES else reason, code)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if response.has_header(header):
                answer[header] = response[header]
        return answer


CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def content_security_policy(request: HttpRequest) -> str:
    """The policy of an HTML page. With the live pages' websocket server on a port of its own
    (settings.LIVE_WEBSOCKET_PORT), the page may connect to that port of its own host too."""
    port = settings.LIVE_WEBSOCKET_PORT
    if not port:
        return CONTENT_SECURITY_POLICY
    try:
        host, _ = split_domain_port(request.get_host())
    except DisallowedHost:  # the answer is the 400 for that host: no websocket to allow
        return CONTENT_SECURITY_POLICY
    if not host:
        return CONTENT_SECURITY_POLICY
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' ws://{host}:{port} wss://{host}:{port}")


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html") and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = content_security_policy(request)
        return response
