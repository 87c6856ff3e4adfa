"""easytrader: any object with easytrader's client API, as a broker adapter (docs/brokers/easytrader.md).

easytrader (https://github.com/shidenggui/easytrader) drives a broker's Windows trading client:
the 同花顺 ``xiadan.exe`` builds (``ht_client`` 华泰, ``gj_client`` 国金, ``universal_client`` /
``ths`` 通用同花顺, ...) through pywinauto, and miniQMT through xtquant (``miniqmt``). Every client
offers the same calls: ``buy(security, price, amount)``, ``sell(...)``, ``market_buy`` /
``market_sell`` (GUI clients and miniqmt), ``cancel_entrust(entrust_no)`` and the properties
``balance``, ``position``, ``today_entrusts``, ``today_trades``; a GUI client logs in with
``prepare(user=..., password=..., exe_path=..., comm_password=...)`` or attaches to a client
already logged in with ``connect(exe_path)``; miniqmt with ``connect(miniqmt_path, stock_account)``.

The client object is a seam: :class:`EasytraderBroker` takes it ready-made
(``EasytraderBroker(name, settings, client=obj)``, tests and the gateway), from a
``client_factory``, or builds it with ``easytrader.use(settings["client"])`` (imported here, lazily,
so a Linux host needs no Windows packages). What the client answers is untrusted:

* Each client names its grid columns its own way (股票余额 / 股份余额, 可用余额 / 可用股份,
  合同编号 / 委托序号 / 委托编号, 备注 / 状态说明 ...; miniqmt its own English keys), and types them
  its own way (a GUI grid is read by pandas: 合同编号 and 证券代码 are str, other numbers int or
  float; miniqmt's order ids are int; ``balance`` is a dict on GUI clients, a list of one dict
  on miniqmt). :data:`DIALECTS` holds one alias table a client, overridable per account with the
  ``columns`` setting; a row missing a column it needs is a :class:`BrokerError`, never a guess.
* An order counts as placed only once the broker's own order list shows it. ``buy`` may answer
  ``{"entrust_no": ...}``, or ``{"message": "success"}`` without a number (clients not set to
  show the order confirmation), or report success for an order that never arrived. After the
  answer the adapter reads ``today_entrusts`` and finds the order there (by its number, or, with
  no number, as the one new order with this symbol, side, price and quantity); not found is
  :class:`BrokerTimeout` (outcome unknown, reconciliation decides), never an acknowledgement.
* A grid read that fails (None from the clipboard or file strategy, a clipboard or window
  error) is :class:`BrokerUnavailable`: no call was made. ``TradeError`` (the client's "提示"
  dialog refused the order) is :class:`BrokerError` with the broker's words; any other exception
  while sending is :class:`BrokerTimeout`, because the click may have gone through.
* An empty order list is believed only after a balance read succeeds (miniqmt answers ``[]`` when
  its connection is down). After any failed call the session counts as lost: the next call logs
  in again (``prepare`` / ``connect``) before anything else, so the same adapter recovers by
  itself once the client is back.

Our order id cannot travel: a GUI client's order form has no field for it, so
``capabilities.client_ref`` is False and ``BrokerOrder.client_ref`` is empty. An order whose answer
was lost is found again by what it says (symbol, side, price, quantity, time), as
``tests/brokers/contract/test_contract.py`` ``listed`` does; two identical orders at once cannot
be told apart, so the order path must not send a second identical order while one is unknown.
Market orders go through ``market_buy`` / ``market_sell`` where the client has them (a GUI grid
shows them with price 0); the STAR market's protection price goes as ``limit_price``.

Calls on one adapter are serialised (a GUI client is one window); run one worker per client.
Messages of our own are fixed "中文 (English)" texts rather than ``trading.i18n`` catalogue
lookups, so the module also runs in the gateway process, which has no Django settings.

Why one module of about 800 lines: an adapter is one plug-in file (STYLE.md, Plug-ins); the
dialect tables, the grid parsing and the placement check below belong to this one broker path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, NoReturn, TypeVar

from django.utils.translation import gettext_lazy

from brokers.interface import (
    BrokerBalance,
    BrokerInterface,
    BrokerOrder,
    BrokerOrderStatus,
    BrokerPosition,
    BrokerTrade,
    Capabilities,
    OrderAck,
    OrderRequest,
)
from brokers.registry import register
from trading.calendar import SHANGHAI
from trading.errors import BrokerError, BrokerTimeout, BrokerUnavailable
from trading.market_rules import format_symbol, normalize_symbol
from trading.money import ZERO, to_cent, to_price_places

Row = Mapping[str, Any]
T = TypeVar("T")
log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# Dialects: which key of a client's answer holds which of our fields
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """One client's answer shapes. Each field lists the keys that may hold it, first found wins;
    a field with no keys is not reported by that client (derived, or left out)."""

    name: str
    balance_is_list: bool = False  # miniqmt: [ {...} ]
    numeric_ids: bool = False  # miniqmt: entrust numbers are int, and cancel_entrust wants an int
    available_is_cash: bool = False  # miniqmt: "cash" is the available cash, frozen_cash apart
    # balance
    cash: tuple[str, ...] = ("资金余额",)
    available: tuple[str, ...] = ("可用金额", "可用资金")
    frozen: tuple[str, ...] = ("冻结资金", "冻结金额")
    market_value: tuple[str, ...] = ("股票市值", "参考市值", "总市值")
    total: tuple[str, ...] = ("总资产",)
    # position grid
    position_code: tuple[str, ...] = ("证券代码",)
    position_market: tuple[str, ...] = ("交易市场",)
    position_quantity: tuple[str, ...] = ("股票余额", "股份余额", "当前持仓", "实际数量")
    position_sellable: tuple[str, ...] = ("可用余额", "可用股份", "股份可用", "可卖数量")
    position_cost: tuple[str, ...] = ("成本价", "参考成本价", "摊薄成本价")
    position_price: tuple[str, ...] = ("市价", "参考市价", "当前价")
    position_value: tuple[str, ...] = ("市值", "参考市值", "最新市值")
    # today_entrusts grid
    order_id: tuple[str, ...] = ("合同编号", "委托编号", "委托序号")
    order_code: tuple[str, ...] = ("证券代码",)
    order_market: tuple[str, ...] = ("交易市场",)
    order_side: tuple[str, ...] = ("操作", "买卖标志", "委托方向")
    order_price: tuple[str, ...] = ("委托价格",)
    order_price_type: tuple[str, ...] = ("报价方式", "委托类别")  # text; "市价" in it: a market order
    order_quantity: tuple[str, ...] = ("委托数量",)
    order_filled: tuple[str, ...] = ("成交数量",)
    order_avg_price: tuple[str, ...] = ("成交均价", "成交价格")
    order_status: tuple[str, ...] = ("备注", "状态说明", "委托状态")
    order_status_code: tuple[str, ...] = ()  # miniqmt's int order_status
    order_reason: tuple[str, ...] = ("废单原因", "说明")
    order_date: tuple[str, ...] = ("委托日期",)
    order_time: tuple[str, ...] = ("委托时间",)
    # today_trades grid
    trade_id: tuple[str, ...] = ("成交编号", "成交序号")
    trade_order_id: tuple[str, ...] = ("合同编号", "委托编号", "委托序号")
    trade_code: tuple[str, ...] = ("证券代码",)
    trade_market: tuple[str, ...] = ("交易市场",)
    trade_side: tuple[str, ...] = ("操作", "买卖标志", "委托方向")
    trade_price: tuple[str, ...] = ("成交均价", "成交价格")
    trade_quantity: tuple[str, ...] = ("成交数量",)
    trade_amount: tuple[str, ...] = ("成交金额",)
    trade_date: tuple[str, ...] = ("成交日期",)
    trade_time: tuple[str, ...] = ("成交时间",)
    trade_commission: tuple[str, ...] = ("佣金", "手续费")
    trade_stamp_duty: tuple[str, ...] = ("印花税",)
    trade_transfer_fee: tuple[str, ...] = ("过户费",)
    trade_other_fees: tuple[str, ...] = ("其他杂费", "交易规费")

    def with_columns(self, columns: Mapping[str, Iterable[str]]) -> Dialect:
        """This dialect with an account's own keys put first (the ``columns`` setting)."""
        known = set(self.__dataclass_fields__) - {"name", "balance_is_list", "numeric_ids", "available_is_cash"}
        unknown = set(columns) - known
        if unknown:
            raise ValueError(f"easytrader columns: unknown fields {sorted(unknown)}; known: {sorted(known)}")
        changes: dict[str, Any] = {name: (*tuple(keys), *getattr(self, name)) for name, keys in columns.items()}
        return replace(self, **changes)


# Generic 同花顺 xiadan build: every alias seen in the wild, for clients without a table of their own.
THS = Dialect("ths")

# 华泰 网上股票交易系统5.0 (ht_client): balance has 冻结资金; grids read by the Xls strategy.
HT = replace(
    THS, name="ht_client", cash=("资金余额",), available=("可用金额",), frozen=("冻结资金",), market_value=("股票市值",),
    position_quantity=("股票余额",), position_sellable=("可用余额",), position_cost=("成本价",), position_price=("市价",),
    position_value=("市值",), order_id=("合同编号",), order_side=("操作",), order_avg_price=("成交均价",),
    order_status=("备注",), trade_id=("成交编号",), trade_order_id=("合同编号",), trade_side=("操作",),
    trade_price=("成交均价",),
)

# 国金 全能行证券交易终端 (gj_client): no 冻结资金 in the balance; 参考 prices; grids by clipboard.
GJ = replace(
    THS, name="gj_client", frozen=(), market_value=("股票市值",), position_quantity=("股票余额",),
    position_sellable=("可用余额",), position_cost=("参考成本价",), position_price=("参考市价", "市价"),
    position_value=("参考市值", "市值"), order_id=("合同编号",), order_side=("操作",), order_avg_price=("成交均价",),
    order_status=("备注",), trade_id=("成交编号",), trade_order_id=("合同编号",), trade_side=("操作",),
    trade_price=("成交均价",),
)

# 通用同花顺 (universal_client): the balance has neither 股票市值 nor 冻结资金; 股份余额 / 股份可用;
# 买卖标志 and 状态说明; 成交价格 for the average price.
UNIVERSAL = replace(
    THS, name="universal_client", frozen=(), market_value=(), position_quantity=("股份余额", "股票余额"),
    position_sellable=("股份可用", "可用股份", "可用余额"), position_cost=("参考成本价", "成本价"),
    position_price=("参考市价", "市价"), position_value=("参考市值", "市值"), order_side=("买卖标志", "操作"),
    order_avg_price=("成交价格", "成交均价"), order_status=("状态说明", "备注"), trade_side=("买卖标志", "操作"),
    trade_price=("成交价格", "成交均价"),
)

# easytrader's miniqmt client (miniqmt/miniqmt_trader.py): English keys, int ids and status codes.
MINIQMT = Dialect(
    "miniqmt", balance_is_list=True, numeric_ids=True, available_is_cash=True,
    cash=(), available=("cash",), frozen=("frozen_cash",), market_value=("market_value",), total=("total_asset",),
    position_code=("stock_code", "security"), position_market=(), position_quantity=("volume",),
    position_sellable=("can_use_volume",), position_cost=("avg_price", "open_price"), position_price=(),
    position_value=("market_value",),
    order_id=("order_id",), order_code=("stock_code", "security"), order_market=(), order_side=("order_type", "offset_flag_name"),
    order_price=("price",), order_price_type=(), order_quantity=("order_volume",), order_filled=("traded_volume",),
    order_avg_price=("traded_price",), order_status=("order_status_name",), order_status_code=("order_status",),
    order_reason=("status_msg",), order_date=(), order_time=("order_time",),
    trade_id=("traded_id",), trade_order_id=("order_id",), trade_code=("stock_code", "security"), trade_market=(),
    trade_side=("order_type", "offset_flag_name"), trade_price=("traded_price",), trade_quantity=("traded_volume",),
    trade_amount=("traded_amount",), trade_date=(), trade_time=("traded_time",), trade_commission=(),
    trade_stamp_duty=(), trade_transfer_fee=(), trade_other_fees=(),
)

DIALECTS: dict[str, Dialect] = {
    "ths": THS,
    "ht_client": HT,
    "wk_client": HT,  # 五矿: easytrader configures it as 华泰
    "gj_client": GJ,
    "universal_client": UNIVERSAL,
    "yh_client": THS,
    "gf_client": THS,
    "htzq_client": UNIVERSAL,  # 海通: same balance statics as universal
    "miniqmt": MINIQMT,
}

# miniqmt's FIX_PRICE (xtconstant.FIX_PRICE); any other price type is a market order.
_XT_FIX_PRICE = 11
# xtconstant.ORDER_*: 48 未报 49 待报 50 已报 51 已报待撤 52 部成待撤 53 部撤 54 已撤 55 部成 56 已成 57 废单
_XT_STATUS = {
    48: BrokerOrderStatus.OPEN, 49: BrokerOrderStatus.OPEN, 50: BrokerOrderStatus.OPEN, 51: BrokerOrderStatus.OPEN,
    52: BrokerOrderStatus.PARTIALLY_FILLED, 53: BrokerOrderStatus.CANCELLED, 54: BrokerOrderStatus.CANCELLED,
    55: BrokerOrderStatus.PARTIALLY_FILLED, 56: BrokerOrderStatus.FILLED, 57: BrokerOrderStatus.REJECTED,
}

# Status words of the grids, most specific first: "全部成交" contains "部成", "部成已撤" contains "已成".
_STATUS_WORDS: tuple[tuple[tuple[str, ...], BrokerOrderStatus], ...] = (
    (("废单", "拒绝", "非法", "失败"), BrokerOrderStatus.REJECTED),
    (("部撤", "已撤", "撤单成功", "场内撤单", "场外撤单", "撤销"), BrokerOrderStatus.CANCELLED),
    (("全部成交", "已成", "全成"), BrokerOrderStatus.FILLED),
    (("部成", "部分成交"), BrokerOrderStatus.PARTIALLY_FILLED),
    (("未成交", "已报", "待报", "未报", "正报", "申报", "待撤"), BrokerOrderStatus.OPEN),
)

_EXCHANGE_WORDS = (("沪", "SH"), ("上海", "SH"), ("深", "SZ"), ("北", "BJ"), ("京", "BJ"))

MSG_NOT_CONNECTED = "券商客户端未连接 (the broker's client is not connected)"
MSG_LOGIN_FAILED = "券商客户端登录失败 (logging in to the broker's client failed)"
MSG_READ_FAILED = "读取券商客户端数据失败, 未发出任何指令 (reading the broker's client failed; nothing was sent)"
MSG_SENT_UNCONFIRMED = "委托已发出, 但未在券商委托列表中找到: 结果未知 (order sent but not in the broker's order list: outcome unknown)"
MSG_SENT_NO_ANSWER = "委托发出后未收到应答: 结果未知 (no answer after sending the order: outcome unknown)"
MSG_CANCEL_NO_ANSWER = "撤单发出后未收到应答: 结果未知 (no answer after sending the cancel: outcome unknown)"
MSG_NO_MARKET = "该客户端不支持市价委托 (this client has no market orders)"
MSG_BAD_ANSWER = "券商客户端返回的数据格式不符 (the broker's client answered in an unexpected shape)"


class GridShapeError(BrokerError):
    """A row of the client's answer lacks a field this dialect needs, or holds an unreadable value."""


class OtherBusiness(GridShapeError):
    """A row whose direction is neither buy nor sell (新股申购, 配号, 转托管 ...): not an order we
    could have sent, so it is left out of the lists rather than failing them."""


# ---------------------------------------------------------------------------
# Reading values
# ---------------------------------------------------------------------------


def _pick(row: Row, keys: tuple[str, ...], what: str, *, required: bool = True) -> Any:
    for key in keys:
        if key in row:
            return row[key]
    if required:
        raise GridShapeError(f"{MSG_BAD_ANSWER}: {what} ({'/'.join(keys) or '-'}) not in {sorted(row)}")
    return None


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise GridShapeError(f"{MSG_BAD_ANSWER}: {what}={value!r}")
    try:
        # str() of a float is its shortest repr: 9.83 -> Decimal("9.83"), not the binary expansion.
        text = str(value).strip().replace(",", "")
        return Decimal(text) if text not in ("", "--", "-") else ZERO
    except InvalidOperation:
        raise GridShapeError(f"{MSG_BAD_ANSWER}: {what}={value!r}") from None


def _int(value: Any, what: str) -> int:
    number = _decimal(value, what)
    if number != number.to_integral_value():
        raise GridShapeError(f"{MSG_BAD_ANSWER}: {what}={value!r}")
    return int(number)


def _id(value: Any, what: str) -> str:
    """An order or trade number as text: str on GUI clients, int on miniqmt (and on a GUI column
    pandas read as numbers); a float from such a column loses no digits below 2**53."""
    if value is None or isinstance(value, bool):
        raise GridShapeError(f"{MSG_BAD_ANSWER}: {what}={value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        raise GridShapeError(f"{MSG_BAD_ANSWER}: {what} is empty")
    return text


def _side(value: Any, what: str) -> str:
    text = str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        text = {23: "买", 24: "卖", 48: "买", 49: "卖"}.get(value, text)  # xtconstant STOCK_BUY/SELL, OFFSET_FLAG
    if "买" in text or text.upper() in ("B", "BUY"):
        return "BUY"
    if "卖" in text or text.upper() in ("S", "SELL"):
        return "SELL"
    raise OtherBusiness(f"{MSG_BAD_ANSWER}: {what}={value!r}")


def _symbol(code_value: Any, market_value: Any, what: str) -> str:
    """Our ``CODE.EX`` symbol from a grid's 证券代码 (and 交易市场 where it has one)."""
    text = _id(code_value, what)
    if "." in text:
        code, exchange = normalize_symbol(text)
        return format_symbol(code, exchange)
    code = text.zfill(6)  # a code column read as numbers loses its leading zeros
    market = str(market_value or "")
    for word, exchange in _EXCHANGE_WORDS:
        if word in market:
            return format_symbol(code, exchange)
    try:
        code, exchange = normalize_symbol(code)
    except Exception:
        raise GridShapeError(f"{MSG_BAD_ANSWER}: {what}={code_value!r}") from None
    return format_symbol(code, exchange)


def status_from_text(text: str) -> BrokerOrderStatus | None:
    """The order status a grid's status text (备注, 状态说明) says, None when it says none we know."""
    for words, status in _STATUS_WORDS:
        if any(word in text for word in words):
            return status
    return None


def _timestamp(day_value: Any, time_value: Any) -> datetime:
    """A grid's date (20250102, "2025-01-02", absent: today) and time ("09:31:05", 93105) in
    Shanghai; miniqmt's order_time / traded_time are epoch seconds."""
    if isinstance(time_value, int | float) and not isinstance(time_value, bool) and time_value > 10**8:
        return datetime.fromtimestamp(time_value, SHANGHAI)
    now = datetime.now(SHANGHAI)
    day = now.date()
    if day_value not in (None, ""):
        digits = "".join(ch for ch in str(day_value) if ch.isdigit())
        if len(digits) == 8:
            day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    clock = "".join(ch for ch in str(time_value or "") if ch.isdigit()).zfill(6)[-6:] if time_value not in (None, "") else ""
    if not clock:
        return now
    hour, minute, second = int(clock[:2]), int(clock[2:4]), int(clock[4:])
    if hour > 23 or minute > 59 or second > 59:
        raise GridShapeError(f"{MSG_BAD_ANSWER}: time={time_value!r}")
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SHANGHAI)


# ---------------------------------------------------------------------------
# Rows to typed objects
# ---------------------------------------------------------------------------


def parse_balance(answer: Any, dialect: Dialect) -> BrokerBalance:
    """``balance``: a dict of floats (GUI clients' static texts) or a list of one dict (miniqmt)."""
    if dialect.balance_is_list or isinstance(answer, list):
        if not isinstance(answer, list) or len(answer) != 1:
            raise GridShapeError(f"{MSG_BAD_ANSWER}: balance={answer!r}")
        answer = answer[0]
    if not isinstance(answer, Mapping):
        raise GridShapeError(f"{MSG_BAD_ANSWER}: balance={answer!r}")
    available = to_cent(_decimal(_pick(answer, dialect.available, "available"), "available"))
    frozen_raw = _pick(answer, dialect.frozen, "frozen", required=False)
    if dialect.available_is_cash:
        frozen = to_cent(_decimal(frozen_raw, "frozen")) if frozen_raw is not None else ZERO
        cash = available + frozen
    else:
        cash = to_cent(_decimal(_pick(answer, dialect.cash, "cash"), "cash"))
        # 资金余额 includes what open buys freeze; clients without 冻结资金 show only the difference.
        frozen = to_cent(_decimal(frozen_raw, "frozen")) if frozen_raw is not None else max(cash - available, ZERO)
    total_raw = _pick(answer, dialect.total, "total", required=False)
    value_raw = _pick(answer, dialect.market_value, "market_value", required=False)
    if value_raw is None and total_raw is None:
        raise GridShapeError(f"{MSG_BAD_ANSWER}: balance has neither market value nor total assets: {sorted(answer)}")
    market_value = to_cent(_decimal(value_raw, "market_value")) if value_raw is not None else None
    total = to_cent(_decimal(total_raw, "total")) if total_raw is not None else None
    if market_value is None:
        market_value = max((total or ZERO) - cash, ZERO)
    if total is None:
        total = cash + market_value
    return BrokerBalance(cash=cash, available=available, frozen=frozen, market_value=market_value, total_assets=total)


def parse_position(row: Row, dialect: Dialect) -> BrokerPosition:
    symbol = _symbol(_pick(row, dialect.position_code, "code"),
                     _pick(row, dialect.position_market, "market", required=False), "code")
    quantity = _int(_pick(row, dialect.position_quantity, "quantity"), "quantity")
    sellable = _int(_pick(row, dialect.position_sellable, "sellable"), "sellable")
    cost = to_price_places(_decimal(_pick(row, dialect.position_cost, "avg_cost"), "avg_cost"))
    price_raw = _pick(row, dialect.position_price, "last_price", required=False)
    last_price = to_price_places(_decimal(price_raw, "last_price")) if price_raw is not None else None
    value_raw = _pick(row, dialect.position_value, "market_value", required=False)
    if value_raw is not None:
        value = to_cent(_decimal(value_raw, "market_value"))
    else:
        value = to_cent((last_price if last_price is not None else cost) * quantity)
    return BrokerPosition(symbol=symbol, quantity=quantity, sellable_quantity=sellable, avg_cost=cost,
                          last_price=last_price, market_value=value)


def parse_order(row: Row, dialect: Dialect) -> BrokerOrder:
    """One row of ``today_entrusts``. The status comes from the status code (miniqmt) or text,
    checked against the quantities: a text we do not know reads from the filled quantity."""
    order_id = _id(_pick(row, dialect.order_id, "order id"), "order id")
    symbol = _symbol(_pick(row, dialect.order_code, "code"),
                     _pick(row, dialect.order_market, "market", required=False), "code")
    side = _side(_pick(row, dialect.order_side, "side"), "side")
    quantity = _int(_pick(row, dialect.order_quantity, "quantity"), "quantity")
    filled = _int(_pick(row, dialect.order_filled, "filled", required=False) or 0, "filled")
    price = _decimal(_pick(row, dialect.order_price, "price"), "price")
    price_type = _pick(row, dialect.order_price_type, "price type", required=False)
    if dialect.numeric_ids:
        raw_type = row.get("price_type")
        market = raw_type is not None and _int(raw_type, "price_type") != _XT_FIX_PRICE
    else:
        market = price == 0 or (price_type is not None and "市价" in str(price_type))
    avg_raw = _pick(row, dialect.order_avg_price, "avg price", required=False)
    avg = _decimal(avg_raw, "avg price") if avg_raw is not None else ZERO
    text = str(_pick(row, dialect.order_status, "status", required=not dialect.order_status_code) or "")
    status: BrokerOrderStatus | None = None
    code_raw = _pick(row, dialect.order_status_code, "status code", required=False) if dialect.order_status_code else None
    if code_raw is not None:
        status = _XT_STATUS.get(_int(code_raw, "status code"))
    if status is None:
        status = status_from_text(text)
    if status is None or (status == BrokerOrderStatus.OPEN and filled):
        status = BrokerOrderStatus.PARTIALLY_FILLED if filled else BrokerOrderStatus.OPEN
    if status == BrokerOrderStatus.PARTIALLY_FILLED and filled >= quantity:
        status = BrokerOrderStatus.FILLED
    reason = str(_pick(row, dialect.order_reason, "reason", required=False) or "")
    message = text if not reason or reason in text else f"{text}: {reason}" if text else reason
    created_at = _timestamp(_pick(row, dialect.order_date, "date", required=False),
                            _pick(row, dialect.order_time, "time", required=False))
    return BrokerOrder(
        broker_order_id=order_id, client_ref="", symbol=symbol, side=side,
        order_type="MARKET" if market else "LIMIT", price=None if market else to_price_places(price),
        quantity=quantity, filled_quantity=filled,
        avg_fill_price=to_price_places(avg) if filled and avg > 0 else None,
        status=status, message=message, created_at=created_at, trading_day=created_at.date(),
    )


def parse_trade(row: Row, dialect: Dialect) -> BrokerTrade | None:
    """One row of ``today_trades``; None for a row that is no fill (a cancellation record, a
    zero quantity). A grid without a trade number gets one made of the order number, time,
    quantity and price: identical fills of one order in the same second then count once."""
    quantity = _int(_pick(row, dialect.trade_quantity, "quantity"), "quantity")
    side_raw = _pick(row, dialect.trade_side, "side")
    if quantity <= 0 or "撤" in str(side_raw):
        return None
    order_id = _id(_pick(row, dialect.trade_order_id, "order id"), "order id")
    price = _decimal(_pick(row, dialect.trade_price, "price"), "price")
    amount_raw = _pick(row, dialect.trade_amount, "amount", required=False)
    amount = to_cent(_decimal(amount_raw, "amount") if amount_raw is not None else price * quantity)
    filled_at = _timestamp(_pick(row, dialect.trade_date, "date", required=False),
                           _pick(row, dialect.trade_time, "time", required=False))
    trade_raw = _pick(row, dialect.trade_id, "trade id", required=False)
    trade_id = (_id(trade_raw, "trade id") if trade_raw not in (None, "")
                else f"{order_id}-{filled_at:%H%M%S}-{quantity}-{price.normalize()}")

    def fee(keys: tuple[str, ...], what: str) -> Decimal:
        raw = _pick(row, keys, what, required=False)
        return to_cent(_decimal(raw, what)) if raw is not None else ZERO

    return BrokerTrade(
        broker_trade_id=trade_id, broker_order_id=order_id,
        symbol=_symbol(_pick(row, dialect.trade_code, "code"), _pick(row, dialect.trade_market, "market", required=False), "code"),
        side=_side(side_raw, "side"), price=to_price_places(price), quantity=quantity, amount=amount,
        filled_at=filled_at, trading_day=filled_at.date(),
        commission=fee(dialect.trade_commission, "commission"), stamp_duty=fee(dialect.trade_stamp_duty, "stamp duty"),
        transfer_fee=fee(dialect.trade_transfer_fee, "transfer fee"), other_fees=fee(dialect.trade_other_fees, "other fees"),
    )


def _parsed(rows: list[Row], parse: Callable[[Row, Dialect], T | None], dialect: Dialect) -> list[T]:
    """Each row parsed, rows of other business (:class:`OtherBusiness`) left out and logged."""
    parsed: list[T] = []
    for row in rows:
        try:
            item = parse(row, dialect)
        except OtherBusiness as exc:
            log.info("easytrader: row left out: %s", exc.message)
            continue
        if item is not None:
            parsed.append(item)
    return parsed


def _rows(answer: Any, what: str) -> list[Row]:
    if answer is None:
        # The Copy strategy answers None when the clipboard stayed empty, Xls when pandas failed.
        raise BrokerUnavailable(f"{MSG_READ_FAILED}: {what} is None")
    if not isinstance(answer, list) or not all(isinstance(row, Mapping) for row in answer):
        raise GridShapeError(f"{MSG_BAD_ANSWER}: {what}={str(answer)[:200]}")
    return answer


# ---------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------


@dataclass
class _Session:
    client: Any = None
    ready: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)


def _is_trade_error(exc: BaseException) -> bool:
    """easytrader.exceptions.TradeError: the client's "提示" dialog refused the order."""
    return any(cls.__name__ == "TradeError" for cls in type(exc).__mro__)


@register
class EasytraderBroker(BrokerInterface):
    """An account traded through an easytrader client (see the module docstring).

    Settings: ``client`` (easytrader's name: ``ht_client``, ``gj_client``, ``universal_client``,
    ``ths``, ``miniqmt``, ...); ``login``: ``prepare`` (log in with ``user``, ``password``,
    ``comm_password``, ``exe_path`` or ``config_path``), ``connect`` (attach to the client already
    logged in at ``exe_path``; miniqmt: ``miniqmt_path`` and ``account_id``) or ``none``; default
    ``prepare`` when ``user`` or ``config_path`` is set and the client has ``prepare`` (miniqmt
    has not), else ``connect``. ``columns``: extra
    keys per :class:`Dialect` field, tried first. ``confirm_reads`` (3) and ``confirm_interval``
    (0.5 s): how often the order list is read to find a new order. ``market_ttype``: easytrader's
    ``ttype`` for market orders by exchange, e.g. ``{"SH": "最优五档即时成交剩余撤销"}``.
    """

    kind = "easytrader"
    label = gettext_lazy("easytrader (Tonghuashun client / miniQMT)")
    capabilities: ClassVar[Capabilities] = Capabilities(market_orders=True, modify=False, history=False, client_ref=False)

    def __init__(self, account_name: str, settings: dict[str, Any] | None = None, *, client: Any = None,
                 client_factory: Callable[[], Any] | None = None) -> None:
        super().__init__(account_name, settings)
        # easytrader's own client objects name themselves in broker_type ("ht", "gj", "miniqmt" ...)
        self.client_name = str(self.settings.get("client") or getattr(client, "broker_type", "") or "ths")
        dialect = DIALECTS.get(self.client_name) or DIALECTS.get(f"{self.client_name}_client") or THS
        columns = self.settings.get("columns") or {}
        self.dialect = dialect.with_columns(columns) if columns else dialect
        self.confirm_reads = max(1, int(self.settings.get("confirm_reads", 3)))
        self.confirm_interval = float(self.settings.get("confirm_interval", 0.5))
        self._factory = client_factory
        self._session = _Session(client=client)

    # -- the session ------------------------------------------------------

    def _new_client(self) -> Any:
        if self._factory is not None:
            return self._factory()
        try:
            import easytrader  # lazily: pulls pywinauto (Windows) or xtquant's trader (Windows)
            return easytrader.use(self.client_name)
        except Exception as exc:
            raise BrokerUnavailable(f"{MSG_NOT_CONNECTED}: easytrader.use({self.client_name!r}): {exc}") from exc

    def _login_mode(self, client: Any) -> str:
        mode = str(self.settings.get("login") or "")
        if mode:
            return mode
        wants_prepare = self.settings.get("user") or self.settings.get("config_path")
        return "prepare" if wants_prepare and callable(getattr(client, "prepare", None)) else "connect"

    def _open(self, client: Any) -> None:
        """Log the client in (or attach it to a running, logged-in client)."""
        mode = self._login_mode(client)
        s = self.settings
        if mode == "prepare":
            kwargs = {k: s[k] for k in ("config_path", "user", "password", "exe_path", "comm_password") if s.get(k)}
            client.prepare(**kwargs)
        elif mode == "connect":
            if self.dialect.balance_is_list:  # miniqmt
                client.connect(**{k: v for k, v in (("miniqmt_path", s.get("miniqmt_path")),
                                                    ("stock_account", s.get("account_id") or s.get("stock_account"))) if v})
            else:
                client.connect(**({"exe_path": s["exe_path"]} if s.get("exe_path") else {}))
        elif mode != "none":
            raise BrokerUnavailable(f"{MSG_LOGIN_FAILED}: login={mode!r} (prepare | connect | none)")

    def login(self) -> None:
        """Log in once; again only after a call failed. Proves the session with a balance read
        (miniqmt's connect only logs a failure)."""
        session = self._session
        with session.lock:
            if session.ready:
                return
            if session.client is None:
                session.client = self._new_client()
            try:
                self._open(session.client)
                balance = session.client.balance
            except BrokerError:
                raise
            except Exception as exc:
                raise BrokerUnavailable(f"{MSG_LOGIN_FAILED}: {type(exc).__name__}: {exc}") from exc
            parse_balance(balance, self.dialect)
            session.ready = True

    def _lost(self) -> None:
        self._session.ready = False

    def _read(self, name: str, *, retry: bool = True) -> Any:
        """A property of the client (``balance``, ``today_entrusts`` ...), logged in first. A read
        changes nothing, so a failed one on a session believed alive (it may have gone stale
        unnoticed) is tried once more after logging in again; a failure stands as
        BrokerUnavailable, and the next call logs in again."""
        self.login()
        try:
            return getattr(self._session.client, name)
        except Exception as exc:
            self._lost()
            if retry:
                try:
                    self.login()
                except BrokerError:
                    pass
                else:
                    return self._read(name, retry=False)
            if isinstance(exc, BrokerError) and not isinstance(exc, BrokerTimeout):
                raise  # a remote client's own typed answer
            message = exc.message if isinstance(exc, BrokerError) else f"{type(exc).__name__}: {exc}"
            raise BrokerUnavailable(f"{MSG_READ_FAILED}: {name}: {message}") from exc

    def _list(self, name: str) -> list[Row]:
        was_ready = self._session.ready
        rows = _rows(self._read(name), name)
        if rows:
            return rows
        # miniqmt answers [] when its connection is down: believe an empty list only once the
        # balance shows the session is alive; on a session that went stale, log in and read again.
        try:
            parse_balance(self._read("balance", retry=False), self.dialect)
            return rows
        except BrokerUnavailable:
            if not was_ready:
                raise
        rows = _rows(self._read(name, retry=False), name)
        if not rows:
            parse_balance(self._read("balance", retry=False), self.dialect)
        return rows

    def _refusal(self, exc: Exception) -> str | None:
        """The broker's words when ``exc`` is the client refusing the call (TradeError), else None."""
        return str(exc) if _is_trade_error(exc) else None

    def _unreached(self, exc: Exception) -> bool:
        """Whether ``exc`` proves the call never reached the client (a local client: never)."""
        return False

    def _raise_send_failure(self, exc: Exception, what: str, no_answer: str) -> NoReturn:
        if isinstance(exc, BrokerError):  # a remote client's own typed answer
            if not isinstance(exc, BrokerUnavailable):
                self._lost()
            raise exc
        refusal = self._refusal(exc)
        if refusal is not None:
            raise BrokerError(refusal or what) from exc
        self._lost()
        if self._unreached(exc):
            raise BrokerUnavailable(f"{MSG_NOT_CONNECTED}: {type(exc).__name__}: {exc}") from exc
        raise BrokerTimeout(f"{no_answer}: {type(exc).__name__}: {exc}") from exc

    # -- reads ------------------------------------------------------------

    def get_balance(self) -> BrokerBalance:
        with self._session.lock:
            return parse_balance(self._read("balance"), self.dialect)

    def get_positions(self) -> list[BrokerPosition]:
        with self._session.lock:
            rows = _rows(self._read("position"), "position")
        return [p for p in _parsed(rows, parse_position, self.dialect) if p.quantity > 0]

    def query_orders(self) -> list[BrokerOrder]:
        with self._session.lock:
            rows = self._list("today_entrusts")
        return _parsed(rows, parse_order, self.dialect)

    def query_trades(self) -> list[BrokerTrade]:
        """Today's fills, each broker trade id once (a reconnect or a re-read grid may list a
        fill twice; the first report is kept)."""
        with self._session.lock:
            rows = self._list("today_trades")
        unique: dict[str, BrokerTrade] = {}
        for trade in _parsed(rows, parse_trade, self.dialect):
            unique.setdefault(trade.broker_trade_id, trade)
        return list(unique.values())

    # -- orders -----------------------------------------------------------

    def place_order(self, request: OrderRequest) -> OrderAck:
        """Send through ``buy``/``sell`` (or ``market_buy``/``market_sell``), then find the order in
        ``today_entrusts``: only an order listed there is acknowledged."""
        code, exchange = normalize_symbol(request.symbol)
        if request.side not in ("BUY", "SELL"):
            raise BrokerError(f"买卖方向错误 (bad side {request.side!r})")
        if request.quantity <= 0:
            raise BrokerError(f"委托数量错误 (bad quantity {request.quantity})")
        market = request.order_type == "MARKET"
        if market and not self.capabilities.market_orders:
            raise BrokerError(MSG_NO_MARKET)
        if not market and (request.order_type != "LIMIT" or request.price is None or request.price <= 0):
            raise BrokerError(f"委托类型或价格错误 (bad order type {request.order_type!r} / price {request.price})")
        with self._session.lock:
            before = {o.broker_order_id for o in _parsed(self._list("today_entrusts"), parse_order, self.dialect)}
            client = self._session.client
            method = ("market_buy" if request.side == "BUY" else "market_sell") if market else request.side.lower()
            if market and not callable(getattr(client, method, None)):
                raise BrokerError(MSG_NO_MARKET)
            try:
                if market:
                    kwargs: dict[str, Any] = {}
                    ttype = (self.settings.get("market_ttype") or {}).get(exchange)
                    if ttype:
                        kwargs["ttype"] = ttype
                    if code.startswith("68") and request.protection_price is not None:
                        kwargs["limit_price"] = float(request.protection_price)
                    answer = getattr(client, method)(code, amount=request.quantity, **kwargs)
                else:
                    answer = getattr(client, method)(code, price=float(request.price or 0), amount=request.quantity)
            except Exception as exc:
                self._raise_send_failure(exc, "下单失败", MSG_SENT_NO_ANSWER)
            entrust_no = answer.get("entrust_no") if isinstance(answer, Mapping) else None
            if entrust_no is not None and self.dialect.numeric_ids and _int(entrust_no, "entrust_no") <= 0:
                # miniqmt: -1 is "not sent" (its order_stock failed before reaching the counter)
                raise BrokerError(f"委托失败 (order refused by the client, entrust_no={entrust_no})")
            return self._confirm(request, code, None if entrust_no in (None, "") else _id(entrust_no, "entrust_no"), before)

    def _confirm(self, request: OrderRequest, code: str, entrust_no: str | None, before: set[str]) -> OrderAck:
        """The order in the broker's list: by its number, or as the one new order like ``request``."""
        for attempt in range(self.confirm_reads):
            if attempt:
                time.sleep(self.confirm_interval)
            try:
                orders = _parsed(self._list("today_entrusts"), parse_order, self.dialect)
            except BrokerError as exc:
                raise BrokerTimeout(f"{MSG_SENT_UNCONFIRMED}: {exc.message}") from exc
            if entrust_no is not None:
                found = [o for o in orders if o.broker_order_id == entrust_no]
            else:
                found = [o for o in orders if o.broker_order_id not in before and _is_like(o, request, code)]
            if len(found) == 1:
                return OrderAck(found[0].broker_order_id, found[0].message)
            if len(found) > 1:
                break  # two new orders alike: which one is ours cannot be told
        raise BrokerTimeout(MSG_SENT_UNCONFIRMED + (f" (entrust_no={entrust_no})" if entrust_no else ""))

    def cancel_order(self, broker_order_id: str) -> None:
        """``cancel_entrust``. A GUI client answers in words: "success" or words with 成功 is an
        accepted request, "unknown message: ..." an unknown outcome, anything else a refusal."""
        entrust_no: Any = broker_order_id
        if self.dialect.numeric_ids:
            if not broker_order_id.isdigit():
                raise BrokerError(f"委托不存在 (no order {broker_order_id!r})")
            entrust_no = int(broker_order_id)
        with self._session.lock:
            self.login()
            try:
                answer = self._session.client.cancel_entrust(entrust_no)
            except Exception as exc:
                self._raise_send_failure(exc, "撤单失败", MSG_CANCEL_NO_ANSWER)
        if isinstance(answer, Mapping) and answer.get("success") is True:
            return
        message = str(answer.get("message", "")) if isinstance(answer, Mapping) else str(answer or "")
        if isinstance(answer, Mapping) and answer.get("success") is False:
            raise BrokerError(f"撤单失败 (cancel refused): {message}")
        if message == "success" or ("成功" in message and "不成功" not in message and "失败" not in message):
            return
        if message.startswith("unknown message") or not message:
            raise BrokerTimeout(f"{MSG_CANCEL_NO_ANSWER}: {message}")
        raise BrokerError(message)


def _is_like(order: BrokerOrder, request: OrderRequest, code: str) -> bool:
    if order.symbol.split(".")[0] != code or order.side != request.side or order.quantity != request.quantity:
        return False
    if request.order_type == "MARKET":
        return order.order_type == "MARKET"
    return order.order_type == "LIMIT" and order.price == request.price
