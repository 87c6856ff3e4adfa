"""Error pages and reports that never show a secret, even with DEBUG on.

Django's debug page (only with ``DJANGO_DEBUG=1``) lists the settings, the
request's META and every frame's local variables. Its stock filter hides
settings whose names say API, KEY, SECRET, PASS...; this one also hides those
naming a URL, a DSN or credentials (``DATABASE_URL``, ``REDIS_URL``,
``CELERY_BROKER_URL``), and the reporter masks the password of any
``scheme://user:password@host`` left anywhere in the page or the text report
(a local variable, a nested setting such as the channel layer's hosts).
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.regex_helper import _lazy_re_compile
from django.utils.safestring import SafeString, mark_safe
from django.views import debug

MASK = "********"
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^:@/\s'\"<>]*):(?P<password>[^@/\s'\"<>]+)@", re.I)


def mask_url_credentials(text: str) -> str:
    """``text`` with the password of every URL replaced: redis://:pw@h -> redis://:********@h."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('head')}:{MASK}@", text)


class SafeExceptionReporterFilter(debug.SafeExceptionReporterFilter):
    hidden_settings = _lazy_re_compile("API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DSN|CREDENTIAL",
                                       flags=re.I)

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        return mask_url_credentials(cleansed) if type(cleansed) is str else cleansed

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, mask_url_credentials(value) if type(value) is str else value) for name, value in variables]


class SafeExceptionReporter(debug.ExceptionReporter):
    """The stock reporter, with URL credentials masked in whatever it renders."""

    def get_traceback_html(self) -> SafeString:
        # Masking only replaces a password with asterisks: the escaped page stays escaped.
        return mark_safe(mask_url_credentials(super().get_traceback_html()))

    def get_traceback_text(self) -> SafeString:
        return mark_safe(mask_url_credentials(super().get_traceback_text()))
