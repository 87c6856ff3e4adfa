"""The paper broker (模拟券商): a simulated broker that behaves like a real one.

Books
    It keeps its OWN books in ``brokers.models`` (PaperAccount, PaperPosition,
    PaperOrder, PaperTrade) and never reads the back office's Order/Position
    tables; reconciliation compares the two. State lives in the database, so
    it survives a restart and any adapter instance sees the same books. It
    reads the shared reference data (``trading.Instrument``), the simulated
    market (``trading.Quote``, written by ``brokers.services.quotes_publish``)
    and the account's configuration (``trading.Account``: ``fee_schedule``,
    ``session_mode``, ``broker_settings``) by account name.

Placing an order
    ``place_order`` validates like the exchange and the broker's counter would
    and refuses with ``BrokerError(message)``, the message being what a real
    broker shows (it ends up in the order's ``status_reason``), e.g.
    证券代码不存在, 该证券暂停交易, 非交易时间, 当前时段不允许市价委托, 该证券不支持
    市价委托, 委托数量不是100股的整数倍, 委托数量不足200股, 委托数量超过单笔最大申报
    数量, 零股须一次性卖出, 价格不符合最小价位, 委托价格超出涨跌停范围, 委托价格超出
    价格笼子范围, 可卖股份不足, 可用资金不足. A refused order is still recorded as
    a REJECTED order (废单) with its ``client_ref``, as a broker does, so an
    answer lost on the way back can be reconciled. The price-limit band comes
    from the Quote's ``prev_close`` (no quote / no prev_close: no band check;
    a market order then needs a protection price). An accepted buy freezes
    price × quantity + estimated fees (market buys: at the protection price,
    by default the limit up); a sell freezes the shares. T+1 is enforced from
    the broker's own positions (shares bought today are not sellable unless
    the instrument is ``t0``). The order is then matched at once.

Matching (``match_order``, used at placement and by ``quotes_publish``)
    A LIMIT buy fills at the ask when ask <= price, a sell at the bid when
    bid >= price; a MARKET order at the opposite side, never beyond its
    protection price. A fill takes at most the quoted volume on that side and
    consumes it (the Quote's ``ask_volume``/``bid_volume`` go down), so two
    orders never both take the same volume; the rest waits for the next quote.
    No ask (None/0 or no volume): a buy cannot fill (sealed limit up); no bid:
    a sell cannot fill. The quote carries one price level, so a market order
    behaves as best-5-then-cancel (最优五档即时成交剩余撤销) against that level:
    what the level does not fill is cancelled at once. Resting orders are
    matched in price-time priority when a quote arrives; only those the quote
    reaches are read (buys at or above the ask, sells at or below the bid,
    orders held outside the cage), so a quote costs what it can fill, not what
    rests. Nothing fills outside the day's price-limit band (from the quote's
    ``prev_close``), whatever the quote says. Fees per fill come
    from ``market_rules.fill_fees`` (commission minimum once per order). A buy
    fill releases the order's frozen cash in proportion to the quantity filled
    (all of the rest on the last fill or when the order ends).

Sessions (``trading.Account.session_mode``)
    ``always``: every moment is continuous trading and the trading day is the
    Asia/Shanghai calendar date; day orders expire when the date changes.
    ``real``: order entry, market orders and cancels follow
    ``trading.calendar`` (holidays, 09:15-15:00 phases); resting orders match
    in continuous trading and in the closing call (the call auctions are
    approximated by matching against the published quote); day orders expire
    at 15:00 of their trading day. Expiry is applied lazily, before any call
    reads or changes the account and before a quote is matched.

Price cage
    Checked for limit orders entered in continuous trading. Broker setting
    ``cage_mode``: ``"reject"`` (default) refuses an order outside the cage;
    ``"hold"`` accepts it and holds it without matching (``cage_held``) until
    a later quote puts its price back inside the cage. The *(config)* 10-tick
    allowances: ``cage_star_chinext_tick_allowance`` (default false) and
    ``cage_bse_tick_allowance`` (default true).

Simulated network and faults (broker ``settings``, for tests, demos and benchmarks; ``Network``)
    Every call passes one simulated network, configured per account in its
    broker settings and read again on each call. Fixed behaviours:
    ``latency_ms``: sleep that long before acting on a place or cancel.
    ``lose_answers``: true -> every place_order reaches the broker (the order
    is placed, or recorded as refused) and then raises
    ``BrokerTimeout("券商应答超时")``; reconciliation must find it by
    ``client_ref``. ``lose_answer_every``: N -> the same for every Nth order of
    the account. ``lose_cancel_answers``: true -> a cancel is applied, then
    ``BrokerTimeout``. ``unreachable``: true -> every call raises
    ``BrokerTimeout("券商连接超时")`` without acting.

    Faults drawn at a rate, under ``faults``, e.g.
    ``{"faults": {"rate": 0.1, "seed": 7}}`` (10% of calls, spread evenly over
    the kinds) or ``{"faults": {"rate": 0.1, "kinds": {"timeout_after": 2,
    "disconnect": 1}}}`` (weights) or, without ``rate``, one chance per kind:
    ``{"faults": {"kinds": {"timeout_after": 0.02, "duplicate": 0.05}}}``.
    The kinds (``FaultKind``), and what each does to a place / a cancel / a read:

    - ``timeout_after``: the order is entered (or refused and recorded), the
      cancel applied, then ``BrokerTimeout(券商应答超时)``; a read: as
      ``timeout_before``.
    - ``timeout_before``: ``BrokerTimeout(券商应答超时)``, nothing done.
    - ``disconnect``: ``BrokerUnavailable(与券商的连接已断开)``, nothing done.
    - ``error``: ``BrokerError(柜台系统繁忙, 请稍后再试)``: the order is refused
      (recorded as a REJECTED 废单, as any refusal), the cancel refused (the
      order keeps resting), the read fails.
    - ``slow``: the acknowledgement comes ``slow_ms`` (default 300) late (a
      read: the answer).
    - ``duplicate`` (reads only): the broker's feed reports every trade twice,
      as a reconnect that replays the day's trades. The adapter lists each
      broker trade id once, as every adapter must (``brokers.interface``);
      ``faults.report_duplicates: true`` passes the replay on to the caller,
      to test that the order path still records one fill per trade.

    Other keys: ``seed`` (default 0); ``calls``: which calls can fail, of
    ``place``, ``cancel``, ``query`` (every read: login, balance, positions,
    orders, one order, changes, trades, history; default all three);
    ``disconnected``: true -> every call raises ``BrokerUnavailable`` without
    acting (the session is down; false again: reconnected); ``next``: one-shot
    faults consumed in order from the settings in hand, e.g. ``{"place":
    ["timeout_before"], "cancel": ["error:集合竞价时段不可撤单"]}`` (kind, then
    optionally ``:`` and the broker's message; for tests that keep the
    settings object, as the contract suite's paper target does).

    Deterministic: a call's draw depends only on (seed, account, call, what it
    is about: our order id for a placement, the broker order id for a cancel,
    the read's name, and how many times this process made that same call), so
    the same orders meet the same faults in any process and in any order, and
    an order sent again draws afresh.

Reading the books back
    ``query_order`` reads one order and its trades. ``query_changes(cursor)``
    reads the orders changed after ``cursor``: every change to an order takes
    its account's next ``change_seq`` under the account's lock (see
    ``brokers.models``), so a poll costs what changed, not what is open.

Clock
    Every timestamp comes from ``trading.clock.now``, the one clock, which
    tests move with the ``clock`` fixture (tests/conftest.py).

Why one module of over a thousand lines: an adapter is one plug-in, registered by name, and this
one is a whole simulated broker (books, validation like the exchange's and the counter's, matching,
expiry, the simulated network); its sections share the books' helpers and lock order, so it stays
one file that can be read top to bottom like the broker it imitates.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy

from brokers.interface import (
    BrokerBalance,
    BrokerChanges,
    BrokerInterface,
    BrokerOrder,
    BrokerOrderStatus,
    BrokerPosition,
    BrokerSnapshot,
    BrokerTrade,
    Capabilities,
    OrderAck,
    OrderRequest,
)
from brokers.models import OPEN_STATUSES, PaperAccount, PaperOrder, PaperPosition, PaperSequence, PaperTrade
from brokers.registry import register
from trading import calendar
from trading import market_rules as rules
from trading.clock import now
from trading.errors import BrokerError, BrokerTimeout, BrokerUnavailable
from trading.models import Account, Instrument, Quote, SessionMode
from trading.money import MAX_STORED_PRICE, ROUND_HALF_EVEN, ZERO, to_cent, to_price_places
from trading.selectors import instrument_active

logger = logging.getLogger(__name__)


# What the broker tells the user (kept verbatim in the order's status_reason).
MSG_NO_ACCOUNT = "资金账号不存在"
MSG_UNKNOWN_SYMBOL = "证券代码不存在"
MSG_SUSPENDED = "该证券暂停交易"
MSG_NOT_TRADABLE = "该证券不可交易"
MSG_BAD_SIDE = "买卖方向错误"
MSG_BAD_ORDER_TYPE = "委托类型错误"
MSG_BAD_CLIENT_REF = "委托参数错误: 客户端委托号过长"
MSG_CLOSED = "非交易时间"
MSG_MARKET_PHASE = "当前时段不允许市价委托"
MSG_MARKET_NOT_ALLOWED = "该证券不支持市价委托"
MSG_PROTECTION_REQUIRED = "市价委托须填写保护限价"
MSG_BAD_QUANTITY = "委托数量错误"
MSG_MAX_QUANTITY = "委托数量超过单笔最大申报数量"
MSG_ODD_LOT = "零股须一次性卖出"
MSG_ST_LIMIT = "风险警示股票当日买入数量超过上限"
MSG_BAD_PRICE = "委托价格错误"
MSG_TICK = "价格不符合最小价位"
MSG_PRICE_LIMIT = "委托价格超出涨跌停范围"
MSG_CAGE = "委托价格超出价格笼子范围"
MSG_NO_SHARES = "可卖股份不足"
MSG_NO_CASH = "可用资金不足"
MSG_TIMEOUT = "券商应答超时"
MSG_UNREACHABLE = "券商连接超时"
MSG_ORDER_NOT_FOUND = "委托不存在"
MSG_CANCEL_PHASE = "撤单失败: 当前时段不允许撤单"
CANCEL_REFUSALS = {
    BrokerOrderStatus.FILLED: "撤单失败: 委托已成交",
    BrokerOrderStatus.CANCELLED: "撤单失败: 委托已撤销",
    BrokerOrderStatus.EXPIRED: "撤单失败: 委托已过期",
    BrokerOrderStatus.REJECTED: "撤单失败: 废单不能撤销",
}
# Order status texts.
MSG_ACCEPTED = "已报"
MSG_HELD = "已报(价格笼子外暂存)"
MSG_PARTIALLY_FILLED = "部分成交"
MSG_FILLED = "全部成交"
MSG_CANCELLED = "已撤单"
MSG_MARKET_REST_CANCELLED = "市价委托剩余部分已撤销"
MSG_MARKET_NOTHING_FILLED = "市价委托无可成交对手方, 已撤销"
MSG_EXPIRED = "当日委托已过期"

# Phases in which resting orders match in real-session mode.
MATCHING_PHASES = frozenset({calendar.Phase.CONTINUOUS.value, calendar.Phase.CLOSING_CALL.value})


# ---------------------------------------------------------------------------
# Configuration and sessions
# ---------------------------------------------------------------------------


def _flag(settings: Mapping[str, Any], key: str, default: bool = False) -> bool:
    value = settings.get(key, default)
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _int_setting(settings: Mapping[str, Any], key: str) -> int:
    try:
        return max(int(settings.get(key) or 0), 0)
    except (TypeError, ValueError):
        logger.warning("paper broker: ignoring bad setting %s=%r", key, settings.get(key))
        return 0


def cage_settings(settings: Mapping[str, Any]) -> rules.CageSettings:
    """Price-cage configuration from broker settings (see the module docstring)."""
    mode = str(settings.get("cage_mode") or "reject").strip().lower()
    if mode not in ("reject", "hold"):
        logger.warning("paper broker: unknown cage_mode %r, using reject", mode)
        mode = "reject"
    return rules.CageSettings(
        star_chinext_tick_allowance=_flag(settings, "cage_star_chinext_tick_allowance", False),
        bse_tick_allowance=_flag(settings, "cage_bse_tick_allowance", True),
        outside_action=mode,
    )


@dataclass(frozen=True)
class PaperConfig:
    """What the paper broker reads from the account: session mode, fees, cage."""

    session_mode: str
    fees: rules.FeeSchedule
    cage: rules.CageSettings


def account_config(account_name: str, broker_settings: Mapping[str, Any] | None = None) -> PaperConfig:
    """The configuration of the account named ``account_name`` (defaults when it does not exist).

    ``broker_settings`` overrides the account's stored broker settings (the
    adapter passes the settings it was built with).
    """
    account = Account.objects.filter(name=account_name).first()
    if account is None:
        return PaperConfig(SessionMode.ALWAYS, rules.FeeSchedule(), cage_settings(broker_settings or {}))
    return config_of(account, broker_settings)


def config_of(account: Account, broker_settings: Mapping[str, Any] | None = None) -> PaperConfig:
    """The configuration read from an ``account`` row already in hand."""
    settings = broker_settings if broker_settings is not None else (account.broker_settings or {})
    return PaperConfig(
        session_mode=account.session_mode,
        fees=rules.FeeSchedule.from_dict(account.fee_schedule or {}),
        cage=cage_settings(settings),
    )


@dataclass(frozen=True)
class Session:
    """The market as one account sees it at one moment."""

    at: datetime
    mode: str
    trading_day: date  # the Asia/Shanghai calendar date of ``at``
    phase: str

    @classmethod
    def at_time(cls, mode: str, at: datetime) -> Session:
        day = calendar.trading_day_of(at)
        if mode == SessionMode.REAL:
            return cls(at, mode, day, calendar.session_phase(at).value)
        return cls(at, SessionMode.ALWAYS, day, calendar.Phase.CONTINUOUS.value)

    @property
    def is_real(self) -> bool:
        return self.mode == SessionMode.REAL

    @property
    def matching(self) -> bool:
        """Whether resting orders can trade now."""
        return not self.is_real or self.phase in MATCHING_PHASES

    @property
    def day_closed(self) -> bool:
        """Whether today's orders are over too (real mode, after 15:00)."""
        return self.is_real and self.at >= calendar.market_close(self.trading_day)

    def due_filter(self) -> Q:
        """Orders whose trading day is over: always mode, an earlier date; real
        mode, 15:00 of their trading day has passed."""
        if self.day_closed:
            return Q(trading_day__lte=self.trading_day)
        return Q(trading_day__lt=self.trading_day)


# ---------------------------------------------------------------------------
# Helpers on the books
# ---------------------------------------------------------------------------


def _money(value: Decimal) -> Decimal:
    return to_cent(value)


def _next_number(kind: str, day: date) -> int:
    """Next per-day number for ``kind`` ("order" / "trade"), under the counter's row lock."""
    sequence = PaperSequence.objects.select_for_update().filter(kind=kind, day=day).first()
    if sequence is None:
        try:
            with transaction.atomic():
                sequence = PaperSequence.objects.create(kind=kind, day=day, last=0)
        except IntegrityError:  # created concurrently: wait for its lock
            sequence = PaperSequence.objects.select_for_update().get(kind=kind, day=day)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return sequence.last


def _order_number(day: date) -> str:
    return f"P-{day:%Y%m%d}-{_next_number('order', day):06d}"


def _trade_number(day: date) -> str:
    return f"T-{day:%Y%m%d}-{_next_number('trade', day):06d}"


def _lock_paper_account(account_name: str) -> PaperAccount:
    paper = PaperAccount.objects.select_for_update().filter(account_name=account_name).first()
    if paper is None:
        raise BrokerError(MSG_NO_ACCOUNT)
    return paper


def _save_paper(paper: PaperAccount) -> None:
    paper.save(update_fields=["cash", "frozen", "change_seq", "updated_at"])


def _stamp(order: PaperOrder, paper: PaperAccount) -> None:
    """Give a change of ``order`` the account's next change number (``query_changes`` reads by it).

    Precondition: the caller holds ``paper``'s row lock, saves the order and
    saves ``paper`` (``_save_paper``) before the transaction ends.
    """
    paper.change_seq += 1
    order.change_seq = paper.change_seq


def _position(account_name: str, symbol: str) -> PaperPosition:
    """The position row, created empty if absent. Caller holds the PaperAccount lock."""
    position, _ = PaperPosition.objects.get_or_create(account_name=account_name, symbol=symbol)
    return position


def sellable_quantity(position: PaperPosition, today: date, t0: bool) -> int:
    """Shares that can be sold today: held, not frozen by open sells, not bought today (T+1)."""
    unsettled = position.bought_today if position.bought_day == today and not t0 else 0
    return max(position.quantity - position.frozen_quantity - unsettled, 0)


def _instrument_of(symbol: str) -> Instrument | None:
    try:
        code, exchange = rules.normalize_symbol(symbol)
    except rules.MarketRuleViolation:
        return None
    return Instrument.objects.filter(exchange=exchange, code=code).first()


def _quote_of(instrument: Instrument | None) -> Quote | None:
    if instrument is None:
        return None
    try:
        return instrument.quote
    except Quote.DoesNotExist:
        return None


def lock_quote(instrument: Instrument, *, create: bool = False) -> Quote | None:
    """The instrument's Quote row, locked (created empty with ``create``).

    Lock order: quotes before paper accounts. Inside a transaction.
    """
    quote = Quote.objects.select_for_update().filter(instrument=instrument).first()
    if quote is None and create:
        try:
            with transaction.atomic():
                quote = Quote.objects.create(instrument=instrument)
        except IntegrityError:  # created concurrently
            quote = Quote.objects.select_for_update().get(instrument=instrument)
    return quote


def _close_order(order: PaperOrder, paper: PaperAccount, status: BrokerOrderStatus, message: str, at: datetime) -> None:
    """End an open order (cancelled, expired, market remainder) and release what it holds.

    Precondition: the caller holds the PaperAccount lock. Saves the order and
    the position; the caller saves ``paper``.
    """
    if order.side == rules.Side.BUY:
        paper.frozen -= order.frozen_amount
        order.frozen_amount = ZERO
    else:
        release = order.remaining_quantity
        if release:
            position = _position(order.account_name, order.symbol)
            position.frozen_quantity = max(position.frozen_quantity - release, 0)
            position.save(update_fields=["frozen_quantity", "updated_at"])
    order.status = status.value
    order.message = message
    order.cage_held = False
    order.updated_at = at
    _stamp(order, paper)
    order.save()


# Per account, the last expiry pass this process committed: (trading day, whether that day's close
# had passed). Orders are only ever placed for the current trading day, so after one pass nothing
# new comes due until the key changes, and the pass (a read per order placed) is skipped.
_EXPIRY_DONE: dict[str, tuple[date, bool]] = {}


def expire_due_orders(paper: PaperAccount, session: Session) -> list[PaperOrder]:
    """Expire the account's open day orders whose trading day is over; release their freezes.

    Precondition: the caller holds ``paper``'s row lock. Returns the expired orders.
    """
    key = (session.trading_day, session.day_closed)
    if _EXPIRY_DONE.get(paper.account_name) == key:
        return []
    name = paper.account_name
    transaction.on_commit(lambda: _EXPIRY_DONE.__setitem__(name, key))
    due = list(
        PaperOrder.objects.filter(account_name=paper.account_name, status__in=OPEN_STATUSES)
        .filter(session.due_filter())
        .order_by("id")
    )
    for order in due:
        _close_order(order, paper, BrokerOrderStatus.EXPIRED, MSG_EXPIRED, session.at)
    if due:
        _save_paper(paper)
    return due


def reject_accepted_order(account_name: str, broker_order_id: str, message: str, at: datetime) -> PaperOrder:
    """The exchange rejects an order the broker had accepted (废单 after 已报), saying ``message``:
    it ends REJECTED and releases what it held. Raises BrokerError when there is no such open order.

    Precondition: inside a transaction (takes the PaperAccount lock, then the order's).
    """
    paper = _lock_paper_account(account_name)
    order = (PaperOrder.objects.select_for_update()
             .filter(account_name=account_name, broker_order_id=broker_order_id).first())
    if order is None or not order.is_open:
        raise BrokerError(MSG_ORDER_NOT_FOUND if order is None else f"委托已结束: {order.status}")
    _close_order(order, paper, BrokerOrderStatus.REJECTED, message, at)
    _save_paper(paper)
    return order


def _has_due_orders(account_name: str, session: Session) -> bool:
    return (
        PaperOrder.objects.filter(account_name=account_name, status__in=OPEN_STATUSES)
        .filter(session.due_filter())
        .exists()
    )


# ---------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------


def _outside_cage(order: PaperOrder, inst: Instrument, quote: Quote | None, config: PaperConfig) -> bool:
    bid, ask, last, prev_close = (
        (quote.bid, quote.ask, quote.last, quote.prev_close) if quote is not None else (None, None, None, None)
    )
    try:
        rules.check_cage(inst, order.side, order.price, bid, ask, last, prev_close, order.trading_day, config.cage)
    except rules.MarketRuleViolation:
        return True
    return False


def _fill(
    order: PaperOrder,
    paper: PaperAccount,
    inst: Instrument,
    price: Decimal,
    quantity: int,
    config: PaperConfig,
    at: datetime,
) -> PaperTrade:
    """Book one execution: trade row with fees, order totals, cash and position.

    Precondition: the caller holds the PaperAccount lock; ``quantity`` <= the
    order's remaining quantity. Saves the order, the position and ``paper``.
    """
    remaining_before = order.remaining_quantity
    amount = _money(price * quantity)
    fees = rules.fill_fees(
        config.fees, inst, order.side, amount, order.filled_amount, order.commission_charged, order.trading_day
    )
    trade = PaperTrade.objects.create(
        broker_trade_id=_trade_number(order.trading_day),
        order=order,
        price=price,
        quantity=quantity,
        amount=amount,
        commission=fees.commission,
        stamp_duty=fees.stamp_duty,
        transfer_fee=fees.transfer_fee,
        other_fees=fees.handling_fee + fees.regulatory_fee,
        filled_at=at,
        trading_day=order.trading_day,
    )
    position = _position(order.account_name, order.symbol)
    if order.side == rules.Side.BUY:
        if quantity == remaining_before:
            release = order.frozen_amount
        else:
            release = to_cent(order.frozen_amount * quantity / remaining_before, ROUND_DOWN)
        order.frozen_amount -= release
        paper.frozen -= release
        paper.cash -= amount + fees.total
        if position.bought_day != order.trading_day:
            position.bought_day = order.trading_day
            position.bought_today = 0
        if not rules.is_t0(inst):
            position.bought_today += quantity
        position.quantity += quantity
        position.cost_amount += amount + fees.total
    else:
        cost_out = _money(position.cost_amount * quantity / position.quantity) if position.quantity else ZERO
        paper.cash += amount - fees.total
        position.quantity -= quantity
        position.frozen_quantity = max(position.frozen_quantity - quantity, 0)
        position.bought_today = min(position.bought_today, position.quantity)
        position.cost_amount = position.cost_amount - cost_out if position.quantity else ZERO
    position.save()
    order.filled_quantity += quantity
    order.filled_amount += amount
    order.commission_charged += fees.commission
    if order.remaining_quantity == 0:
        order.status = BrokerOrderStatus.FILLED.value
        order.message = MSG_FILLED
    else:
        order.status = BrokerOrderStatus.PARTIALLY_FILLED.value
        order.message = MSG_PARTIALLY_FILLED
    order.updated_at = at
    _stamp(order, paper)
    order.save()
    _save_paper(paper)
    return trade


def match_order(
    order: PaperOrder,
    *,
    quote: Quote | None,
    inst: Instrument,
    paper: PaperAccount,
    config: PaperConfig,
    session: Session,
) -> bool:
    """Try to fill ``order`` against ``quote``; True when it traded or changed status.

    Preconditions: inside a transaction holding the quote row lock and the
    order's PaperAccount lock; ``order`` is open and its trading day is not
    over. A fill consumes the quote's volume (saved). A market order's unfilled
    rest is cancelled afterwards (best-5-then-cancel against one level).
    """
    if not order.is_open or not session.matching:
        return False
    if order.cage_held:
        if _outside_cage(order, inst, quote, config):
            return False
        order.cage_held = False
        order.message = MSG_ACCEPTED
        order.updated_at = session.at
        _stamp(order, paper)
        order.save(update_fields=["cage_held", "message", "updated_at", "change_seq"])
        _save_paper(paper)
    is_market = order.order_type == rules.OrderType.MARKET
    traded = False
    if quote is not None:
        if order.side == rules.Side.BUY:
            price, volume, volume_field = quote.ask, quote.ask_volume, "ask_volume"
            limit = order.protection_price if is_market else order.price
            crosses = price is not None and price > 0 and (limit is None or price <= limit)
        else:
            price, volume, volume_field = quote.bid, quote.bid_volume, "bid_volume"
            limit = order.protection_price if is_market else order.price
            crosses = price is not None and price > 0 and (limit is None or price >= limit)
        quantity = min(order.remaining_quantity, max(volume or 0, 0))
        if crosses and price is not None and not _inside_band(price, inst, quote, order.trading_day):
            crosses = False  # whatever the quote says, nothing trades outside the day's band
        if crosses and quantity > 0 and price is not None:
            _fill(order, paper, inst, price, quantity, config, session.at)
            setattr(quote, volume_field, volume - quantity)
            quote.save(update_fields=[volume_field])
            traded = True
    if is_market and order.is_open:
        message = MSG_MARKET_REST_CANCELLED if order.filled_quantity else MSG_MARKET_NOTHING_FILLED
        _close_order(order, paper, BrokerOrderStatus.CANCELLED, message, session.at)
        _save_paper(paper)
        return True
    return traded


def _inside_band(price: Decimal, inst: Instrument, quote: Quote, day: date) -> bool:
    """Whether ``price`` is within the day's price-limit band (no prev_close or no limit: always)."""
    if not quote.prev_close or quote.prev_close <= 0:
        return True
    limits = rules.limit_prices(inst, quote.prev_close, day)
    return limits is None or limits[0] <= price <= limits[1]


def _priority_key(order: PaperOrder) -> tuple[Decimal, datetime, int]:
    price = order.price if order.price is not None else ZERO
    return (-price if order.side == rules.Side.BUY else price, order.created_at, order.pk)


def _reachable_orders(inst: Instrument, quote: Quote) -> list[QuerySet[PaperOrder]]:
    """The open orders of ``inst`` that ``quote`` may change, as querysets: those held outside the
    cage, buys priced at or above the ask and sells at or below the bid (while that side has volume).

    Each is a range scan on ``paperorder_book_idx`` (one query each: an OR of them would make
    SQLite scan every order of the symbol), so what a quote costs depends on the orders its prices
    reach, never on how many rest further away. Market orders never rest (matched and their rest
    cancelled at placement), so none is missed.
    """
    book = PaperOrder.objects.filter(symbol=inst.symbol, status__in=OPEN_STATUSES)
    # ``cage_held__in`` rather than ``cage_held=``: Django writes the latter as a bare boolean
    # ("cage_held" / NOT "cage_held"), which SQLite cannot match against the index column.
    parts = [book.filter(cage_held__in=[True])]
    if quote.ask is not None and quote.ask > 0 and quote.ask_volume > 0:
        parts.append(book.filter(cage_held__in=[False], side=rules.Side.BUY, price__gte=quote.ask))
    if quote.bid is not None and quote.bid > 0 and quote.bid_volume > 0:
        parts.append(book.filter(cage_held__in=[False], side=rules.Side.SELL, price__lte=quote.bid))
    return parts


class RestingBook:
    """Matches resting orders when quotes arrive (used by ``quotes_publish``).

    Usage inside one transaction, after locking and updating the Quote rows
    (sorted by instrument id): ``book = RestingBook.lock(quotes, at)`` with the
    (instrument, quote) pairs, then ``book.match(inst, quote)`` for each.
    Only the orders a quote can reach are read and only their accounts are
    locked (``_reachable_orders``). ``changed_accounts`` lists the accounts
    whose orders traded, expired or were cancelled.
    """

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.accounts: dict[str, PaperAccount] = {}
        self.configs: dict[str, PaperConfig] = {}
        self.sessions: dict[str, Session] = {}
        self.changed_accounts: set[str] = set()

    @classmethod
    def lock(cls, quotes: Iterable[tuple[Instrument, Quote]], at: datetime) -> RestingBook:
        """Lock (sorted by name) the paper accounts with orders the quotes reach, and expire their due orders."""
        book = cls(at)
        names: set[str] = set()
        for inst, quote in quotes:
            for part in _reachable_orders(inst, quote):
                names.update(part.values_list("account_name", flat=True).distinct())
        if not names:
            return book
        for paper in PaperAccount.objects.select_for_update().filter(account_name__in=names).order_by("account_name"):
            config = account_config(paper.account_name)
            session = Session.at_time(config.session_mode, at)
            book.accounts[paper.account_name] = paper
            book.configs[paper.account_name] = config
            book.sessions[paper.account_name] = session
            if expire_due_orders(paper, session):
                book.changed_accounts.add(paper.account_name)
        return book

    def match(self, inst: Instrument, quote: Quote) -> None:
        """Match the orders ``quote`` reaches in ``inst``, best price then oldest first.

        They are read again under the account locks, so an order cancelled or
        expired meanwhile is left alone.
        """
        if not self.accounts:
            return
        names = list(self.accounts)
        orders = [order for part in _reachable_orders(inst, quote) for order in part.filter(account_name__in=names)]
        buys = sorted((o for o in orders if o.side == rules.Side.BUY), key=_priority_key)
        sells = sorted((o for o in orders if o.side == rules.Side.SELL), key=_priority_key)
        for order in buys + sells:
            name = order.account_name
            if match_order(
                order,
                quote=quote,
                inst=inst,
                paper=self.accounts[name],
                config=self.configs[name],
                session=self.sessions[name],
            ):
                self.changed_accounts.add(name)


# ---------------------------------------------------------------------------
# Order validation
# ---------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _unit(inst: Instrument, on: date) -> str:
    board = rules.board_of(inst)
    return rules.QUANTITY_RULES.get(board, rules.QUANTITY_RULES[rules.Board.OTHER]).on(on).unit


def _broker_message(violation: rules.MarketRuleViolation, inst: Instrument, order_type: str, on: date) -> str:
    """The broker's wording for a market-rule violation."""
    rule, field = violation.rule, violation.field
    if rule == "lot_size":
        return f"委托数量不是{rules.lot_size(inst, on)}{_unit(inst, on)}的整数倍"
    if rule == "min_quantity":
        return f"委托数量不足{rules.lot_size(inst, on)}{_unit(inst, on)}"
    if rule == "positive":
        return MSG_BAD_QUANTITY if field == "quantity" else MSG_BAD_PRICE
    if rule == "required":
        return MSG_PROTECTION_REQUIRED if order_type == rules.OrderType.MARKET else MSG_BAD_PRICE
    known = {
        "symbol_format": MSG_UNKNOWN_SYMBOL,
        "not_tradable": MSG_NOT_TRADABLE,
        "market_order_not_allowed": MSG_MARKET_NOT_ALLOWED,
        "max_quantity": MSG_MAX_QUANTITY,
        "odd_lot_sell": MSG_ODD_LOT,
        "st_daily_buy_limit": MSG_ST_LIMIT,
        "tick_size": MSG_TICK,
        "price_limit": MSG_PRICE_LIMIT,
        "price_cage": MSG_CAGE,
        "session_closed": MSG_CLOSED,
    }
    # Unknown rule: the Chinese half of the rule's own message.
    return known.get(rule) or violation.message.split(" (")[0]


def _as_price(value: Any) -> Decimal | None:
    """A Decimal price, or None when absent or not a number (floats are refused)."""
    if value is None or isinstance(value, (float, bool)):
        return None
    try:
        price = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return price if price.is_finite() else None


def _storable_price(value: Decimal | None) -> Decimal | None:
    if value is None or abs(value) >= MAX_STORED_PRICE:
        return None
    return to_price_places(value)


@dataclass
class _Accepted:
    """What validation decided for an accepted order."""

    symbol: str
    price: Decimal | None
    protection_price: Decimal | None
    frozen_amount: Decimal
    cage_held: bool


def _validate(
    request: OrderRequest,
    *,
    inst: Instrument | None,
    lookup_refusal: str | None,
    quote: Quote | None,
    paper: PaperAccount,
    config: PaperConfig,
    session: Session,
) -> _Accepted:
    """Check an order like the exchange and the broker's counter would; raise _Refused(message).

    Precondition: the caller holds the quote lock and the PaperAccount lock.
    """
    if lookup_refusal is not None or inst is None:
        raise _Refused(lookup_refusal or MSG_UNKNOWN_SYMBOL)
    side, order_type, day = request.side, request.order_type, session.trading_day
    if side not in rules.Side.values:
        raise _Refused(MSG_BAD_SIDE)
    if order_type not in rules.OrderType.values:
        raise _Refused(MSG_BAD_ORDER_TYPE)
    quantity = request.quantity
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise _Refused(MSG_BAD_QUANTITY)
    if session.is_real:
        if not calendar.accepts_new_orders(session.phase):
            raise _Refused(MSG_CLOSED)
        if order_type == rules.OrderType.MARKET and not calendar.accepts_market_orders(session.phase):
            raise _Refused(MSG_MARKET_PHASE)
    is_market = order_type == rules.OrderType.MARKET
    prev_close = quote.prev_close if quote is not None else None
    position = (
        PaperPosition.objects.filter(account_name=paper.account_name, symbol=inst.symbol).first()
        if side == rules.Side.SELL
        else None
    )
    sellable = sellable_quantity(position, day, rules.is_t0(inst)) if position is not None else 0
    given_price = _as_price(request.protection_price if is_market else request.price)
    if (request.protection_price if is_market else request.price) is not None and given_price is None:
        raise _Refused(MSG_BAD_PRICE)
    try:
        rules.check_quantity(inst, side, order_type, quantity, position_quantity=sellable, on=day)
        rules.check_price(inst, side, order_type, given_price, prev_close, day)
    except rules.MarketRuleViolation as violation:
        raise _Refused(_broker_message(violation, inst, order_type, day)) from None
    cage_held = False
    if is_market:
        protection = given_price or rules.protection_price(inst, side, prev_close, day)
        if protection is None and side == rules.Side.BUY:
            raise _Refused(MSG_PROTECTION_REQUIRED)
        price = None
    else:
        price, protection = given_price, None
        if price is None:  # check_price requires a limit price; kept for the type checker
            raise _Refused(MSG_BAD_PRICE)
        if session.phase == calendar.Phase.CONTINUOUS:
            try:
                rules.check_cage(
                    inst,
                    side,
                    price,
                    quote.bid if quote else None,
                    quote.ask if quote else None,
                    quote.last if quote else None,
                    prev_close,
                    day,
                    config.cage,
                )
            except rules.MarketRuleViolation:
                if config.cage.outside_action != "hold":
                    raise _Refused(MSG_CAGE) from None
                cage_held = True
    if side == rules.Side.BUY and inst.is_st:
        _check_st_daily_buys(paper.account_name, inst, quantity, day)
    frozen_amount = ZERO
    if side == rules.Side.SELL:
        if quantity > sellable:
            raise _Refused(MSG_NO_SHARES)
    else:
        freeze_price = protection if is_market else price
        assert freeze_price is not None  # set above for buys
        frozen_amount = rules.estimate_buy_freeze(config.fees, inst, freeze_price, quantity, day)
        if frozen_amount > paper.available:
            raise _Refused(MSG_NO_CASH)
    return _Accepted(inst.symbol, price, protection, frozen_amount, cage_held)


def _check_st_daily_buys(account_name: str, inst: Instrument, quantity: int, day: date) -> None:
    """ST stocks: at most ``st_max_daily_buy`` shares bought per account per stock per day."""
    bought = 0
    for order in PaperOrder.objects.filter(
        account_name=account_name, symbol=inst.symbol, side=rules.Side.BUY, trading_day=day
    ).exclude(status=BrokerOrderStatus.REJECTED.value):
        bought += order.quantity if order.is_open else order.filled_quantity
    if bought + quantity > rules.st_max_daily_buy(day):
        raise _Refused(MSG_ST_LIMIT)


def _lookup(symbol_text: Any) -> tuple[Instrument | None, str, str | None]:
    """(instrument, symbol to record, refusal message or None)."""
    text = str(symbol_text or "")
    try:
        code, exchange = rules.normalize_symbol(text)
    except rules.MarketRuleViolation:
        return None, text[:32], MSG_UNKNOWN_SYMBOL
    symbol = rules.format_symbol(code, exchange)
    inst = instrument_active(exchange, code) or Instrument.objects.filter(exchange=exchange, code=code).first()
    if inst is None:
        return None, symbol, MSG_UNKNOWN_SYMBOL
    if not inst.is_active:
        return inst, symbol, MSG_SUSPENDED
    return inst, symbol, None


def _to_broker_order(order: PaperOrder) -> BrokerOrder:
    return BrokerOrder(
        broker_order_id=order.broker_order_id,
        client_ref=order.client_ref,
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        price=order.price,
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
        avg_fill_price=order.avg_fill_price,
        status=BrokerOrderStatus(order.status),
        message=order.message,
        created_at=order.created_at,
        trading_day=order.trading_day,
    )


def _to_broker_trade(trade: PaperTrade) -> BrokerTrade:
    return BrokerTrade(
        broker_trade_id=trade.broker_trade_id,
        broker_order_id=trade.order.broker_order_id,
        symbol=trade.order.symbol,
        side=trade.order.side,
        price=trade.price,
        quantity=trade.quantity,
        amount=trade.amount,
        filled_at=trade.filled_at,
        trading_day=trade.trading_day,
        commission=trade.commission,
        stamp_duty=trade.stamp_duty,
        transfer_fee=trade.transfer_fee,
        other_fees=trade.other_fees,
    )


# ---------------------------------------------------------------------------
# The simulated network: faults
# ---------------------------------------------------------------------------


class FaultKind(StrEnum):
    """What the simulated network does to one call (see the module docstring, "Simulated network")."""

    TIMEOUT_AFTER = "timeout_after"  # place/cancel: done at the broker, the answer lost (BrokerTimeout)
    TIMEOUT_BEFORE = "timeout_before"  # BrokerTimeout, nothing done
    DISCONNECT = "disconnect"  # BrokerUnavailable, nothing done
    ERROR = "error"  # BrokerError: an order refused (still recorded, 废单), a cancel refused, a read failed
    SLOW = "slow"  # the answer comes ``slow_ms`` late
    DUPLICATE = "duplicate"  # reads: every trade reported twice


class Call(StrEnum):
    PLACE = "place"
    CANCEL = "cancel"
    QUERY = "query"  # every read: orders, one order, changes, trades, balance, positions, history


# The kinds a call can draw: only reads report trades (and a read's timeout_after is a timeout).
_KINDS_OF_CALL = {
    Call.PLACE: tuple(k for k in FaultKind if k != FaultKind.DUPLICATE),
    Call.CANCEL: tuple(k for k in FaultKind if k != FaultKind.DUPLICATE),
    Call.QUERY: tuple(FaultKind),
}
MSG_BUSY = "柜台系统繁忙, 请稍后再试"
MSG_DISCONNECTED = "与券商的连接已断开"
DEFAULT_SLOW_MS = 300

# Calls this process made per (account, call, subject): the attempt number that makes a repeated
# call (an order sent again) draw afresh. Bounded: cleared when it grows past _FAULT_CALLS_MAX.
_FAULT_CALLS: dict[tuple[str, str, str], int] = {}
_FAULT_CALLS_MAX = 200_000


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    message: str = ""

    @property
    def loses_answer(self) -> bool:
        return self.kind == FaultKind.TIMEOUT_AFTER

    @property
    def refuses(self) -> bool:
        return self.kind == FaultKind.ERROR


def _float_setting(settings: Mapping[str, Any], key: str) -> float:
    try:
        return max(float(settings.get(key) or 0), 0.0)
    except (TypeError, ValueError):
        logger.warning("paper broker: ignoring bad fault setting %s=%r", key, settings.get(key))
        return 0.0


class Network:
    """The simulated network between the back office and the paper broker, read from the
    account's broker settings (the module docstring lists them). One per call: the settings are
    read again each time, so a change (e.g. ``faults.disconnected``) applies to the next call.

    ``enter(call, subject)`` runs before a call acts: it raises the faults that stop the call
    (disconnected, unreachable, a timeout or disconnect drawn), waits ``latency_ms``, and returns
    the fault the call must still apply (lost answer, refusal, slow answer, duplicate reports)
    or None. ``subject`` names what the call is about (our order id for a placement, the broker
    order id for a cancel, the read's name), so a draw depends on (seed, account, call, subject,
    attempt) only: the same calls draw the same faults in any process and any order.
    """

    def __init__(self, account_name: str, settings: Mapping[str, Any]) -> None:
        self.account_name = account_name
        self.settings = settings
        faults = settings.get("faults") or {}
        if not isinstance(faults, Mapping):
            logger.warning("paper broker: ignoring faults=%r (not a mapping)", faults)
            faults = {}
        self.faults: Mapping[str, Any] = faults

    @property
    def report_duplicates(self) -> bool:
        return _flag(self.faults, "report_duplicates")

    @property
    def slow_seconds(self) -> float:
        value = self.faults.get("slow_ms")
        return (DEFAULT_SLOW_MS if value is None else _float_setting(self.faults, "slow_ms")) / 1000

    def _scripted(self, call: Call) -> Fault | None:
        """The next one-shot fault queued for ``call`` in ``faults.next`` (consumed from the
        settings in hand: for tests that keep them)."""
        queued = self.faults.get("next")
        entries = queued.get(str(call)) if isinstance(queued, Mapping) else None
        if not isinstance(entries, list) or not entries:
            return None
        kind, _, message = str(entries.pop(0)).partition(":")
        try:
            return Fault(FaultKind(kind), message)
        except ValueError:
            logger.warning("paper broker: unknown fault %r in faults.next", kind)
            return None

    def _rates(self, call: Call) -> list[tuple[FaultKind, float]]:
        """Each kind's chance for ``call``: ``rate`` spread over ``kinds`` by weight, or, without
        ``rate``, ``kinds`` as the chance of each."""
        calls = self.faults.get("calls")
        if calls is not None and str(call) not in {str(c) for c in calls}:
            return []
        kinds = self.faults.get("kinds")
        if kinds is not None and not isinstance(kinds, Mapping):
            logger.warning("paper broker: ignoring faults.kinds=%r (not a mapping)", kinds)
            kinds = None
        applicable = _KINDS_OF_CALL[call]
        values = {k: _float_setting(kinds, str(k)) for k in applicable} if kinds is not None else dict.fromkeys(applicable, 1.0)
        if "rate" not in self.faults:
            return [(k, v) for k, v in values.items() if v] if kinds is not None else []
        rate, weight = min(_float_setting(self.faults, "rate"), 1.0), sum(values.values())
        return [(k, rate * v / weight) for k, v in values.items() if v] if rate and weight else []

    def _draw(self, call: Call, subject: str) -> Fault | None:
        rates = self._rates(call)
        if not rates:
            return None
        key = (self.account_name, str(call), subject)
        if len(_FAULT_CALLS) > _FAULT_CALLS_MAX:
            _FAULT_CALLS.clear()
        attempt = _FAULT_CALLS.get(key, 0)
        _FAULT_CALLS[key] = attempt + 1
        seed = self.faults.get("seed", 0)
        point = random.Random(f"{seed}|{self.account_name}|{call}|{subject}|{attempt}").random()  # noqa: S311 - not crypto
        for kind, chance in rates:
            if point < chance:
                return Fault(kind)
            point -= chance
        return None

    def enter(self, call: Call, subject: str) -> Fault | None:
        """Before ``call`` acts (see the class docstring). Raises BrokerTimeout or BrokerUnavailable."""
        if _flag(self.faults, "disconnected"):
            raise BrokerUnavailable(MSG_DISCONNECTED)
        if _flag(self.settings, "unreachable"):
            raise BrokerTimeout(MSG_UNREACHABLE)
        fault = self._scripted(call) or self._draw(call, subject)
        if fault is None and call != Call.QUERY:
            lost = _flag(self.settings, "lose_answers" if call == Call.PLACE else "lose_cancel_answers")
            fault = Fault(FaultKind.TIMEOUT_AFTER) if lost else None
        if fault is not None and fault.kind == FaultKind.DISCONNECT:
            raise BrokerUnavailable(fault.message or MSG_DISCONNECTED)
        if fault is not None and (fault.kind == FaultKind.TIMEOUT_BEFORE
                                  or (fault.kind == FaultKind.TIMEOUT_AFTER and call == Call.QUERY)):
            raise BrokerTimeout(fault.message or MSG_TIMEOUT)
        if fault is not None and fault.refuses and call == Call.QUERY:
            raise BrokerError(fault.message or MSG_BUSY)
        latency = _int_setting(self.settings, "latency_ms")
        if latency and call != Call.QUERY:
            time.sleep(latency / 1000)
        if fault is not None and fault.kind == FaultKind.SLOW and call == Call.QUERY:
            time.sleep(self.slow_seconds)
        return fault

    def leave(self, fault: Fault | None) -> None:
        """After a place or cancel acted: a slow answer waits, a lost one raises BrokerTimeout."""
        if fault is None:
            return
        if fault.kind == FaultKind.SLOW:
            time.sleep(self.slow_seconds)
        if fault.loses_answer:
            raise BrokerTimeout(fault.message or MSG_TIMEOUT)

    def every_nth_answer_lost(self, placed: Callable[[], int]) -> bool:
        """``lose_answer_every`` N: whether the answer to the account's Nth, 2Nth ... order is lost
        (``placed`` counts its orders at the broker, this one included)."""
        every = _int_setting(self.settings, "lose_answer_every")
        return bool(every) and placed() % every == 0

    def report(self, fault: Fault | None, trades: list[BrokerTrade]) -> list[BrokerTrade]:
        """The trades a read answers: with a DUPLICATE fault the broker's feed reports each twice
        (a replay, as after a reconnect); the adapter lists each broker trade id once, as every
        adapter must (brokers.interface), unless ``faults.report_duplicates`` makes it pass the
        replay on (to test that the order path records one fill per trade all the same)."""
        if fault is None or fault.kind != FaultKind.DUPLICATE:
            return trades
        replayed = [copy for trade in trades for copy in (trade, trade)]
        return replayed if self.report_duplicates else unique_trades(replayed)


def unique_trades(trades: list[BrokerTrade]) -> list[BrokerTrade]:
    """Each broker trade id once, in first-report order."""
    seen: set[str] = set()
    unique = []
    for trade in trades:
        if trade.broker_trade_id not in seen:
            seen.add(trade.broker_trade_id)
            unique.append(trade)
    return unique


# ---------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------


@register
class PaperBroker(BrokerInterface):
    """Simulated broker with its own books in the database (see the module docstring)."""

    kind = "paper"
    label = gettext_lazy("paper broker")
    capabilities = Capabilities(market_orders=True, modify=False, history=True, client_ref=True)

    @staticmethod
    def open_account(account_name: str, cash: Decimal) -> PaperAccount:
        """Open the broker-side cash account with ``cash`` (called by ``brokers.services.account_create``).

        Idempotent: an existing account is returned unchanged (its books are
        the broker's). Safe inside the caller's transaction (creation runs in a
        savepoint).
        """
        paper, _ = PaperAccount.objects.get_or_create(
            account_name=account_name, defaults={"cash": _money(Decimal(cash))}
        )
        return paper

    # --- simulated network -------------------------------------------------

    def _network(self) -> Network:
        return Network(self.account_name, self.settings)

    def _read(self, subject: str) -> tuple[Network, Fault | None]:
        """A read passes the simulated network: it may fail, be slow, or replay trades."""
        network = self._network()
        return network, network.enter(Call.QUERY, subject)

    def _require_account(self) -> None:
        if not PaperAccount.objects.filter(account_name=self.account_name).exists():
            raise BrokerError(MSG_NO_ACCOUNT)

    _known_config: PaperConfig | None = None

    @classmethod
    def for_account(cls, account: Account) -> PaperBroker:
        broker = cls(account.name, account.broker_settings)
        broker._known_config = config_of(account, broker.settings)  # no second read of the row per call
        return broker

    def _config(self) -> PaperConfig:
        if self._known_config is not None:
            return self._known_config
        return account_config(self.account_name, self.settings)

    # --- BrokerInterface ------------------------------------------------------

    def login(self) -> None:
        self._read("login")
        self._require_account()

    def get_balance(self) -> BrokerBalance:
        self._read("balance")
        paper = PaperAccount.objects.filter(account_name=self.account_name).first()
        if paper is None:
            raise BrokerError(MSG_NO_ACCOUNT)
        market_value = sum((p.market_value for p in self._positions()), ZERO)
        return BrokerBalance(
            cash=paper.cash,
            available=paper.cash - paper.frozen,
            frozen=paper.frozen,
            market_value=market_value,
            total_assets=paper.cash + market_value,
        )

    def get_positions(self) -> list[BrokerPosition]:
        """Holdings valued at the quote's last (else prev_close; no quote at all: at cost)."""
        self._read("positions")
        self._require_account()
        return self._positions()

    def _positions(self) -> list[BrokerPosition]:
        session = Session.at_time(self._config().session_mode, now())
        result = []
        for position in PaperPosition.objects.filter(account_name=self.account_name, quantity__gt=0).order_by("symbol"):
            inst = _instrument_of(position.symbol)
            quote = _quote_of(inst)
            last = None
            if quote is not None:
                last = quote.last if quote.last else quote.prev_close
            market_value = _money(last * position.quantity) if last else position.cost_amount
            t0 = rules.is_t0(inst) if inst is not None else False
            result.append(
                BrokerPosition(
                    symbol=position.symbol,
                    quantity=position.quantity,
                    sellable_quantity=sellable_quantity(position, session.trading_day, t0),
                    avg_cost=to_price_places(position.cost_amount / position.quantity, ROUND_HALF_EVEN),
                    last_price=last,
                    market_value=market_value,
                )
            )
        return result

    def place_order(self, request: OrderRequest) -> OrderAck:
        network = self._network()
        fault = network.enter(Call.PLACE, request.client_ref or "")
        if len(request.client_ref or "") > 64:
            raise BrokerError(MSG_BAD_CLIENT_REF)
        at = now()
        config = self._config()
        session = Session.at_time(config.session_mode, at)
        inst, symbol, lookup_refusal = _lookup(request.symbol)
        refusal: str | None = None
        with transaction.atomic():
            # Lock order: quote, then account (as the matcher does).
            quote = lock_quote(inst) if inst is not None and lookup_refusal is None else None
            paper = _lock_paper_account(self.account_name)
            expire_due_orders(paper, session)
            is_market = request.order_type == rules.OrderType.MARKET
            try:
                if fault is not None and fault.refuses:
                    raise _Refused(fault.message or MSG_BUSY)  # the counter refuses it (and records it, 废单)
                accepted = _validate(
                    request,
                    inst=inst,
                    lookup_refusal=lookup_refusal,
                    quote=quote,
                    paper=paper,
                    config=config,
                    session=session,
                )
            except _Refused as refused:
                refusal = refused.message
                paper.change_seq += 1
                order = PaperOrder.objects.create(
                    broker_order_id=_order_number(session.trading_day),
                    account_name=self.account_name,
                    client_ref=request.client_ref or "",
                    symbol=symbol,
                    side=str(request.side)[:4],
                    order_type=str(request.order_type)[:8],
                    price=_storable_price(_as_price(None if is_market else request.price)),
                    protection_price=_storable_price(_as_price(request.protection_price if is_market else None)),
                    quantity=request.quantity if isinstance(request.quantity, int) and request.quantity > 0 else 0,
                    status=BrokerOrderStatus.REJECTED.value,
                    message=refusal,
                    trading_day=session.trading_day,
                    created_at=at,
                    updated_at=at,
                    change_seq=paper.change_seq,
                )
            else:
                paper.change_seq += 1
                order = PaperOrder.objects.create(
                    broker_order_id=_order_number(session.trading_day),
                    account_name=self.account_name,
                    client_ref=request.client_ref or "",
                    symbol=accepted.symbol,
                    side=request.side,
                    order_type=request.order_type,
                    price=accepted.price,
                    protection_price=accepted.protection_price,
                    quantity=request.quantity,
                    frozen_amount=accepted.frozen_amount,
                    cage_held=accepted.cage_held,
                    status=BrokerOrderStatus.OPEN.value,
                    message=MSG_HELD if accepted.cage_held else MSG_ACCEPTED,
                    trading_day=session.trading_day,
                    created_at=at,
                    updated_at=at,
                    change_seq=paper.change_seq,
                )
                assert inst is not None  # accepted orders have an instrument
                if order.side == rules.Side.BUY:
                    paper.frozen += accepted.frozen_amount
                else:
                    position = _position(self.account_name, order.symbol)
                    position.frozen_quantity += order.quantity
                    position.save(update_fields=["frozen_quantity", "updated_at"])
                if not order.cage_held:
                    match_order(order, quote=quote, inst=inst, paper=paper, config=config, session=session)
            _save_paper(paper)  # its frozen cash and its change number
        network.leave(fault)
        if network.every_nth_answer_lost(PaperOrder.objects.filter(account_name=self.account_name).count):
            raise BrokerTimeout(MSG_TIMEOUT)
        if refusal is not None:
            raise BrokerError(refusal)
        return OrderAck(order.broker_order_id, order.message)

    def cancel_order(self, broker_order_id: str) -> None:
        network = self._network()
        fault = network.enter(Call.CANCEL, broker_order_id)
        session = Session.at_time(self._config().session_mode, now())
        refusal: str | None = None
        with transaction.atomic():
            paper = _lock_paper_account(self.account_name)
            expire_due_orders(paper, session)
            order = (
                PaperOrder.objects.select_for_update()
                .filter(account_name=self.account_name, broker_order_id=broker_order_id)
                .first()
            )
            if fault is not None and fault.refuses:
                refusal = fault.message or MSG_BUSY
            elif order is None:
                refusal = MSG_ORDER_NOT_FOUND
            elif not order.is_open:
                refusal = CANCEL_REFUSALS[BrokerOrderStatus(order.status)]
            elif session.is_real and not calendar.accepts_cancels(session.phase):
                refusal = MSG_CANCEL_PHASE
            else:
                _close_order(order, paper, BrokerOrderStatus.CANCELLED, MSG_CANCELLED, session.at)
                _save_paper(paper)
        network.leave(fault)
        if refusal is not None:
            raise BrokerError(refusal)

    def _expire(self, session: Session) -> list[PaperOrder]:
        if not _has_due_orders(self.account_name, session):
            return []
        with transaction.atomic():
            return expire_due_orders(_lock_paper_account(self.account_name), session)

    def query_orders(self) -> list[BrokerOrder]:
        """Today's orders, still-open older ones, and those that changed today (e.g. expired)."""
        self._read("orders")
        self._require_account()
        session = Session.at_time(self._config().session_mode, now())
        self._expire(session)
        start_of_day = datetime.combine(session.trading_day, datetime.min.time(), tzinfo=calendar.SHANGHAI)
        orders = (
            PaperOrder.objects.filter(account_name=self.account_name)
            .filter(Q(trading_day=session.trading_day) | Q(status__in=OPEN_STATUSES) | Q(updated_at__gte=start_of_day))
            .order_by("id")
        )
        return [_to_broker_order(order) for order in orders]

    def query_order(self, broker_order_id: str) -> BrokerSnapshot:
        """One order of this account and its trades, by broker order id (indexed reads)."""
        network, fault = self._read(f"order:{broker_order_id}")
        order = PaperOrder.objects.filter(account_name=self.account_name, broker_order_id=broker_order_id).first()
        if order is None:
            return BrokerSnapshot()
        trades = (
            [_to_broker_trade(trade) for trade in order.trades.select_related("order").order_by("id")]
            if order.filled_quantity
            else []  # nothing traded: no trade to read (the usual answer for an order that rests)
        )
        return BrokerSnapshot(orders=[_to_broker_order(order)], trades=network.report(fault, trades))

    def query_changes(self, cursor: str | None) -> BrokerChanges:
        """The orders whose change number is above ``cursor`` and at most the account's current one.

        The cursor is ``<account id>.<opened at>.<change number>``. None, or a cursor of another
        (e.g. re-opened) account or from its future: a full read (``query_orders``' orders, up to
        the current number, and today's trades). Otherwise only the changed orders and their
        trades: reads along ``paperorder_account_change_idx``, whatever the number of open orders.
        """
        network, fault = self._read("changes")
        session = Session.at_time(self._config().session_mode, now())
        self._expire(session)
        paper = PaperAccount.objects.filter(account_name=self.account_name).values("pk", "created_at", "change_seq").first()
        if paper is None:
            raise BrokerError(MSG_NO_ACCOUNT)
        epoch = f"{paper['pk']}.{paper['created_at'].timestamp():.6f}"
        current = paper["change_seq"]
        since: int | None = None
        if cursor and cursor.rsplit(".", 1)[0] == epoch:
            try:
                since = int(cursor.rsplit(".", 1)[1])
            except ValueError:
                since = None
            if since is not None and since > current:
                since = None
        orders = PaperOrder.objects.filter(account_name=self.account_name, change_seq__lte=current)
        if since is None:
            start_of_day = datetime.combine(session.trading_day, datetime.min.time(), tzinfo=calendar.SHANGHAI)
            listed = list(
                orders.filter(
                    Q(trading_day=session.trading_day) | Q(status__in=OPEN_STATUSES) | Q(updated_at__gte=start_of_day)
                ).order_by("id")
            )
            trades = self._trades_of_day(session)
        else:
            listed = list(orders.filter(change_seq__gt=since).order_by("id"))
            ids = [order.pk for order in listed]
            trades = [
                _to_broker_trade(trade)
                for start in range(0, len(ids), 500)  # within SQLite's limit of bound parameters
                for trade in PaperTrade.objects.filter(order__in=ids[start:start + 500]).select_related("order").order_by("id")
            ]
        return BrokerChanges(
            orders=[_to_broker_order(order) for order in listed],
            trades=network.report(fault, trades),
            cursor=f"{epoch}.{current}",
            complete=since is None,
        )

    def query_trades(self) -> list[BrokerTrade]:
        network, fault = self._read("trades")
        self._require_account()
        session = Session.at_time(self._config().session_mode, now())
        return network.report(fault, self._trades_of_day(session))

    def _trades_of_day(self, session: Session) -> list[BrokerTrade]:
        trades = (
            PaperTrade.objects.filter(order__account_name=self.account_name, trading_day=session.trading_day)
            .select_related("order")
            .order_by("id")
        )
        return [_to_broker_trade(trade) for trade in trades]

    def history_orders(self, start: date, end: date) -> list[BrokerOrder]:
        self._read("history_orders")
        self._require_account()
        self._expire(Session.at_time(self._config().session_mode, now()))
        orders = PaperOrder.objects.filter(
            account_name=self.account_name, trading_day__gte=start, trading_day__lte=end
        ).order_by("id")
        return [_to_broker_order(order) for order in orders]

    def history_trades(self, start: date, end: date) -> list[BrokerTrade]:
        """Trades of past trading days, both ends included (not part of the contract)."""
        network, fault = self._read("history_trades")
        self._require_account()
        trades = (
            PaperTrade.objects.filter(
                order__account_name=self.account_name, trading_day__gte=start, trading_day__lte=end
            )
            .select_related("order")
            .order_by("id")
        )
        return network.report(fault, [_to_broker_trade(trade) for trade in trades])
