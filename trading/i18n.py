"""User-facing messages: one English msgid, rendered "中文 (English)" through the catalogues.

Every message a user reads (API error details, refusals, admin notices) is written once, in
English, with named placeholders, and translated in ``locale/zh_Hans/LC_MESSAGES/django.po``.
:func:`bilingual` renders it in both languages and joins them as the API has always answered:
``"可用资金不足 (order needs 1000.00 CNY, available 10.00)"``, whatever language is active, so
a client reads the same text as before the catalogues carried it.

Where one English text needs two Chinese ones, :func:`pbilingual` takes a context first, as
``pgettext`` does. A label written once at import time (a permission name, an API parameter's description)
cannot be rendered then: the catalogues are not loaded yet. :func:`bilingual_lazy` is
:func:`bilingual` rendered when the text is first read, for labels kept "中文 (English)" because
they are stored or shown outside the reader's language: permission names are rows in the
database, the API documentation is the API's, whose answers are bilingual. Labels the admin
shows follow the reader's language instead: ``gettext_lazy`` with an English msgid in code the
project writes itself (admin, forms, plug-in titles), and the Chinese of the models' own labels
through ``staff.i18n``.

``makemessages`` finds the calls (``trading/management/commands/makemessages.py``
adds them to its keywords); ``make messages`` refreshes and compiles both catalogues. Log
lines stay in plain text.
"""

from __future__ import annotations

from functools import cache

from django.utils import translation
from django.utils.functional import lazy

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


_bilingual_lazy = lazy(bilingual, str)


def bilingual_lazy(msgid: str, /, **params: object) -> str:
    """:func:`bilingual` rendered when the text is read, for labels defined at import time
    (a lazy ``str``: Django and the JSON encoders render it as text)."""
    return _bilingual_lazy(msgid, **params)
