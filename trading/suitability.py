"""Investor suitability (投资者适当性): the trading permissions a broker account really has, the
owner's risk tolerance (C1-C5) and instruments' risk levels (R1-R5).

Pure functions over an account and an instrument already in memory: the order path calls them
with the locked account row, which carries the permissions and the cached tolerance, so the check
costs no query. The records behind them (grants, assessments) are written by ``trading.services``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _

from trading.market_rules import Board, InstrumentLike, Side, board_of, format_symbol


class TradingPermission(TextChoices):
    """A permission the broker grants an account beyond the main boards (开通权限)."""

    STAR = "STAR", _("STAR Market")
    CHINEXT = "CHINEXT", _("ChiNext")
    BSE = "BSE", _("Beijing Stock Exchange")
    RISK_WARNING = "RISK_WARNING", _("risk-warning (ST) stocks")
    DELISTING = "DELISTING", _("delisting-arrangement stocks")
    CONVERTIBLE_BOND = "CONVERTIBLE_BOND", _("convertible bonds")


ALL_PERMISSIONS: tuple[str, ...] = tuple(TradingPermission.values)

BOARD_PERMISSION: dict[str, str] = {
    Board.STAR: TradingPermission.STAR,
    Board.CHINEXT: TradingPermission.CHINEXT,
    Board.BSE: TradingPermission.BSE,
    Board.CONVERTIBLE_BOND: TradingPermission.CONVERTIBLE_BOND,
}


class RiskTolerance(TextChoices):
    """The owner's risk-tolerance category from the questionnaire (风险承受能力)."""

    C1 = "C1", "C1 保守型"
    C2 = "C2", "C2 谨慎型"
    C3 = "C3", "C3 稳健型"
    C4 = "C4", "C4 积极型"
    C5 = "C5", "C5 激进型"


class RiskLevel(TextChoices):
    """An instrument's risk level (产品风险等级)."""

    R1 = "R1", "R1 低风险"
    R2 = "R2", "R2 中低风险"
    R3 = "R3", "R3 中风险"
    R4 = "R4", "R4 中高风险"
    R5 = "R5", "R5 高风险"


# Default instrument risk levels by board, unless the instrument row sets its own (``risk_level``):
# what brokers commonly publish. ST and delisting-arrangement stocks are R5 on any board.
BOARD_RISK_LEVEL: dict[str, str] = {
    Board.MAIN: RiskLevel.R3,
    Board.FUND: RiskLevel.R3,
    Board.B_SHARE: RiskLevel.R4,
    Board.CHINEXT: RiskLevel.R4,
    Board.STAR: RiskLevel.R4,
    Board.BSE: RiskLevel.R4,
    Board.CONVERTIBLE_BOND: RiskLevel.R4,
}
DEFAULT_RISK_LEVEL = RiskLevel.R3
RISK_WARNING_LEVEL = RiskLevel.R5


def required_permissions(instrument: InstrumentLike) -> tuple[str, ...]:
    """The permissions an account needs to buy ``instrument``: its board's (STAR, ChiNext, BSE,
    convertible bonds), plus RISK_WARNING for an ST stock and DELISTING for one in its
    delisting-arrangement period. Main-board stocks, funds and B shares need none."""
    needed: list[str] = []
    board = board_of(instrument)
    if board in BOARD_PERMISSION:
        needed.append(BOARD_PERMISSION[board])
    if getattr(instrument, "delisting", False):
        needed.append(TradingPermission.DELISTING)
    elif getattr(instrument, "is_st", False):
        needed.append(TradingPermission.RISK_WARNING)
    return tuple(needed)


def missing_permission(permissions: Mapping[str, Any] | None, instrument: InstrumentLike, side: str) -> str | None:
    """The first permission ``instrument`` needs that ``permissions`` (code -> date granted) lacks,
    for a buy; None when the order may go. A sell is never refused here: the exchanges let an
    investor sell what they hold (shares received by conversion, a transfer, or bought before a
    permission was withdrawn)."""
    if side != Side.BUY:
        return None
    granted = permissions or {}
    for needed in required_permissions(instrument):
        if not granted.get(needed):
            return needed
    return None


def grants_parse(text: str) -> tuple[str, ...]:
    """Permission codes from a command line: comma-separated, any case, or ``all``. Unknown codes
    are passed on (``permissions_normalize`` refuses them with the list of known ones)."""
    codes = tuple(code.strip().upper() for code in text.split(",") if code.strip())
    return ALL_PERMISSIONS if codes == ("ALL",) else codes


def permission_label(code: str) -> str:
    try:
        return str(TradingPermission(code).label)
    except ValueError:
        return code


def permissions_normalize(raw: Mapping[str, Any], *, default_day: date) -> dict[str, str]:
    """``{code: "YYYY-MM-DD"}`` from codes mapped to a date, a date string or True (granted on
    ``default_day``); a falsy value drops the code. Raises ValueError for an unknown code or a bad date."""
    out: dict[str, str] = {}
    for code, value in raw.items():
        if code not in ALL_PERMISSIONS:
            raise ValueError(f"unknown trading permission {code!r}; known: {', '.join(ALL_PERMISSIONS)}")
        if not value:
            continue
        if value is True:
            out[code] = default_day.isoformat()
        elif isinstance(value, date):
            out[code] = value.isoformat()
        else:
            out[code] = date.fromisoformat(str(value)).isoformat()
    return dict(sorted(out.items()))


def instrument_risk_level(instrument: InstrumentLike) -> str:
    """The instrument's own ``risk_level`` when set, else R5 for ST/delisting, else its board's."""
    own = getattr(instrument, "risk_level", "")
    if own:
        return str(own)
    if getattr(instrument, "is_st", False) or getattr(instrument, "delisting", False):
        return RISK_WARNING_LEVEL
    return BOARD_RISK_LEVEL.get(board_of(instrument), DEFAULT_RISK_LEVEL)


@dataclass(frozen=True)
class SuitabilityGap:
    """Why an order does not suit the account's owner: ``reason`` is ``no_assessment``,
    ``expired`` or ``level``."""

    reason: str
    tolerance: str
    risk_level: str
    expires_on: date | None

    def describe(self, instrument: InstrumentLike) -> str:
        """The verdict's message, "中文 (English)"."""
        from trading.i18n import bilingual

        symbol = format_symbol(instrument.code, str(instrument.exchange))
        if self.reason == "no_assessment":
            return bilingual("the account owner has no risk-tolerance assessment; {symbol} is risk level {level}",
                             symbol=symbol, level=self.risk_level)
        if self.reason == "expired":
            return bilingual("the account owner's risk-tolerance assessment expired on {expires_on}", expires_on=self.expires_on)
        return bilingual("{symbol} is risk level {level}, above the account owner's risk tolerance {tolerance}",
                         symbol=symbol, level=self.risk_level, tolerance=self.tolerance)


def suitability_gap(*, tolerance: str, expires_on: date | None, instrument: InstrumentLike, today: date) -> SuitabilityGap | None:
    """None when the owner's tolerance (C1-C5, valid through ``expires_on``) covers the
    instrument's risk level (Cn covers R1..Rn); else why not."""
    level = instrument_risk_level(instrument)
    if not tolerance:
        return SuitabilityGap("no_assessment", "", level, None)
    if expires_on is not None and expires_on < today:
        return SuitabilityGap("expired", tolerance, level, expires_on)
    if int(level[1]) > int(tolerance[1]):
        return SuitabilityGap("level", tolerance, level, expires_on)
    return None


# The risk disclosure (风险揭示书) every API key's owner and every staff member acknowledges before
# first use. A new version (change the text, raise the version) must be acknowledged again.
RISK_DISCLOSURE_VERSION = "1"
RISK_DISCLOSURE_TEXT = """\
风险揭示书 (risk disclosure, version 1)
1. 证券交易存在市场风险、流动性风险和政策风险, 可能损失全部本金; 程序化交易可能因程序错误、
   网络或券商系统故障而放大损失。(Trading securities can lose all of the money invested; automated
   trading can multiply losses through program errors or failures of networks and brokers.)
2. 科创板、创业板、北交所、风险警示及退市整理股票、可转债波动更大, 只能在券商开通相应权限后买入。
   (STAR, ChiNext, BSE, ST and delisting-arrangement stocks and convertible bonds move more and may
   only be bought with the broker's permission.)
3. 本系统的风控规则不能消除风险; 程序化交易须遵守交易所的报告与异常交易监控规定。
   (The risk rules of this system do not remove risk; programme trading must follow the exchanges'
   reporting and surveillance rules.)
4. 所有操作均记录在审计日志中。(Every action is recorded in the audit log.)
"""
