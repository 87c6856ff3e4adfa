"""Shared logic of the two programme-trading rate rules (orders plus cancels).

MARKET_RULES "Programme trading and surveillance": an account is high-frequency
once its orders plus cancels reach 300 in one second or 20,000 in one day
(``market_rules.hf_orders_per_second/day``). For an account not registered as
high-frequency the default limit stops it one short of the line, and a warning
is raised from ``warn_ratio`` (default 65%) of the line on.
"""

from __future__ import annotations

from risk.rules.base import Count, PositiveDecimal, Rule, RuleParams
from risk.verdicts import Verdict
from trading.i18n import bilingual
from trading.market_rules import HF_WARN_SHARE_DEFAULT, hf_warn_at


class ProgrammeRateParams(RuleParams):
    # Largest count (orders + cancels, this order included) that passes. Default: one below the
    # exchange line for accounts not registered as high-frequency; no limit for registered ones.
    limit: Count | None = None
    # Warn once the count reaches this share of the exchange line (not for registered accounts).
    warn_ratio: PositiveDecimal = HF_WARN_SHARE_DEFAULT


def programme_verdict(rule: Rule[ProgrammeRateParams], *, count_after: int, line: int, registered: bool,
                      zh_unit: str, en_unit: str) -> Verdict:
    params = rule.params
    limit = params.limit if params.limit is not None else (None if registered else line - 1)
    warn_at = hf_warn_at(line, params.warn_ratio)
    values = {"count_after": count_after, "limit": limit, "warn_at": warn_at, "line": line, "registered_hf": registered}
    if limit is not None and count_after > limit:
        return rule.fail(bilingual("{count_after} orders plus cancels {en_unit} exceed the limit {limit}; the high-frequency line is {line}", zh_unit=zh_unit, count_after=count_after, limit=limit, line=line, en_unit=en_unit),
                         **values)
    if not registered and count_after >= warn_at:
        return rule.warn(bilingual("{count_after} orders plus cancels {en_unit} reached {warn_percent}% of the high-frequency line {line}", zh_unit=zh_unit, count_after=count_after, line=line, warn_percent=params.warn_ratio * 100, en_unit=en_unit), **values)
    return rule.ok(**values)
