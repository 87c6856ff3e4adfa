"""The language switch in the admin header."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from staff.services import staff_language_set


@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """Switch the admin's language: kept in the staff profile (per user) and a cookie."""
    language = request.POST.get("language", "")
    if language not in {code for code, _ in settings.LANGUAGES}:
        return HttpResponseBadRequest("unsupported language")
    next_url = request.POST.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = "/admin/"
    if request.user.is_authenticated and request.user.is_staff:
        staff_language_set(user=request.user, language=language)
    response = HttpResponseRedirect(next_url)
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax",
                        secure=settings.LANGUAGE_COOKIE_SECURE, httponly=True)
    return response
