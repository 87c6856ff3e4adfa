"""Post-trade protection: consecutive rejections by the broker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import POST_TRADE, REJECTION, Count, ProtectionState, Rule, RuleParams
from risk.verdicts import Verdict
from trading.i18n import bilingual
from trading.models import TradingState

if TYPE_CHECKING:
    from risk.post_trade import PostTradeState


class BrokerRejectionsParams(RuleParams):
    max_consecutive: Count = 5
    target_state: ProtectionState = TradingState.HALTED


class BrokerRejections(Rule[BrokerRejectionsParams]):
    """After a broker rejection: once the account's latest ``max_consecutive`` orders answered by the
    broker today were all rejected by it, moves the account to ``target_state`` (default HALTED) —
    something is wrong with the strategy or the connection. With action WARN it only alerts."""

    code = "broker_rejections"
    title = gettext_lazy("consecutive broker rejections (automatic halt)")
    category = "protection"
    params_model = BrokerRejectionsParams
    phase = POST_TRADE
    trigger = REJECTION
    generous_params = {"max_consecutive": 1000}

    def evaluate(self, state: PostTradeState) -> Verdict | None:
        limit = self.params.max_consecutive
        count = state.consecutive_rejections(limit)
        if count >= limit:
            return self.fail(bilingual("{count} consecutive broker rejections; account moves to {target_state}", count=count, target_state=self.params.target_state),
                             consecutive=count, max_consecutive=limit, target_state=self.params.target_state)
        return None
