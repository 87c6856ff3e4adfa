"""Post-trade protection: drawdown from the day's peak of assets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy
from pydantic import model_validator

from risk.rules.base import FILL, POST_TRADE, Money, ProtectionState, Ratio, Rule, RuleParams, money, pct, ratio_of
from risk.verdicts import Verdict
from trading.i18n import bilingual
from trading.models import TradingState

if TYPE_CHECKING:
    from risk.post_trade import PostTradeState


class MaxDrawdownParams(RuleParams):
    max_amount: Money | None = None
    max_ratio: Ratio | None = None
    target_state: ProtectionState = TradingState.REDUCING

    @model_validator(mode="after")
    def _one_given(self) -> MaxDrawdownParams:
        if self.max_amount is None and self.max_ratio is None:
            raise ValueError(bilingual("give max_amount and/or max_ratio"))
        return self


class MaxDrawdown(Rule[MaxDrawdownParams]):
    """After a fill: once assets have fallen from the day's peak (the highest seen at the start of the
    day or at a fill) by ``max_amount`` or ``max_ratio`` of the peak or more, moves the account to
    ``target_state`` (default REDUCING) with a critical RiskEvent. With action WARN it only alerts."""

    code = "max_drawdown"
    title = gettext_lazy("maximum intraday drawdown (automatic trading restriction)")
    category = "protection"
    params_model = MaxDrawdownParams
    phase = POST_TRADE
    trigger = FILL
    generous_params = {"max_ratio": "1"}

    def evaluate(self, state: PostTradeState) -> Verdict | None:
        drawdown, peak = state.drawdown, state.peak_assets
        limits = []
        if self.params.max_amount is not None:
            limits.append(self.params.max_amount)
        if self.params.max_ratio is not None:
            limits.append(self.params.max_ratio * peak)
        limit = min(limits)
        values = {"drawdown": drawdown, "peak_assets": peak, "limit": limit, "drawdown_ratio": ratio_of(drawdown, peak),
                  "target_state": self.params.target_state}
        if drawdown > 0 and drawdown >= limit:
            return self.fail(bilingual("drawdown from today's peak {money_drawdown} reached the limit {money_limit}; account moves to {target_state}", money_drawdown=money(drawdown), pct_ratio_of=pct(ratio_of(drawdown, peak)), money_limit=money(limit), target_state=self.params.target_state), **values)
        return None
