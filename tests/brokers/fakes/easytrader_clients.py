"""Fakes of easytrader's clients, answering exactly as the real ones do (easytrader 0.23.7).

One :class:`BrokerHost` is the broker's counter and the client process on the Windows host: the
account's books and what goes wrong. Client objects (:class:`HTClient`, :class:`GJClient`,
:class:`UniversalClient`, :class:`MiniqmtClient`) read it through the API of easytrader's
``ClientTrader`` subclasses and ``MiniqmtTrader``, in their shapes:

* GUI clients (``clienttrader.py``): ``balance`` is a dict of floats read from static texts (the
  keys of ``config/client.py`` ``BALANCE_CONTROL_ID_GROUP``: 华泰 has 冻结资金, 通用同花顺 has no
  股票市值); the grids are what pandas makes of the copied or saved grid (``grid_strategies``):
  合同编号, 证券代码 and the other ``GRID_DTYPE`` columns str, other numbers int or float, a
  trailing tab an ``Unnamed: N`` column of "". Column names follow public samples of each build
  (easytrader issues #311, #275, #36 and docs/usage.md). ``buy`` answers ``{"entrust_no": "..."}``
  when the client shows the confirmation, ``{"message": "success"}`` when it does not (国金 here);
  a "提示" dialog without 成功 raises ``TradeError``; ``cancel_entrust`` answers in words.
* miniqmt (``miniqmt/miniqmt_trader.py``): ``balance`` is a list of one dict with English keys,
  order ids are int, ``buy`` answers ``{"entrust_no": -1}`` when ``order_stock`` fails, and while
  its connection is down the order and trade lists are ``[]`` (``query_stock_orders`` returns None).

Faults are queued on the host and taken by the next call concerned: ``none_grid`` (the grid
strategy answered None), ``clipboard`` (pywintypes' clipboard error on long lists), for orders
``refuse`` (TradeError), ``no_number`` (success without entrust number), ``phantom`` (success
reported, order never entered), ``lost_before`` / ``lost_after`` (the window stops answering
before / after the order was entered); ``disconnect`` (the client process dies: every call on a
window raises until a client logs in again after ``reconnect``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from easytrader.exceptions import TradeError

from trading.calendar import SHANGHAI

D = Decimal
ZERO = D("0")


class ElementNotFoundError(Exception):
    """Stands for pywinauto.findwindows.ElementNotFoundError: the client's window is gone."""


class GuiTimeoutError(Exception):
    """Stands for pywinauto.timings.TimeoutError: the window stopped answering."""


class ClipboardError(Exception):
    """Stands for pywintypes.error(1418, 'GetClipboardData', '线程没有打开的剪贴板。')."""


NAMES = {"600000": "浦发银行", "600036": "招商银行", "000001": "平安银行", "688981": "中芯国际"}


def _exchange(code: str) -> str:
    return "SH" if code[0] in "569" else "SZ"


@dataclass
class Entrust:
    number: int
    code: str
    side: str  # BUY | SELL
    price: Decimal | None  # None: a market order
    quantity: int
    at: datetime
    filled: int = 0
    filled_amount: Decimal = ZERO
    ended: str = ""  # "" working, "cancelled", "rejected"
    reason: str = ""

    @property
    def open(self) -> bool:
        return not self.ended and self.filled < self.quantity

    def word(self, rejected: str, part_cancelled: str, cancelled: str, filled: str, partial: str, working: str) -> str:
        """The build's status word for this entrust's state."""
        if self.ended == "rejected":
            return rejected
        if self.ended == "cancelled":
            return part_cancelled if self.filled else cancelled
        if self.filled:
            return filled if self.filled == self.quantity else partial
        return working

    @property
    def avg_price(self) -> float:
        return float((self.filled_amount / self.filled).quantize(D("0.001"))) if self.filled else 0.0


@dataclass
class Fill:
    number: int
    entrust: Entrust
    price: Decimal
    quantity: int
    at: datetime


@dataclass
class BrokerHost:
    """The broker's books for one account and the state of its client process."""

    cash: Decimal = ZERO
    holdings: dict[str, tuple[int, Decimal]] = field(default_factory=dict)  # code -> (shares, avg cost), sellable
    entrusts: list[Entrust] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    alive: bool = True
    epoch: int = 0  # bumped by every restart of the client process; a client logged in before is stale
    place_faults: deque[str] = field(default_factory=deque)
    cancel_refusals: deque[str] = field(default_factory=deque)
    read_faults: dict[str, deque[str]] = field(default_factory=dict)
    replay_trades: bool = False
    last_price: Decimal = D("10.00")
    first_number: int = 11838
    logins: int = 0
    sent: list[tuple[str, str, Decimal | None, int]] = field(default_factory=list)  # every order the client sent

    # -- the exchange and the counter -------------------------------------

    def enter(self, code: str, side: str, price: Decimal | None, quantity: int) -> Entrust:
        """The counter takes an order, or the client's "提示" dialog refuses it (TradeError)."""
        if side == "BUY":
            needed = (price or self.last_price) * quantity
            if needed > self.available_cash():
                raise TradeError("可用资金不足")
        elif quantity > self.sellable(code):
            raise TradeError("可用股份不足")
        entrust = Entrust(self.first_number + len(self.entrusts), code, side, price, quantity, datetime.now(SHANGHAI))
        self.entrusts.append(entrust)
        return entrust

    def entrust(self, number: int | str) -> Entrust:
        return next(e for e in self.entrusts if e.number == int(number))

    def fill(self, number: int | str, quantity: int, price: Decimal) -> Fill:
        entrust = self.entrust(number)
        assert entrust.open and quantity <= entrust.quantity - entrust.filled
        entrust.filled += quantity
        entrust.filled_amount += price * quantity
        made = Fill(26091000 + len(self.fills) + 1, entrust, price, quantity, datetime.now(SHANGHAI))
        self.fills.append(made)
        self.cash += -(price * quantity) if entrust.side == "BUY" else price * quantity
        return made

    def reject(self, number: int | str, reason: str) -> None:
        entrust = self.entrust(number)
        entrust.ended, entrust.reason = "rejected", reason

    def cancel(self, number: int | str) -> bool:
        entrust = self.entrust(number)
        if not entrust.open:
            return False
        entrust.ended = "cancelled"
        return True

    def disconnect(self) -> None:
        self.alive = False

    def reconnect(self) -> None:
        self.alive, self.epoch = True, self.epoch + 1

    def fault(self, kind: str) -> str:
        queue = self.read_faults.get(kind)
        return queue.popleft() if queue else ""

    def fail_read(self, grid: str, fault: str) -> None:
        self.read_faults.setdefault(grid, deque()).append(fault)

    # -- derived numbers ----------------------------------------------------

    def frozen_cash(self) -> Decimal:
        return sum(((e.price or self.last_price) * (e.quantity - e.filled) for e in self.entrusts
                    if e.side == "BUY" and e.open), ZERO)

    def available_cash(self) -> Decimal:
        return self.cash - self.frozen_cash()

    def shares(self) -> dict[str, tuple[int, int, Decimal]]:
        """code -> (held, sellable, cost): holdings are sellable, today's buys are not (T+1)."""
        books: dict[str, list[Any]] = {code: [quantity, quantity, cost * quantity] for code, (quantity, cost) in self.holdings.items()}
        for made in self.fills:
            held = books.setdefault(made.entrust.code, [0, 0, ZERO])
            sign = 1 if made.entrust.side == "BUY" else -1
            held[0] += sign * made.quantity
            held[2] += sign * made.price * made.quantity
            if sign < 0:
                held[1] -= made.quantity
        for e in self.entrusts:
            if e.side == "SELL" and e.open and e.code in books:
                books[e.code][1] -= e.quantity - e.filled
        return {code: (int(q), int(s), (c / q) if q else ZERO) for code, (q, s, c) in books.items()}

    def sellable(self, code: str) -> int:
        return self.shares().get(code, (0, 0, ZERO))[1]

    def market_value(self) -> Decimal:
        return sum((q * c for q, _, c in self.shares().values()), ZERO)


def _day(at: datetime) -> int:
    return int(at.strftime("%Y%m%d"))


class _GuiClient:
    """easytrader's ClientTrader as seen from outside: a window over the broker's counter."""

    broker_type = "ths"
    shows_entrust_no = True  # the client is set to show the order confirmation with its number

    def __init__(self, host: BrokerHost) -> None:
        self.host = host
        self._epoch: int | None = None

    # -- logging in ---------------------------------------------------------

    def prepare(self, config_path: str | None = None, user: str | None = None, password: str | None = None,
                exe_path: str | None = None, comm_password: str | None = None, **kwargs: Any) -> None:
        self.connect(exe_path)

    def connect(self, exe_path: str | None = None, **kwargs: Any) -> None:
        if not self.host.alive:
            raise ElementNotFoundError({"title": "网上股票交易系统5.0", "path": exe_path})
        self.host.logins += 1
        self._epoch = self.host.epoch

    def exit(self) -> None:
        self._epoch = None

    def _window(self) -> None:
        if not self.host.alive or self._epoch != self.host.epoch:
            raise ElementNotFoundError({"title": "网上股票交易系统5.0", "class_name": "#32770"})

    def _grid(self, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        self._window()
        fault = self.host.fault(name)
        if fault == "none_grid":
            return None  # Copy/Xls strategies: pandas could not read what the grid gave
        if fault == "clipboard":
            raise ClipboardError(1418, "GetClipboardData", "线程没有打开的剪贴板。")
        return rows

    # -- reads --------------------------------------------------------------

    @property
    def balance(self) -> dict[str, float]:
        self._window()
        return self._balance()

    @property
    def position(self) -> list[dict[str, Any]] | None:
        return self._grid("position", [self._position_row(code, q, s, c) for code, (q, s, c) in self.host.shares().items()])

    @property
    def today_entrusts(self) -> list[dict[str, Any]] | None:
        return self._grid("today_entrusts", [self._entrust_row(e) for e in self.host.entrusts])

    @property
    def today_trades(self) -> list[dict[str, Any]] | None:
        rows = [self._trade_row(f) for f in self.host.fills]
        if self.host.replay_trades:
            rows = [row for row in rows for _ in (0, 1)]
        return self._grid("today_trades", rows)

    @property
    def cancel_entrusts(self) -> list[dict[str, Any]] | None:
        return self._grid("cancel_entrusts", [self._entrust_row(e) for e in self.host.entrusts if e.open])

    # -- orders -------------------------------------------------------------

    def buy(self, security: str, price: float, amount: int, **kwargs: Any) -> dict[str, str]:
        return self._trade(security, "BUY", D(str(price)), amount)

    def sell(self, security: str, price: float, amount: int, **kwargs: Any) -> dict[str, str]:
        return self._trade(security, "SELL", D(str(price)), amount)

    def market_buy(self, security: str, amount: int, ttype: str | None = None, limit_price: float | None = None,
                   **kwargs: Any) -> dict[str, str]:
        return self._trade(security, "BUY", None, amount)

    def market_sell(self, security: str, amount: int, ttype: str | None = None, limit_price: float | None = None,
                    **kwargs: Any) -> dict[str, str]:
        return self._trade(security, "SELL", None, amount)

    def _trade(self, security: str, side: str, price: Decimal | None, amount: int) -> dict[str, str]:
        self._window()
        code = security[-6:]
        self.host.sent.append((code, side, price, int(amount)))
        fault = self.host.place_faults.popleft() if self.host.place_faults else ""
        if fault == "refuse":
            raise TradeError("委托失败: 证券代码停牌")
        if fault == "lost_before":
            raise GuiTimeoutError("timed out waiting for the 委托确认 dialog")
        if fault == "phantom":
            return {"message": "success"}  # the known lie: nothing was entered
        entrust = self.host.enter(code, side, price, int(amount))
        if fault == "lost_after":
            raise GuiTimeoutError("timed out waiting for the 提示 dialog")
        if fault == "no_number" or not self.shows_entrust_no:
            return {"message": "success"}
        return {"entrust_no": str(entrust.number)}

    def cancel_entrust(self, entrust_no: str) -> dict[str, str]:
        rows = self.cancel_entrusts
        for row in rows or []:
            if row["合同编号"] == entrust_no:  # as ClientTrader.cancel_entrust: CANCEL_ENTRUST_ENTRUST_FIELD
                if self.host.cancel_refusals:
                    return {"message": self.host.cancel_refusals.popleft()}  # the "提示" dialog's words
                self.host.cancel(entrust_no)
                return {"message": "success"}
        return {"message": "委托单状态错误不能撤单, 该委托单可能已经成交或者已撤"}

    # -- shapes of one build ------------------------------------------------

    def _balance(self) -> dict[str, float]:
        raise NotImplementedError

    def _position_row(self, code: str, held: int, sellable: int, cost: Decimal) -> dict[str, Any]:
        raise NotImplementedError

    def _entrust_row(self, e: Entrust) -> dict[str, Any]:
        raise NotImplementedError

    def _trade_row(self, f: Fill) -> dict[str, Any]:
        raise NotImplementedError


class HTClient(_GuiClient):
    """华泰 网上股票交易系统5.0 (easytrader ``ht_client``; grids by the Xls strategy)."""

    broker_type = "ht"

    def _balance(self) -> dict[str, float]:
        h = self.host
        return {"资金余额": float(h.cash), "冻结资金": float(h.frozen_cash()), "可用金额": float(h.available_cash()),
                "可取金额": float(h.available_cash()), "股票市值": float(h.market_value()),
                "总资产": float(h.cash + h.market_value())}

    def _position_row(self, code: str, held: int, sellable: int, cost: Decimal) -> dict[str, Any]:
        return {"证券代码": code, "证券名称": NAMES.get(code, code), "股票余额": held, "可用余额": sellable,
                "冻结数量": held - sellable, "成本价": float(cost), "市价": float(cost), "盈亏": 0.0,
                "盈亏比例(%)": 0.0, "市值": float(cost * held), "交易市场": "上海Ａ股" if _exchange(code) == "SH" else "深圳Ａ股",
                "股东帐户": "A123456789"}

    def _entrust_row(self, e: Entrust) -> dict[str, Any]:
        remark = e.word(f"废单({e.reason})", "部撤", "已撤", "已成", "部分成交", "已报")
        return {"委托日期": _day(e.at), "证券代码": e.code, "证券名称": NAMES.get(e.code, e.code),
                "操作": "买入" if e.side == "BUY" else "卖出", "委托价格": float(e.price or 0), "委托数量": e.quantity,
                "委托时间": e.at.strftime("%H:%M:%S"), "成交数量": e.filled, "成交均价": e.avg_price,
                "合同编号": str(e.number), "交易市场": "上海Ａ" if _exchange(e.code) == "SH" else "深圳Ａ",
                "股东帐户": "A123456789", "备注": remark, "Unnamed: 13": ""}

    def _trade_row(self, f: Fill) -> dict[str, Any]:
        return {"成交日期": _day(f.at), "成交时间": f.at.strftime("%H:%M:%S"), "证券代码": f.entrust.code,
                "证券名称": NAMES.get(f.entrust.code, f.entrust.code), "操作": "买入" if f.entrust.side == "BUY" else "卖出",
                "成交数量": f.quantity, "成交均价": float(f.price), "成交金额": float(f.price * f.quantity),
                "合同编号": str(f.entrust.number), "成交编号": f.number,  # not in GRID_DTYPE: pandas makes it int
                "股东帐户": "A123456789", "交易市场": "上海Ａ" if _exchange(f.entrust.code) == "SH" else "深圳Ａ",
                "Unnamed: 12": ""}


class GJClient(_GuiClient):
    """国金 全能行证券交易终端 (easytrader ``gj_client``; grids by the clipboard Copy strategy). Not
    set to show the order confirmation: ``buy`` answers ``{"message": "success"}``."""

    broker_type = "gj"
    shows_entrust_no = False

    def _balance(self) -> dict[str, float]:
        h = self.host
        return {"资金余额": float(h.cash), "可用金额": float(h.available_cash()), "可取金额": float(h.available_cash()),
                "股票市值": float(h.market_value()), "总资产": float(h.cash + h.market_value())}

    def _position_row(self, code: str, held: int, sellable: int, cost: Decimal) -> dict[str, Any]:
        return {"证券代码": code, "证券名称": NAMES.get(code, code), "股票余额": held, "可用余额": sellable,
                "冻结数量": held - sellable, "参考盈亏": 0.0, "参考成本价": float(cost), "参考盈亏比例(%)": 0.0,
                "市价": float(cost), "市值": float(cost * held), "交易市场": "沪A" if _exchange(code) == "SH" else "深A",
                "股东帐户": "A123456789"}

    def _entrust_row(self, e: Entrust) -> dict[str, Any]:
        remark = e.word("废单", "部撤", "已撤", "全部成交", "部分成交", "未成交")
        return {"委托时间": e.at.strftime("%H:%M:%S"), "证券代码": e.code, "证券名称": NAMES.get(e.code, e.code),
                "操作": "买入" if e.side == "BUY" else "卖出", "备注": remark, "委托数量": e.quantity, "成交数量": e.filled,
                "委托价格": float(e.price or 0), "成交均价": e.avg_price,
                "撤消数量": e.quantity - e.filled if e.ended == "cancelled" else 0, "合同编号": str(e.number),
                "交易市场": "沪A" if _exchange(e.code) == "SH" else "深A", "股东帐户": "A123456789",
                "废单原因": e.reason if e.ended == "rejected" else ""}

    def _trade_row(self, f: Fill) -> dict[str, Any]:
        return {"成交时间": f.at.strftime("%H:%M:%S"), "证券代码": f.entrust.code,
                "证券名称": NAMES.get(f.entrust.code, f.entrust.code), "操作": "买入" if f.entrust.side == "BUY" else "卖出",
                "成交数量": f.quantity, "成交均价": float(f.price), "成交金额": float(f.price * f.quantity),
                "合同编号": str(f.entrust.number), "成交编号": f.number,
                "交易市场": "沪A" if _exchange(f.entrust.code) == "SH" else "深A", "股东帐户": "A123456789"}


class UniversalClient(_GuiClient):
    """通用同花顺 (easytrader ``universal_client``; grids by the Xls strategy): balance without
    股票市值 or 冻结资金, 股份余额 / 股份可用, 买卖标志, 状态说明, alphanumeric 成交编号."""

    broker_type = "universal"

    def _balance(self) -> dict[str, float]:
        h = self.host
        return {"资金余额": float(h.cash), "可用金额": float(h.available_cash()), "可取金额": float(h.available_cash()),
                "总资产": float(h.cash + h.market_value())}

    def _position_row(self, code: str, held: int, sellable: int, cost: Decimal) -> dict[str, Any]:
        return {"证券代码": code, "证券名称": NAMES.get(code, code), "当前持仓": held, "股份余额": held, "股份可用": sellable,
                "参考市价": float(cost), "参考市值": float(cost * held), "参考成本价": float(cost), "参考盈亏": 0.0,
                "盈亏比例(%)": "0.00%", "买入冻结": 0, "卖出冻结": held - sellable, "股东代码": "A123456789",
                "交易市场": "沪A" if _exchange(code) == "SH" else "深A"}

    def _entrust_row(self, e: Entrust) -> dict[str, Any]:
        state = e.word(f"废单[{e.reason}]", "部撤", "已撤", "已成", "部成", "已报")
        return {"委托日期": _day(e.at), "委托时间": e.at.strftime("%H:%M:%S"), "证券代码": e.code,
                "证券名称": NAMES.get(e.code, e.code), "买卖标志": "买入" if e.side == "BUY" else "卖出",
                "委托价格": float(e.price or 0), "委托数量": e.quantity, "成交价格": e.avg_price, "成交数量": e.filled,
                "撤单数量": e.quantity - e.filled if e.ended == "cancelled" else 0, "状态说明": state,
                "合同编号": str(e.number), "股东代码": "A123456789", "交易市场": "沪A" if _exchange(e.code) == "SH" else "深A"}

    def _trade_row(self, f: Fill) -> dict[str, Any]:
        return {"成交日期": _day(f.at), "成交时间": f.at.strftime("%H:%M:%S"), "证券代码": f.entrust.code,
                "证券名称": NAMES.get(f.entrust.code, f.entrust.code),
                "买卖标志": "买入" if f.entrust.side == "BUY" else "卖出", "成交价格": float(f.price),
                "成交数量": f.quantity, "成交金额": float(f.price * f.quantity), "合同编号": str(f.entrust.number),
                "成交编号": f"S{f.number}", "股东代码": "A123456789",
                "交易市场": "沪A" if _exchange(f.entrust.code) == "SH" else "深A"}


# xtconstant values (xtquant 250807): order types, price types, order status codes.
STOCK_BUY, STOCK_SELL, FIX_PRICE, MARKET_PEER_PRICE_FIRST = 23, 24, 11, 44
ORDER_REPORTED, ORDER_PART_CANCEL, ORDER_CANCELED, ORDER_PART_SUCC, ORDER_SUCCEEDED, ORDER_JUNK = 50, 53, 54, 55, 56, 57
_STATUS_NAMES = {50: "已报", 53: "部撤", 54: "已撤", 55: "部成", 56: "已成", 57: "废单"}


class MiniqmtClient:
    """easytrader's MiniqmtTrader over a fake XtQuantTrader connection."""

    broker_type = "miniqmt"

    def __init__(self, host: BrokerHost) -> None:
        self.host = host
        self._epoch: int | None = None
        self._account: str | None = None

    def connect(self, miniqmt_path: str = r"D:\国金证券QMT交易端\userdata_mini", stock_account: str | None = None,
                trader_callback: Any = None) -> None:
        if self.host.alive:  # XtQuantTrader.connect() == 0
            self.host.logins += 1
            self._epoch, self._account = self.host.epoch, stock_account
        # else: easytrader only logs "连接失败" and returns

    def _up(self) -> bool:
        return self.host.alive and self._epoch == self.host.epoch

    @property
    def balance(self) -> list[dict[str, Any]]:
        if not self._up():
            raise AttributeError("'NoneType' object has no attribute 'total_asset'")  # query_stock_asset -> None
        h = self.host
        return [{"total_asset": float(h.cash + h.market_value()), "market_value": float(h.market_value()),
                 "cash": float(h.available_cash()), "frozen_cash": float(h.frozen_cash()), "account_type": 2,
                 "account_id": self._account}]

    @property
    def position(self) -> list[dict[str, Any]]:
        if not self._up():
            raise TypeError("'NoneType' object is not iterable")
        return [{"stock_code": f"{code}.{_exchange(code)}", "security": code, "volume": q, "can_use_volume": s,
                 "open_price": float(c), "market_value": float(c * q), "frozen_volume": q - s, "on_road_volume": 0,
                 "yesterday_volume": s, "avg_price": float(c), "direction": 48, "account_type": 2,
                 "account_id": self._account} for code, (q, s, c) in self.host.shares().items()]

    @property
    def today_entrusts(self) -> list[dict[str, Any]]:
        if not self._up():
            return []  # query_stock_orders -> None -> []
        rows = []
        for e in self.host.entrusts:
            if e.ended == "rejected":
                status = ORDER_JUNK
            elif e.ended == "cancelled":
                status = ORDER_PART_CANCEL if e.filled else ORDER_CANCELED
            elif e.filled:
                status = ORDER_SUCCEEDED if e.filled == e.quantity else ORDER_PART_SUCC
            else:
                status = ORDER_REPORTED
            rows.append({
                "security": e.code, "stock_code": f"{e.code}.{_exchange(e.code)}", "order_id": e.number,
                "order_sysid": str(e.number + 500000), "order_time": int(e.at.timestamp()),
                "order_type": STOCK_BUY if e.side == "BUY" else STOCK_SELL,
                "order_type_name": "买入" if e.side == "BUY" else "卖出", "order_volume": e.quantity,
                "price_type": FIX_PRICE if e.price is not None else MARKET_PEER_PRICE_FIRST,
                "price_type_name": "限价" if e.price is not None else "对手方最优价格",
                "price": float(e.price or 0), "traded_volume": e.filled, "traded_price": e.avg_price,
                "order_status": status, "order_status_name": _STATUS_NAMES[status],
                "status_msg": e.reason if e.ended == "rejected" else "", "offset_flag": 48 if e.side == "BUY" else 49,
                "offset_flag_name": "买入" if e.side == "BUY" else "卖出", "strategy_name": "", "order_remark": "",
                "direction": 48, "direction_name": "多", "account_type": 2, "account_id": self._account,
            })
        return rows

    @property
    def today_trades(self) -> list[dict[str, Any]]:
        if not self._up():
            return []
        rows = [{
            "security": f.entrust.code, "stock_code": f"{f.entrust.code}.{_exchange(f.entrust.code)}",
            "traded_id": str(f.number), "traded_time": int(f.at.timestamp()), "traded_price": float(f.price),
            "traded_volume": f.quantity, "traded_amount": float(f.price * f.quantity), "order_id": f.entrust.number,
            "order_type": STOCK_BUY if f.entrust.side == "BUY" else STOCK_SELL,
            "order_type_name": "买入" if f.entrust.side == "BUY" else "卖出",
            "offset_flag": 48 if f.entrust.side == "BUY" else 49,
            "offset_flag_name": "买入" if f.entrust.side == "BUY" else "卖出", "account_id": self._account,
            "account_type": 2, "order_sysid": str(f.entrust.number + 500000), "strategy_name": "", "order_remark": "",
        } for f in self.host.fills]
        return [row for row in rows for _ in ((0, 1) if self.host.replay_trades else (0,))]

    def buy(self, security: str, price: float, amount: int) -> dict[str, int]:
        return self._order(security, "BUY", D(str(price)), amount)

    def sell(self, security: str, price: float, amount: int, **kwargs: Any) -> dict[str, int]:
        return self._order(security, "SELL", D(str(price)), amount)

    def market_buy(self, security: str, amount: int, ttype: str | None = None) -> dict[str, int]:
        return self._order(security, "BUY", None, amount)

    def market_sell(self, security: str, amount: int, ttype: str | None = None) -> dict[str, int]:
        return self._order(security, "SELL", None, amount)

    def _order(self, security: str, side: str, price: Decimal | None, amount: int) -> dict[str, int]:
        if not self._up():
            return {"entrust_no": -1}  # order_stock on a broken connection
        self.host.sent.append((security, side, price, int(amount)))
        fault = self.host.place_faults.popleft() if self.host.place_faults else ""
        if fault == "refuse":
            return {"entrust_no": -1}
        if fault == "lost_before":
            raise RuntimeError("order_stock: request timed out")
        try:
            entrust = self.host.enter(security, side, price, int(amount))
        except TradeError:
            return {"entrust_no": -1}
        if fault == "lost_after":
            raise RuntimeError("order_stock: request timed out")
        return {"entrust_no": entrust.number}

    def cancel_entrust(self, entrust_no: int) -> dict[str, Any]:
        if not self._up() or self.host.cancel_refusals:
            if self.host.cancel_refusals:
                self.host.cancel_refusals.popleft()  # the reason only reaches on_cancel_error, which easytrader logs
            return {"success": False, "message": "failed"}
        if not any(e.number == entrust_no for e in self.host.entrusts) or not self.host.cancel(entrust_no):
            return {"success": False, "message": "failed"}
        return {"success": True, "message": "success"}


CLIENTS: dict[str, type[_GuiClient] | type[MiniqmtClient]] = {
    "ht_client": HTClient, "gj_client": GJClient, "universal_client": UniversalClient, "miniqmt": MiniqmtClient,
}
