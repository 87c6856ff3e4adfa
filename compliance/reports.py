"""Reports for compliance (issue 12 item 5). So far: risk control's effectiveness over a date range.

Risk effectiveness: for the orders of the trading days ``since..until`` (each order's verdicts are
stored with it: ``Order.risk_verdicts``, one per enabled rule, the latest check's), how often each
rule failed and with which action; how many orders were held for review, refused by risk control,
approved, rejected or overridden by operators (from the audit log), per operator; and what became
of the overridden orders (their status now, what they filled).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from audit.models import AuditEvent
from orders.models import Order
from trading.calendar import SHANGHAI


@dataclass
class RuleFigures:
    rule: str
    checked: int = 0  # orders with a verdict of this rule
    failed: int = 0
    by_action: Counter[str] = field(default_factory=Counter)  # failed verdicts by the rule's action

    @property
    def actions(self) -> list[tuple[str, int]]:
        return sorted(self.by_action.items())

    @property
    def failure_rate(self) -> float:
        return self.failed / self.checked if self.checked else 0.0


@dataclass
class OverriddenOrder:
    order_id: int
    account: str
    symbol: str
    side: str
    quantity: int
    operator: str
    reason: str
    rules: list[str]
    status: str  # now
    filled_quantity: int
    filled_amount: Decimal


@dataclass
class RiskReport:
    since: date
    until: date
    orders: int = 0
    rules: list[RuleFigures] = field(default_factory=list)
    held: int = 0  # orders held for an operator (RISK_HELD)
    refused: int = 0  # refused by risk control (RISK_REJECTED), at entry or on an approval's re-check
    decisions: dict[str, Counter[str]] = field(default_factory=dict)  # operator -> approved / rejected / overridden
    overridden: list[OverriddenOrder] = field(default_factory=list)

    @property
    def overridden_outcomes(self) -> Counter[str]:
        return Counter(order.status for order in self.overridden)

    def rows(self) -> Iterator[list[Any]]:
        """The report as rows (section, key, figures...), for CSV or Excel."""
        yield ["section", "key", "value 1", "value 2", "value 3", "value 4"]
        yield ["range", f"{self.since}..{self.until}", self.orders, "", "", ""]
        for rule in self.rules:
            yield ["rule", rule.rule, rule.checked, rule.failed, f"{rule.failure_rate:.4f}",
                   ", ".join(f"{action}={n}" for action, n in rule.actions)]
        yield ["orders", "held for review", self.held, "", "", ""]
        yield ["orders", "refused by risk control", self.refused, "", "", ""]
        for operator, counts in sorted(self.decisions.items()):
            yield ["operator", operator, counts["approved"], counts["rejected"], counts["overridden"], ""]
        for status, n in sorted(self.overridden_outcomes.items()):
            yield ["overridden, now", status, n, "", "", ""]
        for order in self.overridden:
            yield ["overridden order", order.order_id, f"{order.account} {order.side} {order.quantity} {order.symbol}",
                   f"{order.operator}: {order.reason}", ",".join(order.rules),
                   f"{order.status} filled {order.filled_quantity} ({order.filled_amount})"]


def risk_effectiveness(*, since: date, until: date) -> RiskReport:
    """Risk control's figures for the orders of trading days ``since``..``until`` (inclusive) and the
    operators' decisions made in those (Shanghai) days."""
    report = RiskReport(since, until)
    orders = Order.objects.filter(trading_day__gte=since, trading_day__lte=until)
    rules: dict[str, RuleFigures] = {}
    for verdicts in orders.values_list("risk_verdicts", flat=True).iterator(chunk_size=5000):
        report.orders += 1
        for verdict in verdicts or []:
            figures = rules.setdefault(str(verdict.get("rule", "")), RuleFigures(str(verdict.get("rule", ""))))
            figures.checked += 1
            if not verdict.get("passed"):
                figures.failed += 1
                figures.by_action[str(verdict.get("action", ""))] += 1
    report.rules = sorted(rules.values(), key=lambda r: (-r.failed, r.rule))

    start = datetime.combine(since, time(), SHANGHAI)
    end = datetime.combine(until + timedelta(days=1), time(), SHANGHAI)
    events = AuditEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end, object_type="order")
    decisions: dict[str, Counter[str]] = defaultdict(Counter)
    for after in events.filter(action="order.status_changed").values_list("after", flat=True).iterator(chunk_size=5000):
        event = (after or {}).get("event")
        if event == "RISK_HELD":
            report.held += 1
        elif event == "RISK_REJECTED":
            report.refused += 1
    for actor in events.filter(action="order.approved").values_list("actor", flat=True):
        decisions[actor]["approved"] += 1
    for actor in events.filter(action="order.status_changed", after__event="OPERATOR_REJECTED").values_list("actor", flat=True):
        decisions[actor]["rejected"] += 1
    overrides = list(events.filter(action="order.risk_overridden").order_by("id")
                     .values_list("object_id", "actor", "reason", "before"))
    for _, actor, _, _ in overrides:
        decisions[actor]["overridden"] += 1
    report.decisions = dict(decisions)
    by_id = Order.objects.select_related("account", "instrument").in_bulk([int(o[0]) for o in overrides if o[0].isdigit()])
    for object_id, actor, reason, before in overrides:
        order = by_id.get(int(object_id)) if object_id.isdigit() else None
        if order is None:
            continue
        report.overridden.append(OverriddenOrder(
            order.pk, order.account.name, order.instrument.symbol, order.side, order.quantity, actor, reason,
            [str(v.get("rule")) for v in (before or {}).get("verdicts", [])], order.status, order.filled_quantity,
            order.filled_amount))
    return report
