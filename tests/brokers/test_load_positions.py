"""`load_positions`: opening positions with cost and acquisition day, in the back office and the paper broker."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditEvent
from brokers.models import PaperPosition
from tests import factories
from trading.calendar import trading_day_of
from trading.models import Account, CashLedgerEntry, Position

pytestmark = pytest.mark.django_db(transaction=True)


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "positions.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def market(api):
    factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01", bid_volume=50000, ask_volume=50000)
    factories.quote("000001.SZ", prev_close="12.00", bid="11.99", ask="12.00")
    return api


def _sell(api, quantity: int, client_order_id: str, symbol: str = "600000.SH", price: str = "10.00"):
    return api.post("/orders", {"account": "acc1", "symbol": symbol, "side": "SELL", "order_type": "LIMIT",
                                "price": price, "quantity": quantity, "client_order_id": client_order_id})


def test_shares_acquired_before_today_are_sellable_and_the_paper_broker_fills_the_sell(market, tmp_path) -> None:
    today = trading_day_of(timezone.now())
    yesterday = today - timedelta(days=1)
    cash_rows = CashLedgerEntry.objects.count()
    out = StringIO()
    call_command("load_positions", "acc1", _csv(tmp_path, (
        "symbol,quantity,avg_cost,acquired\n"
        f"600000.SH,1000,9.50,{yesterday}\n"
        f"sh600000,500,10.20,{today}\n"
        f"000001.SZ,2000,11.00,{yesterday - timedelta(days=30)}\n"
    )), stdout=out)
    assert "600000.SH: 1500 shares, 1000 sellable today" in out.getvalue()

    position = Position.objects.get(account__name="acc1", instrument__code="600000")
    assert position.quantity == 1500 and position.cost_amount == Decimal("14600.00")  # 9,500 + 5,100
    book = PaperPosition.objects.get(account_name="acc1", symbol="600000.SH")
    assert (book.quantity, book.bought_today, book.bought_day, book.cost_amount) == (1500, 500, today, Decimal("14600.00"))
    assert CashLedgerEntry.objects.count() == cash_rows  # opening positions are not bought with today's cash

    # T+1: what was acquired today is not sellable; the rest is, and the broker agrees.
    refused = _sell(market, 1100, "s-too-many")
    assert refused.status_code == 422 and refused.json()["detail"][0]["rule"] == "sellable_quantity"
    sold = _sell(market, 1000, "s-ok")
    assert sold.status_code == 201, sold.content
    assert sold.json()["status"] == "FILLED", sold.json()  # the paper broker held the shares too
    assert market.get("/accounts/acc1/positions").json()[0]["quantity"] >= 500

    events = AuditEvent.objects.filter(action="position.opening_loaded")
    assert events.count() == 2
    event = events.get(object_id=str(position.pk))
    assert event.actor_type == "system" and event.actor.startswith("manage.py load_positions")
    assert event.after["quantity"] == 1500 and event.before["quantity"] == 0


def test_a_bad_file_is_refused_whole_naming_line_and_field(market, tmp_path) -> None:
    tomorrow = trading_day_of(timezone.now()) + timedelta(days=1)
    with pytest.raises(CommandError) as error:
        call_command("load_positions", "acc1", _csv(tmp_path, (
            "symbol,quantity,avg_cost,acquired\n"
            "600000.SH,1000,9.50,2026-01-05\n"
            "600000.SH,-5,9.50,2026-01-05\n"
            "000001.SZ,100,abc,2026-01-05\n"
            f"000001.SZ,100,1.00,{tomorrow}\n"
            "000001.SZ,100,1.00,05/01/2026\n"
            "12345,100,1.00,2026-01-05\n"
        )))
    message = str(error.value)
    for expected in ("line 3: quantity", "line 4: avg_cost", "line 5: acquired", "line 6: acquired must be a date", "(line 7)"):
        assert expected in message, message
    assert not Position.objects.exists() and not PaperPosition.objects.filter(quantity__gt=0).exists()
    assert not AuditEvent.objects.filter(action="position.opening_loaded").exists()


def test_unknown_account_and_unknown_symbol_are_refused(market, tmp_path) -> None:
    good = _csv(tmp_path, "symbol,quantity,avg_cost,acquired\n600000.SH,100,1.00,2026-01-05\n")
    with pytest.raises(CommandError, match="ghost"):
        call_command("load_positions", "ghost", good)
    with pytest.raises(CommandError, match="601988.SH"):
        call_command("load_positions", "acc1", _csv(tmp_path, "symbol,quantity,avg_cost,acquired\n601988.SH,100,1.00,2026-01-05\n"))


def test_loading_again_replaces_the_position_but_not_under_open_sells(market, tmp_path) -> None:
    yesterday = trading_day_of(timezone.now()) - timedelta(days=1)
    call_command("load_positions", "acc1", _csv(tmp_path, f"symbol,quantity,avg_cost,acquired\n600000.SH,3000,9.00,{yesterday}\n"))
    call_command("load_positions", "acc1", _csv(tmp_path, f"symbol,quantity,avg_cost,acquired\n600000.SH,2000,9.00,{yesterday}\n"))
    assert Position.objects.get(account__name="acc1").quantity == 2000
    assert PaperPosition.objects.get(account_name="acc1", symbol="600000.SH").quantity == 2000
    resting = _sell(market, 1000, "s-rest", price="10.50")  # above the bid: rests, holding 1000 shares
    assert resting.status_code == 201 and resting.json()["status"] in ("NEW", "SUBMITTED", "ACCEPTED"), resting.json()
    with pytest.raises(CommandError, match="open sells"):
        call_command("load_positions", "acc1", _csv(tmp_path, f"symbol,quantity,avg_cost,acquired\n600000.SH,500,9.00,{yesterday}\n"))
    assert Position.objects.get(account__name="acc1").quantity == 2000
    assert Account.objects.get(name="acc1").positions.count() == 1
