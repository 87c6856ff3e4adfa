"""Exports as CSV and Excel (an audit search, the reports' tables), written row by row so memory stays flat.

CSV goes straight to the client (a generator under StreamingHttpResponse). Excel (.xlsx) is a zip of
XML: openpyxl is not installed in this project, so :func:`xlsx_write` writes the few parts a
workbook needs itself, streaming the sheet's rows into the zip entry of a temporary file (a zip's
directory comes last, so the file is complete only at the end); the response then streams the file.
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import IO, Any, Protocol
from xml.sax.saxutils import escape

from trading.calendar import SHANGHAI

CSV_BOM = "\ufeff"  # so Excel opens the UTF-8 (Chinese) text correctly


def cell_text(value: Any) -> Any:
    """A value as an export shows it: times in Shanghai, JSON as compact text, None as empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).isoformat(timespec="milliseconds")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return value


class _Line:
    """A file-like object whose write returns what was written (csv.writer's output, one row)."""

    def write(self, text: str) -> str:
        return text


def csv_stream(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The CSV text, one row at a time."""
    writer = csv.writer(_Line())
    yield CSV_BOM + writer.writerow(header)
    for row in rows:
        yield writer.writerow([cell_text(value) for value in row])


# Characters XML 1.0 does not allow (a reason may hold any text).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                  '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                  '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                  '<Default Extension="xml" ContentType="application/xml"/>'
                  '<Override PartName="/xl/workbook.xml" '
                  'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                  '<Override PartName="/xl/worksheets/sheet1.xml" '
                  'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                  '</Types>')
_ROOT_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
              '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
              'Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
             '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
             'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
             '<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>')
_WORKBOOK_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                  '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                  '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
                  'Target="worksheets/sheet1.xml"/></Relationships>')


def _cell(value: Any) -> str:
    value = cell_text(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = escape(_NOT_XML.sub("", str(value)))
        return f'<c t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
    return f"<c><v>{value}</v></c>"


def xlsx_write(out: IO[bytes], header: Sequence[str], rows: Iterable[Sequence[Any]], *, sheet: str = "audit") -> int:
    """Write a one-sheet workbook of ``header`` and ``rows`` to ``out`` (a seekable binary file);
    returns the number of data rows. Rows are written to the zip as they come."""
    count = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", _CONTENT_TYPES)
        book.writestr("_rels/.rels", _ROOT_RELS)
        book.writestr("xl/workbook.xml", _WORKBOOK.format(name=escape(sheet)))
        book.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            part.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                       b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
            part.write(("<row>" + "".join(_cell(name) for name in header) + "</row>").encode())
            for row in rows:
                part.write(("<row>" + "".join(_cell(value) for value in row) + "</row>").encode())
                count += 1
            part.write(b"</sheetData></worksheet>")
    return count


def xlsx_file(header: Sequence[str], rows: Iterable[Sequence[Any]], *, sheet: str = "audit") -> IO[bytes]:
    """The workbook in a temporary file (deleted when closed), positioned at its start."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - the response closes it
    xlsx_write(out, header, rows, sheet=sheet)
    out.seek(0)
    return out


class TextOut(Protocol):
    """Where text goes: a text file, or a management command's ``stdout``."""

    def write(self, text: str, /) -> Any: ...


def table_write(table: Iterable[Sequence[Any]], *, fmt: str, output: str, sheet: str, stdout: TextOut) -> int:
    """Write a report's table (its header row first) as ``fmt`` ("csv" or "xlsx") to the file
    ``output``, or as CSV without the byte-order mark to ``stdout`` when ``output`` is empty; row by
    row. Returns the number of data rows. The one writer of the report commands (report_*)."""
    rows = iter(table)
    header = next(rows)
    counted = _Counted(rows)
    if fmt == "xlsx":
        if not output:
            raise ValueError("an Excel report needs an output file")
        with open(output, "wb") as target:
            xlsx_write(target, header, counted, sheet=sheet)
    elif output:
        with open(output, "w", encoding="utf-8", newline="") as text:
            text.writelines(csv_stream(header, counted))
    else:
        stdout.write("".join(csv_stream(header, counted)).removeprefix(CSV_BOM))
    return counted.count


class _Counted:
    """Rows passed through, counted."""

    def __init__(self, rows: Iterator[Sequence[Any]]) -> None:
        self.rows, self.count = rows, 0

    def __iter__(self) -> Iterator[Sequence[Any]]:
        for row in self.rows:
            self.count += 1
            yield row
