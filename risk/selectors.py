"""Reads of risk control's configuration: rules and trading states."""

from __future__ import annotations

from risk.models import RiskControl, RiskRule
from trading.models import Account, TradingState


def risk_rule_list(*, account: Account | None = None) -> list[RiskRule]:
    """Every rule row (global and per account), or the global rows and those of ``account``."""
    rules = RiskRule.objects.select_related("account").order_by("code", "account__name")
    if account is not None:
        from django.db.models import Q

        rules = rules.filter(Q(account__isnull=True) | Q(account=account))
    return list(rules)


def trading_states() -> tuple[RiskControl | None, list[Account]]:
    """The global state's row (None until first set: ACTIVE) and the accounts not ACTIVE."""
    control = RiskControl.objects.filter(pk=RiskControl.SINGLETON_ID).first()
    accounts = list(Account.objects.exclude(trading_state=TradingState.ACTIVE).order_by("name"))
    return control, accounts
