"""User-facing messages: one English msgid, rendered "中文 (English)" through the catalogues.

Every message a user reads (API error details, refusals, admin notices) is written once, in
English, with named placeholders, and translated in ``locale/zh_Hans/LC_MESSAGES/django.po``.
:func:`bilingual` renders it in both languages and joins them as the API has always answered:
``"可用资金不足 (order needs 1000.00 CNY, available 10.00)"``, whatever language is active, so
a client reads the same text as before the catalogues carried it.

Where one English text needs two Chinese ones, :func:`pbilingual` takes a context first, as
``pgettext`` does. ``makemessages`` finds the calls (``trading/management/commands/makemessages.py``
adds both to its keywords); ``make messages`` refreshes and compiles both catalogues. Log
lines stay in plain text.
"""

from __future__ import annotations

from functools import cache

from django.utils import translation

CHINESE = "zh-hans"
ENGLISH = "en"


@cache
def _templates(msgid: str, context: str | None = None) -> tuple[str, str]:
    # The catalogues are read once per process; msgids are literals, so the cache stays small.
    with translation.override(CHINESE):
        chinese = translation.pgettext(context, msgid) if context else translation.gettext(msgid)
    with translation.override(ENGLISH):
        english = translation.pgettext(context, msgid) if context else translation.gettext(msgid)
    return chinese, english


def bilingual(msgid: str, /, **params: object) -> str:
    """``msgid`` (English, ``str.format`` placeholders) as "中文 (English)", each side formatted
    with ``params``. A msgid without a Chinese translation shows its English on both sides."""
    chinese, english = _templates(msgid)
    return f"{chinese.format(**params)} ({english.format(**params)})"


def pbilingual(context: str, msgid: str, /, **params: object) -> str:
    """:func:`bilingual` with a translation context (``pgettext``): the same English, another Chinese."""
    chinese, english = _templates(msgid, context)
    return f"{chinese.format(**params)} ({english.format(**params)})"
