"""The compliance report (issue 12): abnormal trading per account and trading day, and holdings near
the 5% stake line, over a date range. The figures are orders/activity.py's, the ones the live
monitors (monitoring/monitors.py, issue 11) alert on; definitions in docs/compliance-reports.md,
"Compliance report". Written as CSV or Excel with compliance/exports.py, like the risk report.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from orders.activity import AccountDay, Stake, account_days, stakes_at_least
from risk.rules.max_issuer_share_ratio import MaxIssuerShareRatioParams
from trading.market_rules import HF_WARN_SHARE_DEFAULT, hf_warn_at

# The shares the report marks: the exchanges' high-frequency lines' warning share and the stake
# rule's warning line (risk/rules/max_issuer_share_ratio.py), at their defaults.
WARN_SHARE = HF_WARN_SHARE_DEFAULT
STAKE_SHARE = MaxIssuerShareRatioParams().warn_ratio

DAY_COLUMNS = ["section", "day", "account", "orders", "cancels", "orders_plus_cancels", "day_line", "day_share",
               "peak_second", "peak_second_at", "second_line", "second_share", "near_hf_line", "instant_cancels",
               "cancel_ratio", "filled_orders", "fill_rate", "closing_call_orders", "self_trade_refused",
               "self_trade_held", "self_trade_warned", "restricted_refused", "restricted_held", "restricted_warned"]
STAKE_COLUMNS = ["section", "holder", "control_group", "symbol", "quantity", "total_shares", "ratio"]


@dataclass
class ComplianceReport:
    since: date
    until: date
    account: str = ""
    days: list[AccountDay] = field(default_factory=list)
    stakes: list[Stake] = field(default_factory=list)  # now: positions have no history
    warn_share: Decimal = WARN_SHARE
    stake_share: Decimal = STAKE_SHARE

    def near_line(self, figures: AccountDay) -> bool:
        """Whether the account's busiest second or its day reached the warning share of a line."""
        return (figures.peak_second_count >= hf_warn_at(figures.line_per_second, self.warn_share)
                or figures.order_actions >= hf_warn_at(figures.line_per_day, self.warn_share))

    def rows(self) -> Iterator[list[Any]]:
        """The report as rows, for CSV or Excel: a header and one row per account and day, then a
        header and one row per stake (both start with their section's name)."""
        yield DAY_COLUMNS
        for f in self.days:
            yield ["day", f.day.isoformat(), f.account, f.orders, f.cancels, f.order_actions, f.line_per_day,
                   str(f.day_share), f.peak_second_count, f.peak_second_at, f.line_per_second, str(f.second_share),
                   "yes" if self.near_line(f) else "no", f.instant_cancels, str(f.cancel_ratio), f.filled_orders,
                   str(f.fill_rate), f.closing_orders, f.self_trade["REJECT"], f.self_trade["REVIEW"],
                   f.self_trade["WARN"], f.restricted["REJECT"], f.restricted["REVIEW"], f.restricted["WARN"]]
        yield STAKE_COLUMNS
        for s in self.stakes:
            yield ["stake", s.holder, "yes" if s.is_group else "no", s.symbol, s.quantity, s.total_shares, str(s.ratio)]


def compliance_report(*, since: date, until: date, account: str = "") -> ComplianceReport:
    """The figures of the trading days ``since``..``until`` (inclusive), of ``account`` alone when
    given, and the holdings now at or above the stake warning line."""
    return ComplianceReport(since, until, account, account_days(since=since, until=until, account=account or None),
                            stakes_at_least(share=STAKE_SHARE, account=account or None))


# The bars start at x 240, 4 px a percent, 28 px a row, below a 16 px band for the axis labels.
CHART_LEFT, CHART_SCALE, CHART_ROW, CHART_TOP = 240, 4, 28, 16


@dataclass(frozen=True)
class ChartBar:
    """One account-day of the page's chart: its busiest second and its day as a percentage of the
    high-frequency lines (the bars' lengths capped at 100%)."""

    label: str
    y: int
    second_percent: Decimal
    day_percent: Decimal
    near_line: bool

    @property
    def second_width(self) -> int:
        return int(min(self.second_percent, Decimal(100)) * CHART_SCALE)

    @property
    def day_width(self) -> int:
        return int(min(self.day_percent, Decimal(100)) * CHART_SCALE)


@dataclass(frozen=True)
class Chart:
    bars: list[ChartBar]
    height: int
    width: int
    left: int
    warn_x: int
    full: int = 100 * CHART_SCALE  # the length of a bar at 100% of a line
    top: int = CHART_TOP

    @property
    def right(self) -> int:
        return self.left + self.full


def compliance_chart(report: ComplianceReport) -> Chart:
    """The page's chart: one pair of bars per account and day, a dashed line at the warning share."""
    bars = [ChartBar(f"{f.day.isoformat()} {f.account}", CHART_TOP + index * CHART_ROW, (f.second_share * 100).quantize(Decimal("0.1"), ROUND_HALF_UP),
                     (f.day_share * 100).quantize(Decimal("0.1"), ROUND_HALF_UP), report.near_line(f)) for index, f in enumerate(report.days)]
    return Chart(bars, CHART_TOP + max(len(bars), 1) * CHART_ROW, CHART_LEFT + 100 * CHART_SCALE + 20, CHART_LEFT,
                 CHART_LEFT + int(report.warn_share * 100 * CHART_SCALE))
