"""The abnormal-trading monitors (monitoring.monitors.abnormal_trading) on the fixed day of
tests/abnormal_day.py, driven through the order services: each alert at its threshold, none below
it, and one alert per account and day however often the condition is seen."""

from __future__ import annotations

from decimal import Decimal

import pytest

from monitoring.models import Alert, AlertStatus, MonitorSetting
from monitoring.monitors import abnormal_trading, settings_cache_clear
from tests.abnormal_day import abnormal_day, at, submit

pytestmark = pytest.mark.django_db(transaction=True)


def open_alerts(code: str) -> list[Alert]:
    return list(Alert.objects.filter(code=code).exclude(status=AlertStatus.RESOLVED))


def setting(code: str, threshold: str, *, level: str = "WARNING", min_count: int | None = None) -> None:
    MonitorSetting.objects.update_or_create(code=code, defaults={"level": level, "threshold": Decimal(threshold),
                                                                 "min_count": min_count})
    settings_cache_clear()


@pytest.fixture
def day(script, clock):
    played = abnormal_day(script, clock)
    settings_cache_clear()
    yield played
    settings_cache_clear()


def test_the_defaults_see_the_self_trade_and_the_stake_and_nothing_else(day) -> None:
    # 10 orders plus cancels, 7 in one second: far below 65% of 300 / 20,000; 7 orders are fewer than
    # the fill rate's 50; 1 closing-call order is fewer than 20.
    assert abnormal_trading() == {"orders.self_trade": 1, "positions.stake_line": 1}
    [self_trade] = open_alerts("orders.self_trade")
    assert (self_trade.account, self_trade.level, self_trade.data) == ("acc1", "WARNING",
                                                                       {"attempts": 1, "by_action": {"REJECT": 1}})
    [stake] = open_alerts("positions.stake_line")
    assert stake.data == {"holder": "acc1", "group": False, "symbol": "600036.SH", "quantity": 460_000,
                          "total_shares": 10_000_000}
    assert "4.60%" in stake.title


def test_a_stake_below_the_configured_line_is_no_alert(day) -> None:
    setting("positions.stake_line", "0.047")  # the stake is 4.6%
    abnormal_trading()
    assert not open_alerts("positions.stake_line")
    setting("positions.stake_line", "0.046")
    abnormal_trading()
    assert len(open_alerts("positions.stake_line")) == 1


def test_a_control_group_is_alerted_as_one_holder(day) -> None:
    from tests import factories
    from trading.models import Account, Instrument, Position

    other = factories.account("acc2")
    Account.objects.filter(name__in=["acc1", "acc2"]).update(control_group="manager-A")
    Position.objects.filter(account__name="acc1", instrument__code="600036").update(quantity=230_000)
    Position.objects.create(account=other, instrument=Instrument.objects.get(code="600036"), quantity=230_000)
    abnormal_trading()
    [stake] = open_alerts("positions.stake_line")
    assert (stake.account, stake.data["holder"], stake.data["group"], stake.data["quantity"]) == ("", "manager-A", True, 460_000)


def test_the_high_frequency_lines_at_the_configured_share(day) -> None:
    setting("orders.hf_second", "0.03")  # 9 of 300: the busiest second had 7
    setting("orders.hf_day", "0.0006")  # 12 of 20,000: the day had 10
    abnormal_trading()
    assert not open_alerts("orders.hf_second") and not open_alerts("orders.hf_day")
    setting("orders.hf_second", "0.02", level="CRITICAL")  # 6 of 300
    setting("orders.hf_day", "0.0005")  # 10 of 20,000
    abnormal_trading()
    [second] = open_alerts("orders.hf_second")
    assert (second.level, second.data["count"], second.data["line"]) == ("CRITICAL", 7, 300)
    assert second.data["second"].startswith("2026-11-23T10:00:00") and "10:00:00" in second.title
    [whole_day] = open_alerts("orders.hf_day")
    assert (whole_day.data["count"], whole_day.data["line"]) == (10, 20_000)


def test_an_account_registered_as_high_frequency_is_not_warned(day) -> None:
    from trading.models import Account

    Account.objects.filter(name="acc1").update(is_high_frequency=True)
    setting("orders.hf_second", "0.02")
    abnormal_trading()
    assert not open_alerts("orders.hf_second")


def test_a_low_fill_rate_after_enough_orders(day) -> None:
    setting("orders.fill_rate", "0.15", min_count=8)  # 1 of 7 filled (14%), but only 7 orders
    abnormal_trading()
    assert not open_alerts("orders.fill_rate")
    setting("orders.fill_rate", "0.14", min_count=7)  # 14.29% is not under 14%
    abnormal_trading()
    assert not open_alerts("orders.fill_rate")
    setting("orders.fill_rate", "0.15", min_count=7)
    abnormal_trading()
    [fill] = open_alerts("orders.fill_rate")
    assert fill.data == {"orders": 7, "filled": 1, "threshold": "0.1500"}


def test_closing_window_activity(day) -> None:
    setting("orders.closing_window", "2")
    abnormal_trading()
    assert not open_alerts("orders.closing_window")
    setting("orders.closing_window", "1")
    abnormal_trading()
    [closing] = open_alerts("orders.closing_window")
    assert closing.data == {"orders": 1}


def test_a_storm_counts_on_one_alert_per_account_and_day(day, clock) -> None:
    setting("orders.closing_window", "1")
    setting("orders.hf_second", "0.02")
    for n in range(10):  # ten more orders in the closing call, the monitors looking after each
        at(clock, 14, 59, n)
        submit(f"storm-{n}", price="9.80")
        abnormal_trading()
    [closing] = open_alerts("orders.closing_window")
    assert closing.occurrences == 10 and closing.data == {"orders": 11}
    [second] = open_alerts("orders.hf_second")
    assert second.occurrences == 10
    assert Alert.objects.filter(code="orders.self_trade").count() == 1


def test_the_periodic_check_runs_them(day) -> None:
    from monitoring.monitors import monitors_check

    assert monitors_check()["abnormal_trading"] == {"orders.self_trade": 1, "positions.stake_line": 1}


def test_disabled_monitors_raise_nothing(day) -> None:
    for code in ("orders.self_trade", "positions.stake_line"):
        MonitorSetting.objects.update_or_create(code=code, defaults={"level": "WARNING", "enabled": False})
    settings_cache_clear()
    assert abnormal_trading() == {}
    assert not Alert.objects.filter(code__in=["orders.self_trade", "positions.stake_line"]).exists()
