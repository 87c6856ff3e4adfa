"""The daily trading report and strategy effectiveness (compliance/trading_reports.py) on a small
fixed pair of days written by hand, against figures computed by hand in the comments.

The days go through the real services (intake, the in-process broker workers, polling, cancels)
against the scripted broker, whose fills carry the fees computed here by MARKET_RULES.md for an
SSE main-board stock at the default schedule (commission 0.025 %, at least 5.00 per order, charged
once per order; transfer fee 0.001 %; stamp duty 0.05 % on sells; each rounded to 0.01 half up).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.services import Actor
from brokers.adapters import scripted
from brokers.adapters.scripted import BrokerScript, ScriptedBroker
from compliance.trading_reports import daily_trading, max_drawdown, strategy_effectiveness
from orders.models import Fill, Order, OrderStatus
from orders.services import OrderInput, account_poll, order_cancel, order_submit
from tests import factories
from tests.conftest import Clock
from tests.staff_helpers import staff_member, verified_client
from trading.models import Account, Instrument, Quote

pytestmark = pytest.mark.django_db(transaction=True)

API = Actor.api_key("trading-reports-tests")
SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY1, DAY2 = date(2026, 11, 23), date(2026, 11, 24)  # a Monday and a Tuesday, both trading days


def submit(account: str, client_order_id: str, side: str, quantity: int, price: str, strategy: str) -> Order:
    body = factories.order_body(account=account, client_order_id=client_order_id, side=side, quantity=quantity,
                                price=price, strategy=strategy)
    order = Order.objects.get(pk=order_submit(OrderInput(**body), actor=API).order.pk)
    assert order.broker_order_id, order.status_reason
    return order


def fill(script: BrokerScript, order: Order, quantity: int, price: str, commission: str, transfer_fee: str,
         stamp_duty: str = "0") -> None:
    script.fill(order.broker_order_id, quantity, D(price), commission=D(commission), transfer_fee=D(transfer_fee),
                stamp_duty=D(stamp_duty))
    account_poll(account_id=order.account_id)


@pytest.fixture
def days(script: BrokerScript, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> dict[str, Order]:
    # The scripted broker stamps its trades with Django's clock: make it read the test clock too.
    monkeypatch.setattr(scripted, "timezone", SimpleNamespace(now=lambda: clock.at))
    factories.account("acc2", cash="1000000", broker_kind=ScriptedBroker.kind)
    script2 = ScriptedBroker.script("acc2")
    orders: dict[str, Order] = {}

    # Day 1, 10:00. Ask 10.00: alpha buys 2,000 at 10.00 = 20,000.00;
    # commission max(5, 20,000 x 0.025 % = 5.00) = 5.00, transfer 20,000 x 0.001 % = 0.20; fees 5.20.
    # The position: 2,000 shares costing 20,005.20 (fees included).
    clock.at = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
    factories.quote("600000.SH", prev_close="10.00", last="10.00", bid="9.99", ask="10.00")
    orders["y1"] = submit("acc1", "y1", "BUY", 2000, "10.00", "alpha")
    fill(script, orders["y1"], 2000, "10.00", "5.00", "0.20")

    # Day 2, 10:00. Bid 10.19, ask 10.20: a buy's reference is the ask (10.20), a sell's the bid (10.19).
    clock.at = datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
    factories.quote("600000.SH", prev_close="10.00", last="10.20", bid="10.19", ask="10.20")
    # o3 alpha sells 1,500 of yesterday's 2,000 (T+1: sellable today) at 10.18 = 15,270.00;
    # commission max(5, 3.8175) = 5.00, stamp duty 7.635 -> 7.64, transfer 0.1527 -> 0.15; fees 12.79.
    # Cost of the shares sold: 20,005.20 x 1,500 / 2,000 = 15,003.90; realised 15,270.00 - 12.79 - 15,003.90 = 253.31.
    # Slippage (sell): (10.19 - 10.18) x 1,500 = 15.00.
    orders["o3"] = submit("acc1", "o3", "SELL", 1500, "10.15", "alpha")
    fill(script, orders["o3"], 1500, "10.18", "5.00", "0.15", stamp_duty="7.64")
    # o1 alpha buys 1,000 (limit 10.25), filled 600 at 10.21 = 6,126.00 (commission 5.00, transfer 0.06)
    # then 400 at 10.22 = 4,088.00 (commission max(5, 2.5535) - 5 = 0.00, transfer 0.04); fees 5.10.
    # Slippage: 0.01 x 600 + 0.02 x 400 = 14.00.
    orders["o1"] = submit("acc1", "o1", "BUY", 1000, "10.25", "alpha")
    clock.advance(60)
    fill(script, orders["o1"], 600, "10.21", "5.00", "0.06")
    clock.advance(240)
    fill(script, orders["o1"], 400, "10.22", "0.00", "0.04")
    # o2 beta buys 500 at 10.18: 200 fill at 10.18 = 2,036.00 (commission 5.00, transfer 0.02036 -> 0.02;
    # fees 5.02), then it is cancelled. Slippage: (10.18 - 10.20) x 200 = -4.00 (better than the ask).
    orders["o2"] = submit("acc1", "o2", "BUY", 500, "10.18", "beta")
    fill(script, orders["o2"], 200, "10.18", "5.00", "0.02")
    order_cancel(order_id=orders["o2"].pk, actor=API)
    # o4 alpha buys 300 at 10.00 and is cancelled before any fill.
    orders["o4"] = submit("acc1", "o4", "BUY", 300, "10.00", "alpha")
    order_cancel(order_id=orders["o4"].pk, actor=API)
    # o5: acc2's alpha buys 100 at 10.20 = 1,020.00 (commission 5.00, transfer 0.0102 -> 0.01; fees 5.01).
    orders["o5"] = submit("acc2", "o5", "BUY", 100, "10.20", "alpha")
    fill(script2, orders["o5"], 100, "10.20", "5.00", "0.01")
    # The day closes at 10.30: the price the day's held buys are valued at.
    factories.quote("600000.SH", prev_close="10.00", last="10.30", bid="10.29", ask="10.30")
    Quote.objects.filter(instrument__code="600000").update(trading_day=DAY2)
    for name, order in orders.items():
        orders[name] = Order.objects.get(pk=order.pk)
    return orders


def test_intake_records_the_reference_price_it_read(days: dict[str, Order]) -> None:
    assert days["y1"].reference_price == D("10.00")  # day 1's ask
    assert days["o1"].reference_price == D("10.20")  # a buy: the ask
    assert days["o3"].reference_price == D("10.19")  # a sell: the bid
    assert [o.status for o in (days["o1"], days["o2"], days["o3"], days["o4"], days["o5"])] == [
        OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.FILLED]
    assert Fill.objects.get(order=days["o3"]).realized_pnl == D("253.31")


def test_the_migration_takes_existing_fills_realised_pnl_from_the_audit_log(days: dict[str, Order]) -> None:
    from importlib import import_module

    from django.apps import apps as global_apps

    Fill.objects.update(realized_pnl=D("0"))
    import_module("orders.migrations.0007_reference_price_realized_pnl").realized_from_audit(global_apps, None)
    assert Fill.objects.get(order=days["o3"]).realized_pnl == D("253.31")  # the one sell
    assert set(Fill.objects.exclude(order=days["o3"]).values_list("realized_pnl", flat=True)) == {D("0.00")}


def test_the_daily_report_matches_the_figures_computed_by_hand(days: dict[str, Order]) -> None:
    report = daily_trading(day=DAY2)
    rows = {(row.account, row.strategy): row for row in report.rows}
    assert set(rows) == {("acc1", "alpha"), ("acc1", "beta"), ("acc2", "alpha")}  # day 1's y1 is not in it

    alpha = rows["acc1", "alpha"]
    assert alpha.orders == {OrderStatus.FILLED: 2, OrderStatus.CANCELLED: 1}
    assert (alpha.fills, alpha.filled_quantity) == (3, 2500)
    assert alpha.turnover == D("25484.00")  # 15,270 + 6,126 + 4,088
    assert (alpha.commission, alpha.stamp_duty, alpha.transfer_fee, alpha.other_fees) == (
        D("10.00"), D("7.64"), D("0.25"), D("0.00"))  # 5 + 5 + 0; 7.64; 0.15 + 0.06 + 0.04
    assert alpha.fees == D("17.89")  # 12.79 + 5.10
    assert alpha.realized_pnl == D("253.31")
    assert alpha.unrealized_pnl == D("80.90")  # o1's 1,000 shares at 10.30 - (10,214.00 + 5.10)
    assert alpha.slippage == D("29.00")  # 15.00 + 14.00
    assert alpha.slippage_bps == D("11.38")  # 29 / (10.19 x 1,500 + 10.20 x 1,000 = 25,485) = 11.379 bp

    beta = rows["acc1", "beta"]
    assert beta.orders == {OrderStatus.CANCELLED: 1}
    assert (beta.fills, beta.turnover, beta.fees, beta.realized_pnl) == (1, D("2036.00"), D("5.02"), D("0.00"))
    assert beta.unrealized_pnl == D("18.98")  # 200 x 10.30 - (2,036.00 + 5.02)
    assert (beta.slippage, beta.slippage_bps) == (D("-4.00"), D("-19.61"))  # -4 / 2,040 = -19.608 bp

    other = rows["acc2", "alpha"]
    assert (other.turnover, other.fees, other.unrealized_pnl, other.slippage) == (D("1020.00"), D("5.01"), D("4.99"), D("0"))

    accounts = {row.account: row for row in report.by_account}
    assert accounts["acc1"].orders == {OrderStatus.FILLED: 2, OrderStatus.CANCELLED: 2}
    assert (accounts["acc1"].turnover, accounts["acc1"].fees) == (D("27520.00"), D("22.91"))
    assert (accounts["acc1"].realized_pnl, accounts["acc1"].unrealized_pnl) == (D("253.31"), D("99.88"))
    strategies = {row.strategy: row for row in report.by_strategy}
    assert strategies["alpha"].orders == {OrderStatus.FILLED: 3, OrderStatus.CANCELLED: 1}
    assert (strategies["alpha"].turnover, strategies["alpha"].fees) == (D("26504.00"), D("22.90"))
    assert (strategies["alpha"].unrealized_pnl, strategies["alpha"].slippage_bps) == (D("85.89"), D("10.94"))  # 29 / 26,505

    total = report.total
    assert (total.order_count, total.fills, total.filled_quantity) == (5, 5, 2800)
    assert (total.turnover, total.commission, total.stamp_duty, total.transfer_fee, total.fees) == (
        D("28540.00"), D("20.00"), D("7.64"), D("0.28"), D("27.92"))
    assert (total.realized_pnl, total.unrealized_pnl, total.slippage) == (D("253.31"), D("104.87"), D("25.00"))
    assert total.slippage_bps == D("8.76")  # 25 / 28,545
    assert report.marks == {"600000.SH": D("10.30")}

    one = daily_trading(day=DAY2, account="acc2")
    assert [(row.account, row.strategy) for row in one.rows] == [("acc2", "alpha")]


def test_without_a_quote_of_the_day_the_days_last_fill_prices_the_held_buys(days: dict[str, Order]) -> None:
    Quote.objects.update(trading_day=DAY2 + timedelta(days=7))
    report = daily_trading(day=DAY2)
    assert report.marks == {"600000.SH": D("10.20")}  # o5's fill, the day's last
    # o1: 1,000 x 10.20 - 10,219.10 = -19.10; o2: 200 x 10.20 - 2,041.02 = -1.02; o5: 1,020 - 1,025.01 = -5.01.
    assert report.total.unrealized_pnl == D("-25.13")


def test_strategy_effectiveness_matches_the_figures_computed_by_hand(days: dict[str, Order]) -> None:
    report = strategy_effectiveness(since=DAY1, until=DAY2)
    alpha1, alpha2 = report.days["alpha"]
    assert (alpha1.day, alpha1.orders, alpha1.fill_rate, alpha1.turnover, alpha1.fees) == (
        DAY1, 1, D("1.0000"), D("20000.00"), D("5.20"))
    assert (alpha1.realized_pnl, alpha1.win_rate, alpha1.slippage_bps) == (D("0.00"), None, D("0.00"))
    # Day 2: o3, o1, o4 (acc1) and o5 (acc2): 2,900 ordered, 2,600 filled.
    assert (alpha2.orders, alpha2.ordered_quantity, alpha2.filled_quantity, alpha2.fill_rate) == (4, 2900, 2600, D("0.8966"))
    assert (alpha2.turnover, alpha2.fees, alpha2.realized_pnl, alpha2.cumulative_pnl) == (
        D("26504.00"), D("22.90"), D("253.31"), D("253.31"))
    assert (alpha2.round_trips, alpha2.wins, alpha2.win_rate) == (1, 1, D("1.0000"))  # o3 realised 253.31 > 0
    assert alpha2.slippage_bps == D("10.94")
    total = report.totals["alpha"]
    assert (total.orders, total.fill_rate, total.turnover, total.fees) == (5, D("0.9388"), D("46504.00"), D("28.10"))  # 4,600/4,900
    assert (total.realized_pnl, total.drawdown, total.slippage_bps) == (D("253.31"), D("0.00"), D("6.24"))  # 29 / 46,505
    [beta] = report.days["beta"]
    assert (beta.day, beta.orders, beta.fill_rate, beta.turnover, beta.fees) == (DAY2, 1, D("0.4000"), D("2036.00"), D("5.02"))
    assert (beta.round_trips, beta.win_rate, beta.slippage_bps) == (0, None, D("-19.61"))

    chart = report.chart()
    assert chart["x"] == [datetime(2026, 11, 23, tzinfo=SHANGHAI).timestamp(), datetime(2026, 11, 24, tzinfo=SHANGHAI).timestamp()]
    assert chart["names"] == ["2026-11-23", "2026-11-24"]
    assert chart["series"] == [{"label": "alpha", "values": [0.0, 253.31]}, {"label": "beta", "values": [0.0, 0.0]}]


def test_max_drawdown_is_the_largest_fall_from_a_peak() -> None:
    # Cumulative 100, 70, 120, -30, -10; peaks 100, 100, 120, 120, 120; falls 0, 30, 0, 150, 130.
    cumulative, drawdowns, worst = max_drawdown([D("100"), D("-30"), D("50"), D("-150"), D("20")])
    assert cumulative == [D("100"), D("70"), D("120"), D("-30"), D("-10")]
    assert drawdowns == [D("0"), D("30"), D("0"), D("150"), D("130")]
    assert worst == D("150")
    # A loss from the start counts from 0: -50 then +20 falls 50 at most.
    assert max_drawdown([D("-50"), D("20")])[2] == D("50")


def xlsx_rows(path) -> list[list[str]]:
    """A workbook written by compliance/exports.py as rows of text."""
    sheet = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    return [re.findall(r"<t xml:space=\"preserve\">(.*?)</t>|<v>(.*?)</v>", row) for row in re.findall(r"<row>(.*?)</row>", sheet)]


def test_the_commands_write_csv_and_excel_that_read_back(days: dict[str, Order], tmp_path) -> None:
    out = tmp_path / "daily.csv"
    call_command("report_daily", "--day", "2026-11-24", "--format", "csv", "--output", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    total = next(row for row in rows if row["level"] == "total")
    assert (total["turnover"], total["fees"], total["realized pnl"], total["unrealized pnl"], total["slippage"]) == (
        "28540.00", "27.92", "253.31", "104.87", "25.00")
    assert (total["orders FILLED"], total["orders CANCELLED"], total["orders"]) == ("3", "2", "5")
    alpha = next(row for row in rows if (row["level"], row["account"], row["strategy"]) == ("account+strategy", "acc1", "alpha"))
    assert (alpha["stamp duty"], alpha["slippage bps"]) == ("7.64", "11.38")

    book = tmp_path / "daily.xlsx"
    call_command("report_daily", "--day", "2026-11-24", "--account", "acc1", "--format", "xlsx", "--output", str(book))
    sheet = xlsx_rows(book)
    header = [text or number for text, number in sheet[0]]
    total_row = [text or number for text, number in sheet[-1]]
    assert total_row[0] == "total" and total_row[header.index("turnover")] == "27520.00"

    out = tmp_path / "strategies.csv"
    call_command("report_strategy", "--since", "2026-11-23", "--until", "2026-11-24", "--format", "csv", "--output", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [(row["strategy"], row["day"], row["realized pnl"], row["fill rate"]) for row in rows] == [
        ("alpha", "2026-11-23", "0.00", "1.0000"), ("alpha", "2026-11-24", "253.31", "0.8966"),
        ("alpha", "total", "253.31", "0.9388"), ("beta", "2026-11-24", "0.00", "0.4000"), ("beta", "total", "0.00", "0.4000")]
    book = tmp_path / "strategies.xlsx"
    call_command("report_strategy", "--since", "2026-11-23", "--until", "2026-11-24", "--format", "xlsx", "--output", str(book))
    assert [[text or number for text, number in row][:2] for row in xlsx_rows(book)[1:]] == [
        ["alpha", "2026-11-23"], ["alpha", "2026-11-24"], ["alpha", "total"], ["beta", "2026-11-24"], ["beta", "total"]]


def test_the_commands_refuse_bad_input_naming_it(transactional_db) -> None:
    with pytest.raises(CommandError, match="--day"):
        call_command("report_daily", "--day", "2026-13-01")
    with pytest.raises(CommandError, match="--account"):
        call_command("report_daily", "--day", "2026-11-24", "--account", "nobody")
    with pytest.raises(CommandError, match="--until"):
        call_command("report_strategy", "--since", "2026-11-24", "--until", "2026-11-23")
    with pytest.raises(CommandError, match="--output"):
        call_command("report_strategy", "--since", "2026-11-24", "--format", "xlsx")


@pytest.fixture
def roles(transactional_db) -> None:
    from staff.roles import roles_sync

    roles_sync()


def test_the_report_pages_show_the_figures_to_compliance(days: dict[str, Order], roles: None) -> None:
    client = verified_client(staff_member("li.compliance", "Compliance"))
    page = client.get("/admin/compliance/compliancelog/reports/daily/", {"day": "2026-11-24"})
    assert page.status_code == 200
    text = page.content.decode()
    total = text[text.index('id="by-strategy"'):]
    total = total[total.index('class="total"'):]
    assert '<td class="realized">253.31</td>' in total and '<td class="unrealized">104.87</td>' in total
    assert 'id="report-chart-data"' in text and "uPlot.iife.min.js" in text
    page = client.get("/admin/compliance/compliancelog/reports/strategies/", {"since": "2026-11-23", "until": "2026-11-24"})
    assert page.status_code == 200
    assert '<tbody data-strategy="alpha">' in page.content.decode()
    # A bad date is named on the page, not a 500.
    page = client.get("/admin/compliance/compliancelog/reports/daily/", {"day": "24/11/2026"})
    assert page.status_code == 200 and "24/11/2026" in page.content.decode()


@pytest.mark.parametrize("role,allowed", [("Operator", False), ("Risk manager", False), ("Compliance", True),
                                          ("Administrator", True)])
def test_only_roles_that_read_reports_open_the_pages(role: str, allowed: bool, roles: None) -> None:
    client = verified_client(staff_member(role.lower().replace(" ", "_"), role))
    for url in ("/admin/compliance/compliancelog/reports/daily/", "/admin/compliance/compliancelog/reports/strategies/"):
        status = client.get(url).status_code
        assert status == (200 if allowed else 403), (role, url, status)


def test_a_huge_range_is_summed_by_the_database_not_loaded(days: dict[str, Order], monkeypatch: pytest.MonkeyPatch) -> None:
    # 300 more days of orders and fills: the report's queries stay the same few, and no Order or Fill
    # row is ever built in Python (everything arrives summed, or streamed as tuples).
    account, instrument = Account.objects.get(name="acc1"), Instrument.objects.get(code="600000")
    extra = Order.objects.bulk_create(
        Order(account=account, instrument=instrument, client_order_id=f"bulk-{n}", strategy="gamma", side="SELL",
              order_type="LIMIT", price=D("10.00"), reference_price=D("10.00"), quantity=100, filled_quantity=100,
              filled_amount=D("1000.00"), status=OrderStatus.FILLED, trading_day=date(2025, 1, 1) + timedelta(days=n))
        for n in range(300))
    Fill.objects.bulk_create(
        Fill(order=order, broker_trade_id=f"B{order.pk}", quantity=100, price=D("10.00"), amount=D("1000.00"),
             realized_pnl=D("1.00") if n % 2 else D("-1.00"), filled_at=datetime(2025, 1, 1, 2, tzinfo=SHANGHAI),
             trading_day=order.trading_day)
        for n, order in enumerate(extra))

    def refuse(*args, **kwargs):
        raise AssertionError("a report built a model row")

    with CaptureQueriesContext(connection) as small:
        strategy_effectiveness(since=DAY1, until=DAY2)
    monkeypatch.setattr(Order, "from_db", classmethod(refuse))
    monkeypatch.setattr(Fill, "from_db", classmethod(refuse))
    with CaptureQueriesContext(connection) as huge:
        report = strategy_effectiveness(since=date(1990, 1, 1), until=date(2200, 12, 31))
    assert len(huge.captured_queries) == len(small.captured_queries) <= 4
    gamma = report.totals["gamma"]
    assert (len(report.days["gamma"]), gamma.orders, gamma.round_trips, gamma.wins) == (300, 300, 300, 150)
    assert gamma.realized_pnl == D("0.00") and gamma.drawdown == D("1.00")  # -1, +1, -1, ...: never more than 1 below 0
    with CaptureQueriesContext(connection) as daily:
        daily_trading(day=DAY2)
    assert len(daily.captured_queries) <= 6  # orders, fills, held buys, instruments, quotes, last fills
