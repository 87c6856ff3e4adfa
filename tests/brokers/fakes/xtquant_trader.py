"""A fake miniQMT and its ``XtQuantTrader``, built from xtquant's real ``xttype`` objects.

``FakeMiniQmt`` is one miniQMT client with the broker's counter and the exchange behind it: the
accounts' cash, positions, orders and trades. ``FakeXtQuantTrader`` has the API of
``xtquant.xttrader.XtQuantTrader`` (the part the adapter uses, with the same arguments and
answers) and is what ``FakeMiniQmt.trader(path, session_id)`` builds; pass that method to
``brokers.adapters.xtquant.set_trader_factory``.

What it reproduces of miniQMT (xttrader.py and its manual, doc/xttrader.md, in the installed
wheel 250807.1.2):

* every record is an ``xttype`` object (XtOrder, XtTrade, XtPosition, XtAsset, XtOrderError,
  XtCancelError) made with xttype's own constructor; queries answer fresh copies, as the C++
  client builds new objects for every answer;
* ``order_stock`` answers an order id that only means "sent": the order is entered 未报
  (ORDER_UNREPORTED), cash or shares are frozen, and the counter's verdict comes after the call,
  on the callback thread: 已报 (ORDER_REPORTED), or 废单 (ORDER_JUNK, ``status_msg`` saying why)
  with ``on_order_error``. An order miniQMT cannot send at all answers -1 and
  ``on_order_error`` with order id -1 and the order's remark;
* ``cancel_order_stock`` answers 0 ("sent") and the exchange confirms later (已报待撤, then 已撤
  or 部撤), or refuses through ``on_cancel_error``; an order id it does not know answers -1;
* pushes run on one callback thread, in order (xttrader's ThreadPoolExecutor(max_workers=1));
  ``paused=True`` holds them until the test calls ``settle`` (then the test thread waits while
  they run: SQLite's in-memory test database does not take two threads writing at once);
* a lost connection pushes ``on_disconnected`` once; the trader's answers are then those of a
  dead link (empty lists, None, -1), and it stays dead: ``connect`` is one-shot. A trader built
  while miniQMT is down fails to ``connect`` (non-zero). ``subscribe`` replays the day's trades
  through ``on_stock_trade``, as a reconnect does.

Test controls (the venue's): ``fund``, ``hold``, ``fill``, ``reject``, ``hang_next_order``,
``refuse_next_cancel``, ``repeat_trades``, ``go_down``, ``come_up``, ``settle`` (wait until
the pushes so far were delivered), ``close``.
"""

from __future__ import annotations

import copy
import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xtquant import xtconstant as xc
from xtquant.xttype import XtAsset, XtCancelError, XtOrder, XtOrderError, XtPosition, XtTrade

_SH_MARKET = {xc.MARKET_SH_CONVERT_5_CANCEL, xc.MARKET_SH_CONVERT_5_LIMIT, xc.MARKET_PEER_PRICE_FIRST,
              xc.MARKET_MINE_PRICE_FIRST}
_SZ_MARKET = {xc.MARKET_SZ_CONVERT_5_CANCEL, xc.MARKET_SZ_INSTBUSI_RESTCANCEL, xc.MARKET_SZ_FULL_OR_CANCEL,
              xc.MARKET_PEER_PRICE_FIRST, xc.MARKET_MINE_PRICE_FIRST}
_MARKET_TYPES = {"SH": _SH_MARKET, "SZ": _SZ_MARKET, "BJ": _SH_MARKET}
_LIVE = {xc.ORDER_UNREPORTED, xc.ORDER_WAIT_REPORTING, xc.ORDER_REPORTED, xc.ORDER_PART_SUCC}
_ENDED = {xc.ORDER_PART_CANCEL, xc.ORDER_CANCELED, xc.ORDER_SUCCEEDED, xc.ORDER_JUNK}


@dataclass
class _Account:
    account_id: str
    cash: float = 0.0  # available (XtAsset.cash)
    frozen: float = 0.0
    positions: dict[str, XtPosition] = field(default_factory=dict)
    orders: dict[int, XtOrder] = field(default_factory=dict)
    frozen_by_order: dict[int, float] = field(default_factory=dict)  # buy: cash held; sell: shares held
    frozen_unit: dict[int, float] = field(default_factory=dict)  # buy: the price its cash is held at
    trades: list[XtTrade] = field(default_factory=list)  # as miniQMT lists them (duplicates when repeating)


class _Delivery:
    """xttrader's callback executor: one thread, pushes in order. ``paused``: the thread waits
    for ``settle`` before each push (so a test decides when pushes arrive)."""

    def __init__(self, paused: bool = False) -> None:
        self.paused = paused
        self.gate = threading.Event()
        if not paused:
            self.gate.set()
        self.queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="fake-miniqmt-callbacks", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.queue.get()
            self.gate.wait()
            try:
                if job is None:
                    return
                job()
            except Exception:  # noqa: BLE001 - xttrader's executor swallows a callback's exception too
                import logging

                logging.getLogger(__name__).exception("fake miniQMT: a callback raised")
            finally:
                self.queue.task_done()

    def submit(self, job: Callable[[], None]) -> None:
        self.queue.put(job)

    def settle(self) -> None:
        self.gate.set()
        self.queue.join()
        if self.paused:
            self.gate.clear()

    def close(self) -> None:
        self.gate.set()
        self.queue.put(None)
        self.thread.join(timeout=5)


class FakeMiniQmt:
    """One miniQMT client with its counter and exchange (see the module docstring)."""

    def __init__(self, *, paused: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.up = True
        self.clock = clock
        self.accounts: dict[str, _Account] = {}
        self.traders: list[FakeXtQuantTrader] = []
        self.prices: dict[str, float] = {}  # last price per symbol (default 10.00)
        self.repeat_trades = False
        self.hang: deque[bool] = deque()  # queued hung order_stock calls: True = the order got through
        self.cancel_refusals: deque[str] = deque()
        self.sent: list[dict[str, Any]] = []  # every order_stock call's arguments
        self.released = threading.Event()
        self.delivery = _Delivery(paused)
        self._order_ids = itertools.count(10_001)
        self._trade_ids = itertools.count(1)
        self._sysids = itertools.count(900_001)

    # -- the traders' side

    def trader(self, path: str, session_id: int) -> FakeXtQuantTrader:
        """What ``XtQuantTrader(path, session_id)`` builds (the adapter's trader factory)."""
        return FakeXtQuantTrader(self, path, session_id)

    def _push(self, account_id: str, name: str, item: Any) -> None:
        """Push ``item`` to ``callback.<name>`` of every live trader subscribed to the account."""
        snapshot = copy.copy(item)  # the C++ client hands each push a new object
        for trader in list(self.traders):
            if trader.connected and account_id in trader.subscriptions and trader.callback is not None:
                self.delivery.submit(lambda t=trader: getattr(t.callback, name)(snapshot))

    def _later(self, job: Callable[[], None]) -> None:
        """The counter acts after the call returned (on the callback thread, as pushes arrive)."""
        def run() -> None:
            with self.lock:
                job()
        self.delivery.submit(run)

    # -- test controls

    def open_account(self, account_id: str) -> None:
        with self.lock:
            self.accounts.setdefault(account_id, _Account(account_id))

    def fund(self, account_id: str, cash: float) -> None:
        with self.lock:
            self.accounts[account_id].cash = float(cash)

    def hold(self, account_id: str, symbol: str, quantity: int, avg_cost: float) -> None:
        with self.lock:
            last = self.prices.get(symbol, 10.0)
            self.accounts[account_id].positions[symbol] = XtPosition(
                account_id, symbol, quantity, quantity, avg_cost, round(quantity * last, 2), 0, 0, quantity, avg_cost,
                xc.DIRECTION_FLAG_LONG, last, round(last / avg_cost - 1, 4) if avg_cost else 0.0, "A000000001", "")

    def fill(self, order_id: int, quantity: int, price: float) -> XtTrade:
        """The exchange executes ``quantity`` of a live order at ``price``: one trade, pushed."""
        with self.lock:
            account, order = self._find(order_id)
            if order.order_status not in _LIVE or quantity > order.order_volume - order.traded_volume:
                raise ValueError(f"fake miniQMT: cannot fill {quantity} of order {order_id} ({order.order_status})")
            amount = round(quantity * price, 2)
            commission = round(max(amount * 0.00025, 5.0), 2)
            trade = XtTrade(account.account_id, order.stock_code, order.order_type, f"T{next(self._trade_ids):08d}",
                            int(self.clock()), price, quantity, amount, order.order_id, order.order_sysid,
                            order.strategy_name, order.order_remark, order.direction, order.offset_flag, commission,
                            order.secu_account, order.instrument_name)
            traded_before = order.traded_volume * order.traded_price
            order.traded_volume += quantity
            order.traded_price = round((traded_before + amount) / order.traded_volume, 4)
            done = order.traded_volume == order.order_volume
            order.order_status = xc.ORDER_SUCCEEDED if done else xc.ORDER_PART_SUCC
            position = self._position(account, order.stock_code)
            if order.order_type == xc.STOCK_BUY:
                held = min(account.frozen_unit[order.order_id] * quantity, account.frozen_by_order[order.order_id])
                account.frozen_by_order[order.order_id] -= held
                account.frozen -= held
                account.cash += held - amount - commission
                cost = position.avg_price * position.volume + amount
                position.volume += quantity  # bought today: not sellable before tomorrow (T+1)
                position.avg_price = position.open_price = round(cost / position.volume, 4)
            else:
                account.frozen_by_order[order.order_id] -= quantity
                position.frozen_volume -= quantity
                position.volume -= quantity
                account.cash += amount - commission
            position.market_value = round(position.volume * position.last_price, 2)
            if done:
                self._release(account, order)
            account.trades.append(trade)
            if self.repeat_trades:
                account.trades.append(trade)
            self._push(account.account_id, "on_stock_trade", trade)
            if self.repeat_trades:
                self._push(account.account_id, "on_stock_trade", trade)
            self._push(account.account_id, "on_stock_order", order)
            self._push(account.account_id, "on_stock_asset", self._asset(account))
            return trade

    def reject(self, order_id: int, message: str) -> None:
        """The exchange rejects an order the counter had reported (废单 after 已报)."""
        with self.lock:
            account, order = self._find(order_id)
            self._junk(account, order, message)

    def hang_next_order(self, *, took_effect: bool) -> None:
        """The next ``order_stock`` gets no answer until ``close``; with ``took_effect`` miniQMT
        entered the order all the same."""
        self.hang.append(took_effect)

    def refuse_next_cancel(self, message: str) -> None:
        self.cancel_refusals.append(message)

    def go_down(self) -> None:
        """The link to miniQMT drops: each connected trader is told once, then is dead."""
        with self.lock:
            self.up = False
            for trader in self.traders:
                if trader.connected:
                    trader.connected = False
                    if trader.callback is not None:
                        self.delivery.submit(trader.callback.on_disconnected)
            self.traders.clear()

    def come_up(self) -> None:
        """miniQMT can be reached again (traders that lost the link stay dead: connect again)."""
        with self.lock:
            self.up = True

    def settle(self) -> None:
        """Wait until everything pushed so far was delivered (and the callbacks returned)."""
        self.delivery.settle()

    def close(self) -> None:
        self.released.set()
        self.delivery.close()

    # -- the counter

    def _find(self, order_id: int) -> tuple[_Account, XtOrder]:
        for account in self.accounts.values():
            if order_id in account.orders:
                return account, account.orders[order_id]
        raise KeyError(order_id)

    def _position(self, account: _Account, symbol: str) -> XtPosition:
        if symbol not in account.positions:
            last = self.prices.get(symbol, 10.0)
            account.positions[symbol] = XtPosition(account.account_id, symbol, 0, 0, 0.0, 0.0, 0, 0, 0, 0.0,
                                                   xc.DIRECTION_FLAG_LONG, last, 0.0, "A000000001", "")
        return account.positions[symbol]

    def _asset(self, account: _Account) -> XtAsset:
        market_value = round(sum(p.market_value for p in account.positions.values()), 2)
        cash, frozen = round(account.cash, 2), round(account.frozen, 2)
        return XtAsset(account.account_id, cash, frozen, market_value, round(cash + frozen + market_value, 2), cash)

    def _release(self, account: _Account, order: XtOrder) -> None:
        held = account.frozen_by_order.pop(order.order_id, 0.0)
        if order.order_type == xc.STOCK_BUY:
            account.frozen -= held
            account.cash += held
        elif held:
            position = self._position(account, order.stock_code)
            position.frozen_volume -= int(held)
            position.can_use_volume += int(held)

    def _junk(self, account: _Account, order: XtOrder, message: str) -> None:
        order.order_status = xc.ORDER_JUNK
        order.status_msg = message
        self._release(account, order)
        self._push(account.account_id, "on_stock_order", order)
        error = XtOrderError(account.account_id, order.order_id, 1001, message, order.strategy_name, order.order_remark)
        error.seq = 0
        self._push(account.account_id, "on_order_error", error)

    def order_stock(self, trader: FakeXtQuantTrader, account_id: str, stock_code: str, order_type: int,
                    order_volume: int, price_type: int, price: float, strategy_name: str, order_remark: str) -> int:
        self.sent.append({"account_id": account_id, "stock_code": stock_code, "order_type": order_type,
                          "order_volume": order_volume, "price_type": price_type, "price": price,
                          "strategy_name": strategy_name, "order_remark": order_remark})
        hang = self.hang.popleft() if self.hang else None
        if hang is False:
            self.released.wait(30)  # the request never reached miniQMT; no answer either
            return -1
        with self.lock:
            account = self.accounts.get(account_id)
            exchange = stock_code.rpartition(".")[2]
            problem = ""
            if account is None:
                problem = "资金账号不存在"
            elif order_type not in (xc.STOCK_BUY, xc.STOCK_SELL):
                problem = "不支持的委托类型"
            elif exchange not in _MARKET_TYPES:
                problem = "证券代码错误"
            elif price_type != xc.FIX_PRICE and price_type not in _MARKET_TYPES[exchange]:
                problem = "该市场不支持此报价类型"
            elif order_volume <= 0 or (price_type == xc.FIX_PRICE and price <= 0):
                problem = "委托数量或价格错误"
            if problem:
                error = XtOrderError(account_id, -1, 1000, problem, strategy_name, order_remark)
                error.seq = 0
                if account is not None:
                    self._push(account_id, "on_order_error", error)
                else:
                    for live in self.traders:
                        if live.connected and live.callback is not None:
                            self.delivery.submit(lambda t=live, e=error: t.callback.on_order_error(e))
                return -1
            assert account is not None
            order_id = next(self._order_ids)
            order = XtOrder(account_id, stock_code, order_id, str(next(self._sysids)), int(self.clock()), order_type,
                            order_volume, price_type, price, 0, 0.0, xc.ORDER_UNREPORTED, "", strategy_name,
                            order_remark, xc.DIRECTION_FLAG_LONG,
                            xc.OFFSET_FLAG_OPEN if order_type == xc.STOCK_BUY else xc.OFFSET_FLAG_CLOSE,
                            "A000000001", "")
            account.orders[order_id] = order
            refusal = self._freeze(account, order)
            self._push(account_id, "on_stock_order", order)
            if refusal:
                self._later(lambda: self._junk(account, order, refusal))
            else:
                self._later(lambda: self._report(account, order))
        if hang is True:
            self.released.wait(30)  # entered, but the answer is lost on the way back
        return order_id

    def _freeze(self, account: _Account, order: XtOrder) -> str:
        """Hold the cash of a buy (at its price, a market buy at its protection price or 10% over
        the last) or the shares of a sell; the counter's refusal text when it cannot."""
        if order.order_type == xc.STOCK_BUY:
            unit = order.price if order.price > 0 else round(self.prices.get(order.stock_code, 10.0) * 1.1, 2)
            needed = round(unit * order.order_volume, 2)
            if needed > account.cash:
                return "可用资金不足"
            account.cash -= needed
            account.frozen += needed
            account.frozen_by_order[order.order_id] = needed
            account.frozen_unit[order.order_id] = unit
            return ""
        position = account.positions.get(order.stock_code)
        if position is None or position.can_use_volume < order.order_volume:
            return "可用股份不足"
        position.can_use_volume -= order.order_volume
        position.frozen_volume += order.order_volume
        account.frozen_by_order[order.order_id] = float(order.order_volume)
        return ""

    def _report(self, account: _Account, order: XtOrder) -> None:
        if order.order_status == xc.ORDER_UNREPORTED:
            order.order_status = xc.ORDER_REPORTED
            self._push(account.account_id, "on_stock_order", order)

    def cancel_order_stock(self, account_id: str, order_id: int) -> int:
        with self.lock:
            account = self.accounts.get(account_id)
            order = account.orders.get(order_id) if account else None
            if account is None or order is None:
                return -1
            if self.cancel_refusals or order.order_status not in _LIVE:
                message = self.cancel_refusals.popleft() if self.cancel_refusals else "委托已结束，不能撤单"
                market = xc.SH_MARKET if order.stock_code.endswith(".SH") else xc.SZ_MARKET
                error = XtCancelError(account_id, order_id, market, order.order_sysid, 2001, message)
                self._later(lambda: self._push(account_id, "on_cancel_error", error))
                return 0
            order.order_status = xc.ORDER_PARTSUCC_CANCEL if order.traded_volume else xc.ORDER_REPORTED_CANCEL
            self._push(account_id, "on_stock_order", order)
            self._later(lambda: self._cancelled(account, order))
            return 0

    def _cancelled(self, account: _Account, order: XtOrder) -> None:
        if order.order_status not in (xc.ORDER_PARTSUCC_CANCEL, xc.ORDER_REPORTED_CANCEL):
            return  # filled meanwhile
        order.order_status = xc.ORDER_PART_CANCEL if order.traded_volume else xc.ORDER_CANCELED
        self._release(account, order)
        self._push(account.account_id, "on_stock_order", order)
        self._push(account.account_id, "on_stock_asset", self._asset(account))


class FakeXtQuantTrader:
    """``XtQuantTrader(path, session, callback=None)`` of one FakeMiniQmt (see the module docstring)."""

    def __init__(self, qmt: FakeMiniQmt, path: str, session: int, callback: Any = None) -> None:
        self.qmt = qmt
        self.path = path
        self.session = session
        self.callback = callback
        self.started = False
        self.connected = False
        self.relaxed = False
        self.subscriptions: set[str] = set()
        self.calls: list[str] = []

    # -- set-up, as xttrader

    def register_callback(self, callback: Any) -> None:
        self.callback = callback

    def set_relaxed_response_order_enabled(self, enabled: bool) -> None:
        self.relaxed = enabled

    def set_timeout(self, timeout: int = 0) -> None:
        return None

    def start(self) -> None:
        self.calls.append("start")
        self.started = True

    def stop(self) -> None:
        self.calls.append("stop")
        self.started = False
        with self.qmt.lock:
            self.connected = False
            if self in self.qmt.traders:
                self.qmt.traders.remove(self)

    def connect(self) -> int:
        """0 when connected; non-zero while miniQMT cannot be reached (or before ``start``)."""
        self.calls.append("connect")
        with self.qmt.lock:
            if not self.started or not self.qmt.up:
                return -1
            self.connected = True
            self.qmt.traders.append(self)
            return 0

    def subscribe(self, account: Any) -> int:
        self.calls.append("subscribe")
        with self.qmt.lock:
            found = self.qmt.accounts.get(account.account_id)
            if not self.connected or found is None:
                return -1
            self.subscriptions.add(account.account_id)
            for trade in list(found.trades):  # the day's trades again, as after a reconnect
                self.qmt._push(account.account_id, "on_stock_trade", trade)
            return 0

    def unsubscribe(self, account: Any) -> int:
        self.subscriptions.discard(account.account_id)
        return 0

    # -- orders

    def order_stock(self, account: Any, stock_code: str, order_type: int, order_volume: int, price_type: int,
                    price: float, strategy_name: str = "", order_remark: str = "") -> int:
        self.calls.append("order_stock")
        if not self.connected:
            return -1
        return self.qmt.order_stock(self, account.account_id, stock_code, order_type, int(order_volume), price_type,
                                    float(price), strategy_name, order_remark)

    def cancel_order_stock(self, account: Any, order_id: int) -> int:
        self.calls.append("cancel_order_stock")
        if not self.connected:
            return -1
        return self.qmt.cancel_order_stock(account.account_id, int(order_id))

    # -- queries: fresh objects, as the C++ client answers; a dead link answers empty

    def _account(self, account: Any) -> _Account | None:
        return self.qmt.accounts.get(account.account_id) if self.connected else None

    def query_stock_asset(self, account: Any) -> XtAsset | None:
        with self.qmt.lock:
            found = self._account(account)
            return self.qmt._asset(found) if found else None

    def query_stock_orders(self, account: Any, cancelable_only: bool = False) -> list[XtOrder]:
        with self.qmt.lock:
            found = self._account(account)
            if found is None:
                return []
            return [copy.copy(o) for o in found.orders.values() if not cancelable_only or o.order_status in _LIVE]

    def query_stock_order(self, account: Any, order_id: int) -> XtOrder | None:
        with self.qmt.lock:
            found = self._account(account)
            order = found.orders.get(int(order_id)) if found else None
            return copy.copy(order) if order else None

    def query_stock_trades(self, account: Any) -> list[XtTrade]:
        with self.qmt.lock:
            found = self._account(account)
            return [copy.copy(t) for t in found.trades] if found else []

    def query_stock_positions(self, account: Any) -> list[XtPosition]:
        with self.qmt.lock:
            found = self._account(account)
            return [copy.copy(p) for p in found.positions.values()] if found else []

    def query_stock_position(self, account: Any, stock_code: str) -> XtPosition | None:
        with self.qmt.lock:
            found = self._account(account)
            position = found.positions.get(stock_code) if found else None
            return copy.copy(position) if position else None
