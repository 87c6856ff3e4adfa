"""The admin's language: the operator's own choice, else the site default (zh-hans).

Runs after authentication. A browser's Accept-Language is deliberately not
used: the back office is Chinese unless a user picks English.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation


def chosen_language(request: HttpRequest) -> str:
    """The user's profile language, else the language cookie, else LANGUAGE_CODE."""
    supported = {code for code, _ in settings.LANGUAGES}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        profile = getattr(user, "staff_profile", None)
        if profile is not None and profile.language in supported:
            return profile.language
    cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if cookie in supported:
        return str(cookie)
    return settings.LANGUAGE_CODE


class StaffLanguageMiddleware:
    """Activate the chosen language for pages people read (admin and staff views)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            return self.get_response(request)  # the API answers in its own bilingual messages
        language = chosen_language(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language  # type: ignore[attr-defined]  # django-stubs: HttpRequest has no LANGUAGE_CODE; Django's LocaleMiddleware sets it the same way
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response
