"""The zh_Hans and en catalogues: compiled, complete for the admin's own text, and applied."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.utils import translation

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "locale"
CJK = re.compile(r"[\u4e00-\u9fff]")
# Django's own admin text, translated by Django's catalogues.
DJANGO_OWN = {"Welcome,", "Home", "No, take me back", "Please correct the error below.", "Log in", "Forgotten your login credentials?",
              "You are authenticated as %(username)s, but are not authorized to access this page. Would you like to "
              "login to a different account?"}


def _unquote(text: str) -> str:
    """Undo the escapes makemessages writes (backslash, quote, newline)."""
    return re.sub(r'\\(.)', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


def read_po(path: Path) -> dict[str, str]:
    """msgid -> msgstr of a .po file (singular entries, obsolete ones skipped). An entry with a
    context is keyed "context\x04msgid", as in the compiled catalogue."""
    entries: dict[str, str] = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, list[str]] = {}
        current = None
        for line in block.splitlines():
            if line.startswith("#~"):
                fields = {}
                break
            match = re.match(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d\])?) "(.*)"$', line)
            if match:
                current = match.group(1)
                fields[current] = [match.group(2)]
            elif line.startswith('"') and current:
                fields[current].append(line[1:-1])
        if "msgid" in fields and "msgid_plural" not in fields and "msgstr" in fields:
            msgid = _unquote("".join(fields["msgid"]))
            if msgid and "msgctxt" in fields:
                msgid = _unquote("".join(fields["msgctxt"])) + "\x04" + msgid
            if msgid:
                entries[msgid] = _unquote("".join(fields["msgstr"]))
    return entries


@pytest.mark.parametrize("language", ["zh_Hans", "en"])
def test_compiled_catalogue_matches_the_po_file(language: str) -> None:
    po = read_po(LOCALE / language / "LC_MESSAGES" / "django.po")
    with open(LOCALE / language / "LC_MESSAGES" / "django.mo", "rb") as handle:
        mo = gettext.GNUTranslations(handle)
    stale = {msgid for msgid, msgstr in po.items() if msgstr and mo.gettext(msgid) != msgstr}
    assert not stale, f"run `make messages` (or manage.py compilemessages): {sorted(stale)[:5]}"


def test_every_english_text_of_the_back_office_has_chinese() -> None:
    po = read_po(LOCALE / "zh_Hans" / "LC_MESSAGES" / "django.po")
    missing = [msgid for msgid, msgstr in po.items() if not CJK.search(msgid) and not msgstr
               and msgid not in DJANGO_OWN]
    assert not missing, missing


def test_model_labels_operators_read_most_have_english() -> None:
    from orders.models import Fill, Order, OrderStatus
    from trading.models import Account, ApiKey, CashLedgerEntry, Instrument, Position, TradingState

    with translation.override(None):
        labels = {str(m._meta.verbose_name) for m in (Order, Fill, Account, ApiKey, CashLedgerEntry, Instrument, Position)}
        labels |= {str(label) for _, label in OrderStatus.choices} | {str(label) for _, label in TradingState.choices}
    po = read_po(LOCALE / "en" / "LC_MESSAGES" / "django.po")
    missing = sorted(label for label in labels if not po.get(label))
    assert not missing, f"run `make messages` and translate: {missing}"


def test_model_labels_follow_the_active_language() -> None:
    from orders.models import Order

    field = Order._meta.get_field("status")
    with translation.override("en"):
        assert str(Order._meta.verbose_name) == "order"
        assert dict(field.flatchoices)["PENDING_APPROVAL"] == "pending approval"
    with translation.override("zh-hans"):
        assert str(Order._meta.verbose_name) == "委托"
        assert str(Order._meta.get_field("created_at").verbose_name) == "创建时间"
