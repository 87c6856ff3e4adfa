"""Django's makemessages, also extracting the msgids of ``trading.i18n.bilingual(...)``.

Their placeholders are ``str.format`` fields, but the Chinese text may leave some out (the
English names the numbers, the Chinese need not), while ``msgfmt --check-format``
(compilemessages) requires every field of a python-brace-format msgid in its translation. So
the extracted entries are marked no-python-brace-format. The project's other gettext strings
use ``%(name)s`` placeholders, which this leaves alone. (xgettext 0.21 mangles
``--flag=bilingual:1:no-python-brace-format`` into no-python-format, hence the rewrite.)
"""

from __future__ import annotations

import re
from pathlib import Path

from django.core.management.commands import makemessages

BRACE_FLAG = re.compile(r"^(#,.*?)(?<![-\w])python-brace-format", re.MULTILINE)


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=bilingual"]

    def write_po_file(self, potfile: str, locale: str) -> None:
        pot = Path(potfile)
        text = pot.read_text(encoding="utf-8")
        pot.write_text(BRACE_FLAG.sub(r"\1no-python-brace-format", text), encoding="utf-8")
        super().write_po_file(potfile, locale)
