"""Django's makemessages, also extracting the msgids of ``trading.i18n.bilingual(...)``.

Their placeholders are ``str.format`` fields, but the Chinese text may leave some out (the
English names the numbers, the Chinese need not), while ``msgfmt --check-format``
(compilemessages) requires every field of a python-brace-format msgid in its translation. So
the entries xgettext flags python-brace-format are marked no-python-brace-format, and not
python-format either (xgettext takes "{n}% of" for a %-directive). The project's other gettext
strings use ``%(name)s`` placeholders and no braces, so this leaves them alone. (xgettext 0.21
mangles ``--flag=bilingual:1:no-python-brace-format`` into no-python-format, hence the rewrite.)

msgmerge does no fuzzy matching: its guess for a new msgid, taken from a similar old one ("count"
got 账户 from "account"), is left out by compilemessages yet reads as translated in the .po
file. A new msgid comes in empty, and the catalogue tests (tests/admin/test_i18n.py,
test_labels.py) name it until someone translates it.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.core.management.commands import makemessages

FLAGS = re.compile(r"^#,.*$", re.MULTILINE)


def _not_checked(match: re.Match[str]) -> str:
    flags = [flag.strip() for flag in match.group(0)[2:].split(",")]
    if "python-brace-format" not in flags:
        return match.group(0)
    flags = [f"no-{flag}" if flag in ("python-brace-format", "python-format") else flag for flag in flags]
    return "#, " + ", ".join(flags)


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=bilingual", "--keyword=bilingual_lazy",
                        "--keyword=pbilingual:1c,2"]
    msgmerge_options = [*makemessages.Command.msgmerge_options, "--no-fuzzy-matching"]

    def write_po_file(self, potfile: str, locale: str) -> None:
        pot = Path(potfile)
        text = pot.read_text(encoding="utf-8")
        pot.write_text(FLAGS.sub(_not_checked, text), encoding="utf-8")
        super().write_po_file(potfile, locale)
