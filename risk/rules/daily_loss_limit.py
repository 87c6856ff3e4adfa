"""Post-trade protection: the day's loss (realized + unrealized)."""

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


class DailyLossLimitParams(RuleParams):
    max_loss_amount: Money | None = None
    max_loss_ratio: Ratio | None = None
    target_state: ProtectionState = TradingState.REDUCING

    @model_validator(mode="after")
    def _one_given(self) -> DailyLossLimitParams:
        if self.max_loss_amount is None and self.max_loss_ratio is None:
            raise ValueError(bilingual("give max_loss_amount and/or max_loss_ratio"))
        return self


class DailyLossLimit(Rule[DailyLossLimitParams]):
    """After a fill: once today's loss (start-of-day assets + net deposits - assets now, see
    ``risk.post_trade``) REACHES ``max_loss_amount`` or ``max_loss_ratio`` of start-of-day assets
    plus today's net deposits,
    moves the account to ``target_state`` (default REDUCING) with a critical RiskEvent. With action
    WARN it only raises the event."""

    code = "daily_loss_limit"
    title = gettext_lazy("daily loss limit (automatic trading restriction)")
    category = "protection"
    params_model = DailyLossLimitParams
    phase = POST_TRADE
    trigger = FILL
    generous_params = {"max_loss_ratio": "1"}

    def evaluate(self, state: PostTradeState) -> Verdict | None:
        loss, base = -state.pnl, state.capital_base
        limits = []
        if self.params.max_loss_amount is not None:
            limits.append(self.params.max_loss_amount)
        if self.params.max_loss_ratio is not None:
            limits.append(self.params.max_loss_ratio * base)
        limit = min(limits)
        values = {"loss": loss, "start_assets": state.start_assets, "capital_base": base, "assets": state.assets,
                  "limit": limit, "loss_ratio": ratio_of(loss, base), "target_state": self.params.target_state}
        if loss > 0 and loss >= limit:
            return self.fail(bilingual("today's loss {money_loss} reached the limit {money_limit}; account moves to {target_state}", money_loss=money(loss), pct_ratio_of=pct(ratio_of(loss, base)), money_limit=money(limit), target_state=self.params.target_state),
                             **values)
        return None
