"""The compliance report (compliance/report_compliance.py) on the fixed day of tests/abnormal_day.py:
its figures are the hand counts, the command's CSV and Excel files read back, the page opens for the
Compliance role (with its chart) and for no role without the permission."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from compliance.report_compliance import DAY_COLUMNS, STAKE_COLUMNS, compliance_chart, compliance_report
from tests.abnormal_day import DAY, abnormal_day
from tests.staff_helpers import staff_member, verified_client

pytestmark = pytest.mark.django_db(transaction=True)

DAY_ROW = ["day", "2026-11-23", "acc1", "7", "3", "10", "20000", "0.000500", "7", "2026-11-23T10:00:00.000+08:00",
           "300", "0.023333", "no", "2", "0.428571", "1", "0.142857", "1", "1", "0", "0", "1", "0", "0"]
STAKE_ROW = ["stake", "acc1", "no", "600036.SH", "460000", "10000000", "0.046000"]


@pytest.fixture
def day(script, clock):
    return abnormal_day(script, clock)


def test_the_report_has_the_hand_counted_figures(day) -> None:
    report = compliance_report(since=DAY, until=DAY)
    rows = [[str(cell) if not hasattr(cell, "isoformat") else cell for cell in row] for row in report.rows()]
    assert rows[0] == DAY_COLUMNS and rows[2] == STAKE_COLUMNS
    [figures] = report.days
    assert (figures.orders, figures.cancels, figures.peak_second_count, figures.instant_cancels) == (7, 3, 7, 2)
    assert (figures.self_trade_attempts, figures.restricted_hits, figures.closing_orders) == (1, 1, 1)
    assert [s.symbol for s in report.stakes] == ["600036.SH"] and not report.near_line(figures)
    [bar] = compliance_chart(report).bars
    assert (str(bar.second_percent), str(bar.day_percent), bar.second_width) == ("2.3", "0.1", 9)
    assert compliance_report(since=DAY + timedelta(days=1), until=DAY + timedelta(days=1)).days == []
    assert compliance_report(since=DAY, until=DAY, account="acc2").days == []


def test_the_command_writes_csv_and_excel_that_read_back(day, tmp_path, capsys) -> None:
    out = tmp_path / "compliance.csv"
    call_command("report_compliance", "--day", DAY.isoformat(), "--format", "csv", "--output", str(out))
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8").removeprefix("\ufeff"))))
    assert rows == [DAY_COLUMNS, DAY_ROW, STAKE_COLUMNS, STAKE_ROW]
    capsys.readouterr()
    call_command("report_compliance", "--since", DAY.isoformat(), "--until", DAY.isoformat(), "--account", "acc1")
    assert list(csv.reader(io.StringIO(capsys.readouterr().out)))[1] == DAY_ROW
    book = tmp_path / "compliance.xlsx"
    call_command("report_compliance", "--day", DAY.isoformat(), "--format", "xlsx", "--output", str(book))
    with zipfile.ZipFile(book) as workbook:
        sheet = workbook.read("xl/worksheets/sheet1.xml").decode()
    cells = [re.findall(r"<t xml:space=\"preserve\">([^<]*)</t>|<v>([^<]*)</v>", row)
             for row in re.findall(r"<row>(.*?)</row>", sheet)]
    assert [[a or b for a, b in row] for row in cells] == [DAY_COLUMNS, DAY_ROW, STAKE_COLUMNS, STAKE_ROW]


@pytest.mark.parametrize("arguments", [[], ["--day", "2026-11-23", "--since", "2026-11-23"], ["--day", "23/11/2026"],
                                       ["--since", "2026-11-24", "--until", "2026-11-23"], ["--day", "2026-11-23", "--account", "nobody"],
                                       ["--day", "2026-11-23", "--format", "xlsx"]])
def test_the_command_refuses_what_it_cannot_answer(arguments: list[str], db) -> None:
    with pytest.raises(CommandError):
        call_command("report_compliance", *arguments)


@pytest.fixture
def roles(transactional_db) -> None:
    from staff.roles import roles_sync

    roles_sync()


def test_the_page_shows_the_figures_and_the_chart_to_compliance(day, roles) -> None:
    client = verified_client(staff_member("li.compliance", "Compliance"))
    response = client.get("/admin/compliance/compliancelog/reports/compliance/", {"since": DAY.isoformat()})
    assert response.status_code == 200
    page = response.content.decode()
    assert '<td class="actions">10 / 20000</td>' in page and '<td class="second">7 / 300 (10:00:00)</td>' in page
    assert '<td class="instant">2</td>' in page and '<td class="self-trade">1</td>' in page
    assert '<td class="restricted">1</td>' in page and '<td class="closing">1</td>' in page
    assert '<svg id="hf-chart"' in page and 'width="9" fill="#417690"' in page
    assert "<td>600036.SH</td><td>460000</td><td>10000000</td><td>0.046000</td>" in page


def test_the_page_speaks_the_readers_language(day, roles) -> None:
    client = verified_client(staff_member("li.compliance", "Compliance"))
    url = "/admin/compliance/compliancelog/reports/compliance/"
    chinese = client.get(url, {"since": DAY.isoformat()}).content.decode()
    client.post("/staff/language/", {"language": "en"})
    english = client.get(url, {"since": DAY.isoformat()}).content.decode()
    assert "瞬时撤单" in chinese and "Instant cancels" not in chinese
    assert "Instant cancels" in english and "瞬时撤单" not in english


def test_the_page_answers_a_bad_date_with_today_and_a_note(roles, db) -> None:
    client = verified_client(staff_member("li.compliance", "Compliance"))
    response = client.get("/admin/compliance/compliancelog/reports/compliance/", {"since": "23/11/2026"})
    assert response.status_code == 200 and 'class="errornote"' in response.content.decode()


@pytest.mark.parametrize("role", ["Operator", "Risk manager"])
def test_the_page_is_refused_without_the_compliance_role(role: str, roles) -> None:
    client = verified_client(staff_member(role.lower().replace(" ", "_"), role))
    assert client.get("/admin/compliance/compliancelog/reports/compliance/").status_code == 403
