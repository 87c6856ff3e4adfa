"""迅投 miniQMT through XtQuant's ``XtQuantTrader`` (docs/brokers/xtquant.md).

The trader
    ``xtquant.xttrader.XtQuantTrader(path, session_id)`` talks to a running miniQMT client
    (``path`` is its ``userdata_mini`` folder). Its Windows binaries load only on Windows, so the
    real trader is built lazily, on first use; ``xtquant.xtconstant`` and ``xtquant.xttype`` are
    pure Python and give the codes and the account object everywhere. One trader serves one
    (path, session id) in this process: a :class:`_Session`, shared by every adapter instance
    of the accounts it serves, keeps the trader, its connection state and what its callbacks
    reported, per 资金账号 (a :class:`_Book`).

Sending is not accepting
    ``order_stock`` answers an order id that only means "sent" (-1: not sent). The counter's
    verdict comes later, by callback: ``on_stock_order`` (status changes, ``ORDER_JUNK`` with
    ``status_msg`` for a rejection), ``on_order_error``, ``on_stock_trade``; a cancel is answered
    0 ("sent") and refused later through ``on_cancel_error``. So ``place_order`` acknowledges the
    id, and a rejection reaches the order path as a REJECTED order on the next read;
    ``cancel_order`` waits (``cancel_wait``) for the cancel's outcome and raises the broker's
    words when it is refused. Our order id (``client_ref``) travels in ``order_remark`` (at
    most 24 characters), so an order whose answer was lost is found in the day's list.

Push, with polling as the safety net
    Every callback that changes an account's orders or trades is kept in its book and announced
    with ``brokers.signals.broker_update(account_name=...)``; the orders layer answers with a poll
    of the account, which reads :meth:`XtQuantBroker.query_changes`: the orders the callbacks
    changed after the cursor. A full read (``query_stock_orders`` and ``query_stock_trades``,
    merged into the book) answers the first poll, the first after a reconnect and at least one
    every ``full_read_seconds``, so a callback that never came costs a delay, not an order.
    Trades are kept once per (order id, ``traded_id``): the replay of the day's trades after a
    reconnect, or a trade pushed twice, changes nothing.

Connection
    ``on_disconnected`` marks the session down: every call then raises ``BrokerUnavailable``
    (miniQMT's own answers while down, empty lists and -1, are never trusted). The next call
    after ``reconnect_seconds`` builds a new trader (``start``, ``connect``, ``subscribe``) by
    itself; the first read after it is a full read, so fills made while down are not missed.
    Every trader call runs with a time limit (``call_timeout``): xttrader's synchronous calls
    wait for miniQMT's answer without one. A call that outlives it raises ``BrokerTimeout``.

Limits: today only (``query_stock_orders``/``query_stock_trades`` cover the current day; no
``history_orders``), no native modify, one process per session id (miniQMT refuses a second
connection with the same session id; run the xtquant accounts in one worker, or behind the
gateway).

Why one module of about 900 lines: an adapter is one plug-in file (STYLE.md, Plug-ins); the
session, its callbacks and the code tables of xtconstant below belong to this one broker path.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from django.conf import settings as django_settings
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
from brokers.registry import register
from brokers.signals import broker_update
from trading.calendar import SHANGHAI
from trading.clock import now
from trading.errors import BrokerError, BrokerTimeout, BrokerUnavailable
from trading.i18n import bilingual
from trading.money import ZERO, to_cent, to_price_places

log = logging.getLogger(__name__)

#: ``order_remark`` holds at most 24 (ASCII) characters; our client_ref must fit whole.
ORDER_REMARK_MAX = 24

#: Order status codes some miniQMT builds report in ``XtOrder.price_type`` instead of the
#: requested price type (the counter's EBrokerPriceType: 49 any price, 50 limit, 51 best).
#: Not in xtconstant; read back only.
BROKER_PRICE_ANY = 49
BROKER_PRICE_LIMIT = 50
BROKER_PRICE_BEST = 51

_TERMINAL = (BrokerOrderStatus.FILLED, BrokerOrderStatus.CANCELLED, BrokerOrderStatus.REJECTED,
             BrokerOrderStatus.EXPIRED)

TraderFactory = Callable[[str, int], Any]


# ----------------------------------------------------------------------------- the code tables


@dataclass(frozen=True)
class XtTables:
    """xtconstant's codes as our words, both ways (built once from the installed package)."""

    order_types: dict[str, int]  # our side -> the order_type we send
    sides: dict[int, str]  # order_type read back -> our side
    offset_sides: dict[int, str]  # offset_flag read back -> our side (when order_type says nothing)
    limit_price_types: frozenset[int]  # price_type read back meaning a priced order
    market_price_types: dict[str, dict[str, int]]  # exchange -> market style -> price_type
    read_market_price_types: frozenset[int]  # price_type read back meaning a market order
    statuses: dict[int, BrokerOrderStatus]  # order_status -> ours (OPEN turns PARTIALLY_FILLED on fills)
    fix_price: int
    account_types: dict[str, int]  # STOCK / CREDIT -> xtconstant's account type

    def market_price_type(self, exchange: str, style: str) -> int | None:
        """The ``price_type`` of a market order of ``style`` on ``exchange`` (SH, SZ, BJ), or None."""
        return self.market_price_types.get(exchange, {}).get(style)


@cache
def xt_tables() -> XtTables:
    """The tables, from ``xtquant.xtconstant`` (imported here: pure Python, loads anywhere)."""
    from xtquant import xtconstant as xc

    shanghai = {
        "best5_cancel": xc.MARKET_SH_CONVERT_5_CANCEL,  # 最优五档即时成交剩余撤销
        "best5_limit": xc.MARKET_SH_CONVERT_5_LIMIT,  # 最优五档即时成交剩余转限价
        "best_opposite": xc.MARKET_PEER_PRICE_FIRST,  # 对手方最优价格
        "best_own": xc.MARKET_MINE_PRICE_FIRST,  # 本方最优价格
    }
    shenzhen = {
        "best5_cancel": xc.MARKET_SZ_CONVERT_5_CANCEL,  # 最优五档即时成交剩余撤销
        "immediate_cancel": xc.MARKET_SZ_INSTBUSI_RESTCANCEL,  # 即时成交剩余撤销
        "fill_or_kill": xc.MARKET_SZ_FULL_OR_CANCEL,  # 全额成交或撤销
        "best_opposite": xc.MARKET_PEER_PRICE_FIRST,
        "best_own": xc.MARKET_MINE_PRICE_FIRST,
    }
    market = {"SH": shanghai, "SZ": shenzhen, "BJ": dict(shanghai)}  # 北交所 takes the SSE types
    working = BrokerOrderStatus.OPEN
    statuses = {
        xc.ORDER_UNREPORTED: working,  # 未报
        xc.ORDER_WAIT_REPORTING: working,  # 待报
        xc.ORDER_REPORTED: working,  # 已报
        xc.ORDER_REPORTED_CANCEL: working,  # 已报待撤: still live until the exchange confirms
        xc.ORDER_PARTSUCC_CANCEL: BrokerOrderStatus.PARTIALLY_FILLED,  # 部成待撤
        xc.ORDER_PART_SUCC: BrokerOrderStatus.PARTIALLY_FILLED,  # 部成
        xc.ORDER_PART_CANCEL: BrokerOrderStatus.CANCELLED,  # 部撤: part filled, the rest cancelled
        xc.ORDER_CANCELED: BrokerOrderStatus.CANCELLED,  # 已撤
        xc.ORDER_SUCCEEDED: BrokerOrderStatus.FILLED,  # 已成
        xc.ORDER_JUNK: BrokerOrderStatus.REJECTED,  # 废单
        xc.ORDER_UNKNOWN: working,  # 未知: not an outcome; keep polling
    }
    return XtTables(
        order_types={"BUY": xc.STOCK_BUY, "SELL": xc.STOCK_SELL},
        sides={
            xc.STOCK_BUY: "BUY", xc.STOCK_SELL: "SELL",  # also CREDIT_BUY / CREDIT_SELL (担保品买卖)
            xc.CREDIT_FIN_BUY: "BUY", xc.CREDIT_SLO_SELL: "SELL",
            xc.CREDIT_BUY_SECU_REPAY: "BUY", xc.CREDIT_SELL_SECU_REPAY: "SELL",
        },
        offset_sides={xc.OFFSET_FLAG_OPEN: "BUY", xc.OFFSET_FLAG_CLOSE: "SELL"},
        limit_price_types=frozenset({xc.FIX_PRICE, xc.LATEST_PRICE, BROKER_PRICE_LIMIT}),
        market_price_types=market,
        read_market_price_types=frozenset({*shanghai.values(), *shenzhen.values(), BROKER_PRICE_ANY,
                                            BROKER_PRICE_BEST}),
        statuses=statuses,
        fix_price=xc.FIX_PRICE,
        account_types={"STOCK": xc.SECURITY_ACCOUNT, "CREDIT": xc.CREDIT_ACCOUNT},
    )


MARKET_STYLES = ("best5_cancel", "best5_limit", "best_opposite", "best_own", "immediate_cancel", "fill_or_kill")


# ----------------------------------------------------------------------------- reading xttype objects


def _decimal(value: Any) -> Decimal:
    """A float of miniQMT's as a Decimal (through its shortest repr, so 9.9 is 9.9)."""
    try:
        return Decimal(str(value if value is not None else 0))
    except InvalidOperation:
        return ZERO


def _price(value: Any) -> Decimal:
    return to_price_places(_decimal(value))


def _money(value: Any) -> Decimal:
    return to_cent(_decimal(value))


def _moment(stamp: Any) -> datetime:
    """``order_time`` / ``traded_time`` (epoch seconds; milliseconds in some builds) as an aware
    datetime; a missing stamp reads as now."""
    try:
        seconds = float(stamp)
    except (TypeError, ValueError):
        seconds = 0.0
    if seconds > 1e11:
        seconds /= 1000
    if seconds <= 0:
        return now()
    return datetime.fromtimestamp(seconds, tz=SHANGHAI)


def _side(tables: XtTables, item: Any) -> str | None:
    side = tables.sides.get(int(getattr(item, "order_type", -1) or -1))
    return side or tables.offset_sides.get(int(getattr(item, "offset_flag", -1) or -1))


def to_broker_order(item: Any, error: str = "") -> BrokerOrder | None:
    """An ``XtOrder`` as a BrokerOrder; None for an order we cannot read (an order type other than
    a buy or a sell: never one of ours). ``error``: the ``on_order_error`` text, used when the
    order's own ``status_msg`` is empty."""
    tables = xt_tables()
    side = _side(tables, item)
    if side is None:
        log.warning("xtquant: order %s has order_type %s, not a buy or a sell; skipped",
                    getattr(item, "order_id", "?"), getattr(item, "order_type", "?"))
        return None
    filled = int(item.traded_volume or 0)
    status = tables.statuses.get(int(item.order_status), BrokerOrderStatus.OPEN)
    if status == BrokerOrderStatus.OPEN and filled:
        status = BrokerOrderStatus.PARTIALLY_FILLED
    price_type = int(item.price_type)
    is_market = price_type in tables.read_market_price_types
    price = _price(item.price)
    created = _moment(item.order_time)
    return BrokerOrder(
        broker_order_id=str(item.order_id),
        client_ref=str(item.order_remark or ""),
        symbol=str(item.stock_code),
        side=side,
        order_type="MARKET" if is_market else "LIMIT",
        price=None if is_market or not price else price,
        quantity=int(item.order_volume),
        filled_quantity=filled,
        avg_fill_price=_price(item.traded_price) if filled else None,
        status=status,
        message=str(item.status_msg or "") or error,
        created_at=created,
        trading_day=created.astimezone(SHANGHAI).date(),
    )


def to_broker_trade(item: Any) -> BrokerTrade | None:
    """An ``XtTrade`` as a BrokerTrade (``commission`` is miniQMT's 手续费, all fees in one)."""
    side = _side(xt_tables(), item)
    if side is None:
        return None
    filled_at = _moment(item.traded_time)
    return BrokerTrade(
        broker_trade_id=str(item.traded_id),
        broker_order_id=str(item.order_id),
        symbol=str(item.stock_code),
        side=side,
        price=_price(item.traded_price),
        quantity=int(item.traded_volume),
        amount=_money(item.traded_amount),
        filled_at=filled_at,
        trading_day=filled_at.astimezone(SHANGHAI).date(),
        commission=_money(getattr(item, "commission", 0)),
    )


def to_broker_balance(asset: Any) -> BrokerBalance:
    """An ``XtAsset``: ``cash`` is what is available, ``frozen_cash`` what orders hold."""
    available = _money(asset.cash)
    frozen = _money(asset.frozen_cash)
    return BrokerBalance(cash=available + frozen, available=available, frozen=frozen,
                         market_value=_money(asset.market_value), total_assets=_money(asset.total_asset))


def to_broker_position(item: Any) -> BrokerPosition:
    last = _price(item.last_price) if getattr(item, "last_price", None) else None
    return BrokerPosition(symbol=str(item.stock_code), quantity=int(item.volume),
                          sellable_quantity=int(item.can_use_volume), avg_cost=_price(item.avg_price),
                          last_price=last, market_value=_money(item.market_value))


def _shaped(mapper: Callable[[Any], Any], items: Any) -> list[Any]:
    """``mapper`` over miniQMT's answer; an answer not of xttype's shape is a BrokerError (never
    a shorter list, which would read as orders the broker does not have)."""
    try:
        return [mapper(item) for item in items]
    except (AttributeError, TypeError, ValueError) as exc:
        raise BrokerError(bilingual("miniQMT answered in an unexpected shape: {error}", error=repr(exc))) from exc


def _progress(order: BrokerOrder) -> tuple[bool, int]:
    return order.status in _TERMINAL, order.filled_quantity


# ----------------------------------------------------------------------------- what the callbacks said


@dataclass
class _Book:
    """One 资金账号's orders and trades as the callbacks and reads reported them, today."""

    day: date
    epoch: str
    orders: dict[str, BrokerOrder] = field(default_factory=dict)
    trades: dict[tuple[str, str], BrokerTrade] = field(default_factory=dict)  # (order id, traded_id)
    order_errors: dict[str, str] = field(default_factory=dict)  # order id -> on_order_error text
    remark_errors: dict[str, str] = field(default_factory=dict)  # order_remark -> on_order_error text
    cancel_errors: dict[str, str] = field(default_factory=dict)  # order id -> on_cancel_error text
    changed: dict[str, int] = field(default_factory=dict)  # order id -> change number
    sequence: int = 0
    pushes: int = 0  # changes that came by callback (a full read's cursor must not skip one)
    last_full_read: float = float("-inf")

    def _touch(self, order_id: str) -> None:
        self.sequence += 1
        self.changed[order_id] = self.sequence

    def put_order(self, order: BrokerOrder) -> bool:
        """Keep ``order`` unless the book already holds a later state of it (a read that raced a
        callback must not take an order back from FILLED or lose fills). True if it changed."""
        old = self.orders.get(order.broker_order_id)
        if old is not None and (_progress(old) > _progress(order) or old == order):
            return False
        if not order.message and old is not None and old.message and order.status == old.status:
            order = replace(order, message=old.message)
        self.orders[order.broker_order_id] = order
        self._touch(order.broker_order_id)
        return True

    def put_trade(self, trade: BrokerTrade) -> bool:
        key = (trade.broker_order_id, trade.broker_trade_id)
        if key in self.trades:
            return False  # a replayed or repeated report of the same trade
        self.trades[key] = trade
        self._touch(trade.broker_order_id)
        return True

    def put_order_error(self, order_id: str, remark: str, message: str) -> bool:
        if remark:
            self.remark_errors[remark] = message
        if order_id in ("", "-1", "0"):
            return False
        self.order_errors[order_id] = message
        order = self.orders.get(order_id)
        if order is not None and not order.message:
            self.orders[order_id] = replace(order, message=message)
            self._touch(order_id)
            return True
        return False

    def trades_of(self, order_ids: set[str]) -> list[BrokerTrade]:
        return [t for (order_id, _), t in self.trades.items() if order_id in order_ids]

    def cursor(self) -> str:
        return f"{self.epoch}:{self.sequence}"

    def since(self, cursor: str | None) -> int | None:
        """The change number ``cursor`` names, if it is one of this book's."""
        epoch, _, number = (cursor or "").rpartition(":")
        if epoch != self.epoch or not number.isdigit() or int(number) > self.sequence:
            return None
        return int(number)


class _Callbacks:
    """The ``XtQuantTraderCallback`` of one trader: hands each push to its session, tagged with
    the trader's generation so that a replaced trader's late pushes are ignored. Never raises:
    xttrader runs callbacks on its executor, where an exception would vanish."""

    def __init__(self, session: _Session, generation: int) -> None:
        self._session = session
        self._generation = generation

    def _guarded(self, handler: Callable[..., None], *args: Any) -> None:
        try:
            handler(self._generation, *args)
        except Exception:
            log.exception("xtquant: callback %s failed", getattr(handler, "__name__", handler))

    def on_connected(self) -> None:
        return None

    def on_disconnected(self) -> None:
        self._guarded(self._session.disconnected)

    def on_stock_order(self, order: Any) -> None:
        self._guarded(self._session.pushed_order, order)

    def on_stock_trade(self, trade: Any) -> None:
        self._guarded(self._session.pushed_trade, trade)

    def on_order_error(self, error: Any) -> None:
        self._guarded(self._session.pushed_order_error, error)

    def on_cancel_error(self, error: Any) -> None:
        self._guarded(self._session.pushed_cancel_error, error)

    def __getattr__(self, name: str) -> Callable[..., None]:
        # on_stock_asset, on_stock_position, on_account_status, the async responses, ...: the
        # adapter reads assets and positions when asked; nothing to keep.
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def _real_trader(path: str, session_id: int) -> Any:
    from xtquant.xttrader import XtQuantTrader  # Windows only: loads miniQMT's client library

    return XtQuantTrader(path, session_id)


_trader_factory: TraderFactory = _real_trader


def set_trader_factory(factory: TraderFactory | None) -> TraderFactory:
    """Build traders with ``factory(path, session_id)`` from now on (None: the real XtQuantTrader);
    returns the previous factory. Sessions opened before keep theirs. The seam for tests."""
    global _trader_factory
    previous = _trader_factory
    _trader_factory = factory or _real_trader
    return previous


class _Session:
    """One trader (path, session id) in this process: its connection and the books of the
    accounts it serves. ``lock`` guards everything; ``news`` wakes callers waiting for a push."""

    def __init__(self, path: str, session_id: int, factory: TraderFactory) -> None:
        self.path = path
        self.session_id = session_id
        self.factory = factory
        self.lock = threading.RLock()
        self.news = threading.Condition(self.lock)
        self.connecting = threading.Lock()
        self.trader: Any = None
        self.generation = 0
        self.connected = False
        self.subscribed: set[str] = set()
        self.books: dict[str, _Book] = {}
        self.names: dict[str, set[str]] = {}  # 资金账号 -> our account names (for broker_update)
        self.last_attempt = float("-inf")
        self.last_failure = ""

    # -- books

    def book(self, account_id: str) -> _Book:
        """The account's book of today (a new day starts an empty one). Caller holds ``lock``."""
        today = now().astimezone(SHANGHAI).date()
        book = self.books.get(account_id)
        if book is None or book.day != today:
            book = self.books[account_id] = _Book(day=today, epoch=uuid.uuid4().hex[:12])
        return book

    def announce(self, account_id: str) -> None:
        """Tell the orders layer (brokers.signals.broker_update) that the account changed."""
        with self.lock:
            names = sorted(self.names.get(account_id, ()))
        for name in names:
            for receiver, result in broker_update.send_robust(sender=XtQuantBroker, account_name=name):
                if isinstance(result, Exception):
                    log.error("xtquant: broker_update receiver %s failed for %s: %r", receiver, name, result)

    # -- pushes (on the trader's callback thread)

    def _current(self, generation: int) -> bool:
        return generation == self.generation and self.connected

    def disconnected(self, generation: int) -> None:
        with self.lock:
            if generation != self.generation:
                return
            self.connected = False
            self.subscribed.clear()
            self.last_failure = bilingual("miniQMT disconnected")
            self.news.notify_all()
        log.warning("xtquant: miniQMT at %s (session %s) disconnected", self.path, self.session_id)

    def _keep(self, generation: int, item: Any, change: Callable[[_Book], bool]) -> None:
        """Apply a push of the current trader to its account's book; wake waiting callers, and
        announce the account when its orders or trades changed."""
        account_id = str(item.account_id)
        with self.lock:
            if not self._current(generation):
                return
            book = self.book(account_id)
            changed = change(book)
            book.pushes += changed
            self.news.notify_all()
        if changed:
            self.announce(account_id)

    def pushed_order(self, generation: int, item: Any) -> None:
        def change(book: _Book) -> bool:
            order = to_broker_order(item, book.order_errors.get(str(item.order_id), ""))
            return order is not None and book.put_order(order)

        self._keep(generation, item, change)

    def pushed_trade(self, generation: int, item: Any) -> None:
        trade = to_broker_trade(item)
        self._keep(generation, item, lambda book: trade is not None and book.put_trade(trade))

    def pushed_order_error(self, generation: int, item: Any) -> None:
        message = _error_text(item) or bilingual("order refused (error {code})", code=getattr(item, "error_id", "?"))
        remark = str(getattr(item, "order_remark", "") or "")
        self._keep(generation, item, lambda book: book.put_order_error(str(item.order_id), remark, message))

    def pushed_cancel_error(self, generation: int, item: Any) -> None:
        message = _error_text(item) or bilingual("cancel refused (error {code})", code=getattr(item, "error_id", "?"))

        def change(book: _Book) -> bool:
            book.cancel_errors[str(item.order_id)] = message
            return False  # the order itself did not change: only the cancel's waiter needs it

        self._keep(generation, item, change)

    def close(self) -> None:
        with self.lock:
            trader, self.trader = self.trader, None
            self.connected = False
            self.generation += 1
            self.news.notify_all()
        if trader is not None:
            _stop_quietly(trader)


def _error_text(item: Any) -> str:
    return str(getattr(item, "error_msg", "") or "")


def _stop_quietly(trader: Any) -> None:
    """Stop a replaced trader off the caller's thread (xttrader's stop waits for its executors)."""
    def stop() -> None:
        try:
            trader.stop()
        except Exception:  # noqa: BLE001 - a dead trader may fail to stop; it is dropped either way
            log.debug("xtquant: stopping a replaced trader failed", exc_info=True)

    threading.Thread(target=stop, name="xtquant-stop", daemon=True).start()


_SESSIONS: dict[tuple[str, int], _Session] = {}
_SESSIONS_LOCK = threading.Lock()


def _session_for(path: str, session_id: int) -> _Session:
    with _SESSIONS_LOCK:
        session = _SESSIONS.get((path, session_id))
        if session is None:
            session = _SESSIONS[(path, session_id)] = _Session(path, session_id, _trader_factory)
        return session


def sessions_close(path: str | None = None) -> None:
    """Drop this process's sessions (of ``path``, or all), stopping their traders."""
    with _SESSIONS_LOCK:
        keys = [key for key in _SESSIONS if path is None or key[0] == path]
        dropped = [_SESSIONS.pop(key) for key in keys]
    for session in dropped:
        session.close()


# ----------------------------------------------------------------------------- the adapter


def _setting_float(settings: dict[str, Any], key: str, default: float) -> float:
    try:
        return float(settings.get(key, default))
    except (TypeError, ValueError):
        return default


@register
class XtQuantBroker(BrokerInterface):
    """An account at a broker reached through miniQMT (see the module docstring).

    Settings: ``path`` (miniQMT's userdata_mini folder), ``session_id`` (int, unique per process
    on that miniQMT), ``account_id`` (资金账号), ``account_type`` (STOCK or CREDIT). Optional:
    ``market_style`` (default best5_cancel; see MARKET_STYLES), ``strategy_name``,
    ``call_timeout`` (s, default BROKER_CALL_TIMEOUT_SECONDS), ``cancel_wait`` (s, 3),
    ``error_wait`` (s, 1), ``full_read_seconds`` (30), ``reconnect_seconds`` (2).
    """

    kind = "xtquant"
    label = gettext_lazy("Thinktrader miniQMT (XtQuant)")
    capabilities = Capabilities(market_orders=True, modify=False, history=False, client_ref=True)

    def __init__(self, account_name: str, settings: dict[str, Any] | None = None) -> None:
        super().__init__(account_name, settings)
        s = self.settings
        self.path = str(s.get("path") or "")
        self.account_id = str(s.get("account_id") or "")
        self.account_type = str(s.get("account_type") or "STOCK").upper()
        try:
            self.session_id = int(s.get("session_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.session_id = 0
        self.market_style = str(s.get("market_style") or "best5_cancel")
        self.strategy_name = str(s.get("strategy_name") or "backoffice")
        self.call_timeout = _setting_float(s, "call_timeout", django_settings.BROKER_CALL_TIMEOUT_SECONDS)
        self.cancel_wait = _setting_float(s, "cancel_wait", 3.0)
        self.error_wait = _setting_float(s, "error_wait", 1.0)
        self.full_read_seconds = _setting_float(s, "full_read_seconds", 30.0)
        self.reconnect_seconds = _setting_float(s, "reconnect_seconds", 2.0)

    # -- plumbing

    def _settings_problem(self) -> str:
        missing = [key for key, value in (("path", self.path), ("account_id", self.account_id)) if not value]
        if self.session_id <= 0:
            missing.append("session_id")
        if missing:
            return bilingual("xtquant settings lack {names}", names=", ".join(missing))
        if self.account_type not in xt_tables().account_types:
            return bilingual("xtquant account_type must be STOCK or CREDIT, not {value}", value=self.account_type)
        if self.market_style not in MARKET_STYLES:
            return bilingual("xtquant market_style {value} is unknown", value=self.market_style)
        return ""

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` on a thread of its own, waited for ``call_timeout`` seconds:
        xttrader's synchronous calls wait for miniQMT's answer without a limit."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                box["value"] = function(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="xtquant-call", daemon=True).start()
        if not done.wait(self.call_timeout):
            raise BrokerTimeout(bilingual("miniQMT did not answer within {seconds} s", seconds=self.call_timeout))
        if "error" in box:
            error = box["error"]
            if isinstance(error, BrokerError):
                raise error
            raise BrokerUnavailable(bilingual("the xtquant call failed: {error}", error=repr(error))) from error
        return box["value"]

    def _account(self) -> Any:
        from xtquant.xttype import StockAccount  # pure Python

        return StockAccount(self.account_id, self.account_type)

    def _ready(self) -> tuple[_Session, Any, int]:
        """The session, connected (again, if it dropped) and subscribed to this account; returns
        it with the trader and the generation the caller's answers must still belong to."""
        problem = self._settings_problem()
        if problem:
            raise BrokerUnavailable(problem)
        session = _session_for(self.path, self.session_id)
        with session.lock:
            session.names.setdefault(self.account_id, set()).add(self.account_name)
        with session.connecting:
            if not session.connected:
                self._connect(session)
            if self.account_id not in session.subscribed:
                try:
                    result = self._call(session.trader.subscribe, self._account())
                except BrokerError as exc:  # nothing was sent yet: whatever comes next did not happen
                    raise BrokerUnavailable(exc.message) from exc
                if result != 0:
                    raise BrokerUnavailable(bilingual("miniQMT refused to subscribe account {account} (subscribe returned {code})",
                                                      account=self.account_id, code=result))
                with session.lock:
                    session.subscribed.add(self.account_id)
            return session, session.trader, session.generation

    def _connect(self, session: _Session) -> None:
        """A new trader for the session: register the callbacks, start, connect. Caller holds
        ``session.connecting``."""
        if time.monotonic() - session.last_attempt < self.reconnect_seconds:
            raise BrokerUnavailable(session.last_failure or bilingual("miniQMT is not connected"))
        session.last_attempt = time.monotonic()
        if session.trader is not None:
            _stop_quietly(session.trader)
            session.trader = None
        with session.lock:
            session.generation += 1
            generation = session.generation
        try:
            trader = session.factory(session.path, session.session_id)
        except Exception as exc:  # ImportError on Linux: no miniQMT client library here
            session.last_failure = bilingual("the xtquant trader cannot be built here: {error}", error=repr(exc))
            raise BrokerUnavailable(session.last_failure) from exc
        trader.register_callback(_Callbacks(session, generation))
        if hasattr(trader, "set_relaxed_response_order_enabled"):
            # Answers on their own thread, so a poll run from a callback may query the trader.
            trader.set_relaxed_response_order_enabled(True)
        try:
            self._call(trader.start)
            result = self._call(trader.connect)
        except BrokerError as exc:
            _stop_quietly(trader)
            session.last_failure = exc.message
            raise BrokerUnavailable(exc.message) from exc
        if result != 0:
            _stop_quietly(trader)
            session.last_failure = bilingual("cannot connect to miniQMT at {path} (connect returned {code})",
                                             path=session.path, code=result)
            raise BrokerUnavailable(session.last_failure)
        with session.lock:
            session.trader = trader
            session.connected = True
            session.subscribed.clear()
            for book in session.books.values():
                book.epoch = uuid.uuid4().hex[:12]  # what was pushed before may have gaps: read all
        log.info("xtquant: connected to miniQMT at %s (session %s)", session.path, session.session_id)

    def _checked(self, session: _Session, generation: int) -> None:
        """Raise if the session dropped while a call was out: its answer may be miniQMT's empty
        reply of a lost connection, not the broker's books."""
        with session.lock:
            if session.generation != generation or not session.connected:
                raise BrokerUnavailable(session.last_failure or bilingual("miniQMT disconnected"))

    def _wait(self, session: _Session, generation: int, seconds: float, found: Callable[[], Any]) -> Any:
        """Wait up to ``seconds`` for ``found()`` to answer something (checked on every push)."""
        deadline = time.monotonic() + seconds
        with session.lock:
            while True:
                answer = found()
                if answer:
                    return answer
                remaining = deadline - time.monotonic()
                if remaining <= 0 or session.generation != generation or not session.connected:
                    return None
                session.news.wait(remaining)

    # -- the interface

    def login(self) -> None:
        """Connect to miniQMT and subscribe to the account's pushes. Idempotent."""
        self._ready()

    def get_balance(self) -> BrokerBalance:
        session, trader, generation = self._ready()
        asset = self._call(trader.query_stock_asset, self._account())
        self._checked(session, generation)
        if asset is None:
            raise BrokerUnavailable(bilingual("miniQMT returned no assets for account {account}", account=self.account_id))
        [balance] = _shaped(to_broker_balance, [asset])
        return balance

    def get_positions(self) -> list[BrokerPosition]:
        session, trader, generation = self._ready()
        items = self._call(trader.query_stock_positions, self._account())
        self._checked(session, generation)
        if items is None:
            raise BrokerUnavailable(bilingual("miniQMT returned no positions for account {account}", account=self.account_id))
        return [p for p in _shaped(to_broker_position, items) if p.quantity > 0]

    def place_order(self, request: OrderRequest) -> OrderAck:
        """Send the order; the id answered means "sent". A rejection by the counter comes later
        (the order reads REJECTED); -1 (not sent) raises BrokerError with miniQMT's reason."""
        tables = xt_tables()
        order_type = tables.order_types.get(request.side)
        if order_type is None:
            raise BrokerError(bilingual("unknown side {side}", side=request.side))
        if not request.client_ref.isascii() or len(request.client_ref) > ORDER_REMARK_MAX:
            raise BrokerError(bilingual("client_ref {ref} does not fit order_remark ({limit} ASCII characters)",
                                        ref=request.client_ref, limit=ORDER_REMARK_MAX))
        exchange = request.symbol.rpartition(".")[2].upper()
        if request.order_type == "MARKET":
            price_type = tables.market_price_type(exchange, self.market_style)
            if price_type is None:
                raise BrokerError(bilingual("market style {style} is not available on {exchange}",
                                            style=self.market_style, exchange=exchange or request.symbol))
            price = float(request.protection_price or 0)  # SSE/STAR: the protection price; else ignored
        elif request.order_type == "LIMIT" and request.price is not None and request.price > 0:
            price_type, price = tables.fix_price, float(request.price)
        else:
            raise BrokerError(bilingual("order type {type} needs a positive price", type=request.order_type))
        session, trader, generation = self._ready()
        with session.lock:
            session.book(self.account_id).remark_errors.pop(request.client_ref, None)
        order_id = self._call(trader.order_stock, self._account(), request.symbol, order_type, int(request.quantity),
                              price_type, price, self.strategy_name, request.client_ref)
        if order_id is not None and int(order_id) > 0:
            return OrderAck(str(order_id), bilingual("sent to miniQMT"))
        reason = self._wait(session, generation, self.error_wait,
                            lambda: session.book(self.account_id).remark_errors.get(request.client_ref))
        self._checked(session, generation)  # -1 because the connection went: not a refusal
        raise BrokerError(reason or bilingual("miniQMT did not send the order (order_stock returned {code})", code=order_id))

    def cancel_order(self, broker_order_id: str) -> None:
        """Ask for the cancel and wait up to ``cancel_wait`` for its outcome: the order ended, or
        ``on_cancel_error`` (raised as BrokerError with the broker's words). Past the wait the
        outcome is left to the next read."""
        if not broker_order_id.isdigit():
            raise BrokerError(bilingual("no such order {id}", id=broker_order_id))
        session, trader, generation = self._ready()
        with session.lock:
            book = session.book(self.account_id)
            book.cancel_errors.pop(broker_order_id, None)
            known = book.orders.get(broker_order_id)
            ended_before = known is not None and known.status in _TERMINAL  # only a refusal can answer
        result = self._call(trader.cancel_order_stock, self._account(), int(broker_order_id))

        def outcome() -> tuple[str, str] | None:
            book = session.book(self.account_id)
            if broker_order_id in book.cancel_errors:
                return ("refused", book.cancel_errors[broker_order_id])
            order = book.orders.get(broker_order_id)
            ended = not ended_before and order is not None and order.status in _TERMINAL
            return ("ended", "") if ended else None

        if result != 0:
            found = self._wait(session, generation, self.error_wait, outcome)
            self._checked(session, generation)
            raise BrokerError(found[1] if found and found[1] else
                              bilingual("miniQMT did not send the cancel (cancel_order_stock returned {code})", code=result))
        found = self._wait(session, generation, self.error_wait if ended_before else self.cancel_wait, outcome)
        if found and found[0] == "refused":
            raise BrokerError(found[1])

    def _read_orders(self, session: _Session, trader: Any, generation: int) -> list[BrokerOrder]:
        items = self._call(trader.query_stock_orders, self._account(), False)
        self._checked(session, generation)
        if items is None:
            raise BrokerUnavailable(bilingual("miniQMT returned no order list for account {account}", account=self.account_id))
        with session.lock:
            book = session.book(self.account_id)
            read = [o for o in _shaped(lambda i: to_broker_order(i, book.order_errors.get(str(i.order_id), "")), items) if o]
            for order in read:
                book.put_order(order)
            return [book.orders.get(o.broker_order_id, o) for o in read]

    def _read_trades(self, session: _Session, trader: Any, generation: int) -> list[BrokerTrade]:
        items = self._call(trader.query_stock_trades, self._account())
        self._checked(session, generation)
        if items is None:
            raise BrokerUnavailable(bilingual("miniQMT returned no trade list for account {account}", account=self.account_id))
        unique: dict[tuple[str, str], BrokerTrade] = {}
        for trade in _shaped(to_broker_trade, items):
            if trade is not None:
                unique.setdefault((trade.broker_order_id, trade.broker_trade_id), trade)
        with session.lock:
            book = session.book(self.account_id)
            for trade in unique.values():
                book.put_trade(trade)
        return list(unique.values())

    def query_orders(self) -> list[BrokerOrder]:
        session, trader, generation = self._ready()
        return self._read_orders(session, trader, generation)

    def query_trades(self) -> list[BrokerTrade]:
        """Today's trades, each (order id, traded_id) once."""
        session, trader, generation = self._ready()
        return self._read_trades(session, trader, generation)

    def query_order(self, broker_order_id: str) -> BrokerSnapshot:
        if not broker_order_id.isdigit():
            return BrokerSnapshot()
        session, trader, generation = self._ready()
        item = self._call(trader.query_stock_order, self._account(), int(broker_order_id))
        self._checked(session, generation)
        if item is None:
            return BrokerSnapshot()
        with session.lock:
            book = session.book(self.account_id)
            [order] = _shaped(lambda i: to_broker_order(i, book.order_errors.get(broker_order_id, "")), [item])
            if order is None:
                return BrokerSnapshot()
            book.put_order(order)
            order = book.orders[broker_order_id]
        trades = [t for t in self._read_trades(session, trader, generation) if t.broker_order_id == broker_order_id]
        return BrokerSnapshot(orders=[order], trades=trades)

    def query_changes(self, cursor: str | None) -> BrokerChanges:
        """The orders the callbacks changed after ``cursor``, with their trades; a full read (see
        the module docstring) when the cursor is not this book's, after a reconnect, or when the
        last full read is older than ``full_read_seconds``."""
        session, trader, generation = self._ready()
        with session.lock:
            book = session.book(self.account_id)
            since = book.since(cursor)
            if since is not None and time.monotonic() - book.last_full_read < self.full_read_seconds:
                ids = {order_id for order_id, number in book.changed.items() if number > since and order_id in book.orders}
                orders = sorted((book.orders[i] for i in ids), key=lambda o: book.changed[o.broker_order_id])
                return BrokerChanges(orders, book.trades_of(ids), cursor=book.cursor(), complete=False)
            before = (book.epoch, book.pushes, book.cursor())
            started = time.monotonic()
        orders = self._read_orders(session, trader, generation)
        trades = self._read_trades(session, trader, generation)
        next_cursor: str | None
        with session.lock:
            book = session.book(self.account_id)
            book.last_full_read = started
            if before[:2] == (book.epoch, book.pushes):
                next_cursor = book.cursor()  # this read holds everything the book does
            elif before[0] == book.epoch:
                next_cursor = before[2]  # a push came during the read: read it again next time
            else:
                next_cursor = None  # a reconnect or a new day during the read: read everything again
        return BrokerChanges(orders, trades, cursor=next_cursor, complete=True)
