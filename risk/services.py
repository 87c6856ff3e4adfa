"""Writes and use cases of risk control."""

from __future__ import annotations

from typing import Any

from risk.controller import RiskOutcome, risk_check_order


def risk_dry_run(data: Any) -> RiskOutcome:
    """Run every rule for an order without creating anything (POST /risk/check).

    The order is built and checked against the market rules as at intake, then
    the transaction is rolled back, so no row survives.
    """
    from orders.services import _build_order, account_by_name, order_check

    account = account_by_name(data.account)
    checked = order_check(data, account=account)
    order = _build_order(checked, actor=_dry_run_actor(), source="api")
    return risk_check_order(order, dry_run=True)


def _dry_run_actor():
    from audit.services import Actor

    return Actor.system("risk-dry-run")
