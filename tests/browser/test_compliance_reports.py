"""The compliance report pages in a real browser: each draws its uPlot chart without a script error.
Screenshots go to artifacts/screenshots/ (compliance-daily-report, compliance-strategy-report)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from orders.models import Fill, Order, OrderStatus
from staff.roles import roles_sync
from tests import factories
from tests.browser.conftest import log_in, screenshot
from tests.staff_helpers import staff_member

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def traded() -> None:
    """Two strategies' fills on two days, written straight to the tables (the figures are tested elsewhere)."""
    account, instrument = factories.account("acc1"), factories.instrument("600000.SH")
    for n, (day, strategy, side, price, pnl) in enumerate([(date(2026, 11, 23), "alpha", "BUY", "10.00", "0"),
                                                           (date(2026, 11, 24), "alpha", "SELL", "10.30", "290.00"),
                                                           (date(2026, 11, 24), "beta", "BUY", "10.21", "0")]):
        order = Order.objects.create(account=account, instrument=instrument, client_order_id=f"b-{n}", strategy=strategy,
                                     side=side, order_type="LIMIT", price=D(price), reference_price=D("10.20"), quantity=1000,
                                     filled_quantity=1000, filled_amount=D(price) * 1000, status=OrderStatus.FILLED,
                                     trading_day=day)
        Fill.objects.create(order=order, broker_trade_id=f"T{n}", quantity=1000, price=D(price), amount=D(price) * 1000,
                            fees=D("5.00"), commission=D("5.00"), realized_pnl=D(pnl), trading_day=day,
                            filled_at=datetime.combine(day, datetime.min.time(), ZoneInfo("Asia/Shanghai")))


@pytest.mark.parametrize("path,name", [("reports/daily/?day=2026-11-24", "compliance-daily-report"),
                                       ("reports/strategies/?since=2026-11-23&until=2026-11-24", "compliance-strategy-report")])
def test_the_report_pages_draw_their_charts(page, traded, path: str, name: str) -> None:
    roles_sync()
    member = staff_member("li.compliance", "Compliance")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, member)
    page.goto(f"/admin/compliance/compliancelog/{path}")
    page.wait_for_selector("#report-chart .uplot canvas")
    assert page.locator("#report-chart .u-legend .u-series").count() >= 3  # x and a series per strategy or figure
    screenshot(page, name)
    assert errors == []
