"""A broker whose answers a test scripts, call by call (a test double, not a trading venue).

The back office's broker-side paths (an order accepted, refused, lost on the
way, filled in parts, a cancel refused, an order the broker never received)
need answers a real or paper broker gives only by accident of timing. This
adapter gives exactly the answer the test queued:

    script = ScriptedBroker.script("acc1")
    script.on_place(Reply.TIMEOUT)            # reaches the broker, answer lost
    script.on_cancel(Reply.REFUSE, "集合竞价时段不可撤单")
    ...                                       # the services call the adapter
    script.fill(order.broker_order_id, 300, Decimal("9.90"))

Each account has one :class:`BrokerScript` in this process, created by
``open_account`` (which ``trading.services.account_create`` calls), holding the
queued answers and the broker's own books: its orders (by broker order id, with
our id in ``client_ref``) and its trades, returned in the interface's typed
shapes. A call with nothing queued is accepted. ``query_changes`` answers a
complete read unless the script is ``incremental`` (then only the orders
changed after the cursor, as the paper broker answers). The books live in memory, so
the adapter only serves tasks run in the test's own process.

It is registered under ``"scripted"`` when this module is imported; it is left
out of ``brokers.registry``'s built-in list so that no real account can pick it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, NoReturn

from django.utils import timezone
from django.utils.translation import gettext_lazy

from brokers.interface import (
    BrokerBalance,
    BrokerChanges,
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
from trading.money import ROUND_HALF_EVEN, ZERO, to_cent, to_price_places

_OPEN = (BrokerOrderStatus.OPEN, BrokerOrderStatus.PARTIALLY_FILLED)


class Reply(StrEnum):
    ACCEPT = "accept"  # the broker takes the order (or the cancel)
    REFUSE = "refuse"  # BrokerError(message); a refused order is still listed, as REJECTED
    TIMEOUT = "timeout"  # BrokerTimeout: the call took effect (unless reaches_broker=False), the answer was lost
    CRASH = "crash"  # the calling worker dies mid-call: WorkerCrashed, not a broker answer


class WorkerCrashed(Exception):
    """A scripted crash of the worker making the call (its process would be gone)."""


@dataclass(frozen=True)
class Answer:
    reply: Reply
    message: str = ""
    reaches_broker: bool = True  # TIMEOUT and CRASH only: whether the call took effect first


@dataclass
class BrokerScript:
    """One account's queued answers and the broker's books for it."""

    cash: Decimal = ZERO
    place_answers: deque[Answer] = field(default_factory=deque)
    cancel_answers: deque[Answer] = field(default_factory=deque)
    orders: dict[str, BrokerOrder] = field(default_factory=dict)
    trades: list[BrokerTrade] = field(default_factory=list)
    placed: list[OrderRequest] = field(default_factory=list)  # every place_order call, answered or not
    cancels: list[str] = field(default_factory=list)  # every cancel_order call's broker order id
    # With ``incremental``, query_changes answers only the orders changed after its cursor (as the
    # paper broker does); otherwise always a complete read (BrokerInterface's default).
    incremental: bool = False
    full_reads: int = 0  # query_changes calls answered with a complete read
    connected: bool = True  # False: every call raises BrokerUnavailable (the session dropped)
    repeat_trades: bool = False  # True: each new trade is reported twice (a reconnect's replay)
    holdings: dict[str, tuple[int, Decimal]] = field(default_factory=dict)  # symbol -> (shares, avg cost), held before today
    _changed: dict[str, int] = field(default_factory=dict)  # broker order id -> change number
    _numbers: int = 0
    _sequence: int = 0

    def _put(self, order: BrokerOrder) -> BrokerOrder:
        self._sequence += 1
        self.orders[order.broker_order_id] = order
        self._changed[order.broker_order_id] = self._sequence
        return order

    def changes(self, cursor: str | None) -> BrokerChanges:
        """What ``query_changes(cursor)`` answers (see ``incremental``)."""
        since = int(cursor) if self.incremental and cursor and cursor.isdigit() else None
        if since is None or since > self._sequence:
            self.full_reads += 1
            return BrokerChanges(list(self.orders.values()), unique_trades(self.trades),
                                 cursor=str(self._sequence) if self.incremental else None, complete=True)
        ids = [order_id for order_id, number in sorted(self._changed.items(), key=lambda item: item[1]) if number > since]
        return BrokerChanges([self.orders[i] for i in ids], [t for t in unique_trades(self.trades) if t.broker_order_id in ids],
                             cursor=str(self._sequence), complete=False)

    def on_place(self, reply: Reply, message: str = "", *, reaches_broker: bool = True) -> BrokerScript:
        """Queue the answer to the next ``place_order`` call."""
        self.place_answers.append(Answer(reply, message, reaches_broker))
        return self

    def on_cancel(self, reply: Reply, message: str = "", *, reaches_broker: bool = True) -> BrokerScript:
        """Queue the answer to the next ``cancel_order`` call."""
        self.cancel_answers.append(Answer(reply, message, reaches_broker))
        return self

    def order_of(self, client_ref: str | int) -> BrokerOrder | None:
        """The broker's latest record of our order ``client_ref`` (the newest if placed twice)."""
        found = [o for o in self.orders.values() if o.client_ref == str(client_ref)]
        return found[-1] if found else None

    def fill(self, broker_order_id: str, quantity: int, price: Decimal, *, commission: Decimal = ZERO,
             stamp_duty: Decimal = ZERO, transfer_fee: Decimal = ZERO) -> BrokerTrade:
        """The broker executes ``quantity`` of an open order at ``price``: a trade, and the
        order PARTIALLY_FILLED or FILLED with its average price."""
        order = self.orders[broker_order_id]
        if order.status not in _OPEN or quantity > order.quantity - order.filled_quantity:
            raise ValueError(f"scripted broker: cannot fill {quantity} of {order.status} order {broker_order_id}")
        at = timezone.now()
        amount = to_cent(price * quantity, ROUND_HALF_EVEN)
        trade = BrokerTrade(
            broker_trade_id=f"T{len(self.trades) + 1:06d}", broker_order_id=broker_order_id, symbol=order.symbol,
            side=order.side, price=price, quantity=quantity, amount=amount, filled_at=at,
            trading_day=at.astimezone(SHANGHAI).date(), commission=commission, stamp_duty=stamp_duty,
            transfer_fee=transfer_fee,
        )
        self.trades.append(trade)
        if self.repeat_trades:
            self.trades.append(trade)
        filled = order.filled_quantity + quantity
        traded = sum((t.amount for t in unique_trades(self.trades) if t.broker_order_id == broker_order_id), ZERO)
        status = BrokerOrderStatus.FILLED if filled == order.quantity else BrokerOrderStatus.PARTIALLY_FILLED
        self._put(replace(order, filled_quantity=filled, status=status,
                          avg_fill_price=to_price_places(traded / filled, ROUND_HALF_EVEN)))
        signed = -(amount + trade.fees) if order.side == "BUY" else amount - trade.fees
        self.cash += signed
        return trade

    def close(self, broker_order_id: str, status: BrokerOrderStatus, message: str = "") -> BrokerOrder:
        """The broker ends an open order on its own (EXPIRED at the close, CANCELLED by the exchange)."""
        order = self.orders[broker_order_id]
        return self._put(replace(order, status=status, message=message or order.message))

    def record(self, request: OrderRequest, status: BrokerOrderStatus, message: str) -> BrokerOrder:
        """Enter ``request`` in the broker's books under a new broker order id."""
        self._numbers += 1
        at = timezone.now()
        order = BrokerOrder(
            broker_order_id=f"S{self._numbers:06d}", client_ref=request.client_ref, symbol=request.symbol,
            side=request.side, order_type=request.order_type, price=request.price, quantity=request.quantity,
            filled_quantity=0, avg_fill_price=None, status=status, message=message, created_at=at,
            trading_day=at.astimezone(SHANGHAI).date(),
        )
        return self._put(order)


def unique_trades(trades: list[BrokerTrade]) -> list[BrokerTrade]:
    """Each broker trade id once, first report kept (a replayed report is the same trade)."""
    return list({t.broker_trade_id: t for t in reversed(trades)}.values())[::-1]


@register
class ScriptedBroker(BrokerInterface):
    """Answers from the account's :class:`BrokerScript` (see the module docstring)."""

    kind = "scripted"
    label = gettext_lazy("scripted broker (tests)")
    capabilities = Capabilities(market_orders=True, modify=False, history=False, client_ref=True)

    _scripts: ClassVar[dict[str, BrokerScript]] = {}

    @classmethod
    def open_account(cls, account_name: str, cash: Decimal) -> BrokerScript:
        """A fresh script and empty books for ``account_name`` (replacing any earlier one)."""
        cls._scripts[account_name] = BrokerScript(cash=Decimal(cash))
        return cls._scripts[account_name]

    @classmethod
    def script(cls, account_name: str) -> BrokerScript:
        return cls._scripts[account_name]

    @property
    def _book(self) -> BrokerScript:
        book = self._scripts.get(self.account_name)
        if book is None:
            raise BrokerError("资金账号不存在")
        if not book.connected:
            raise BrokerUnavailable("券商连接已断开")
        return book

    @staticmethod
    def _raise_lost_or_crashed(answer: Answer) -> NoReturn:
        if answer.reply == Reply.TIMEOUT:
            raise BrokerTimeout(answer.message or "券商应答超时")
        if answer.reply == Reply.CRASH:
            raise WorkerCrashed(answer.message or "worker died during the broker call")
        raise ValueError(f"scripted broker: {answer.reply} is an answer, not a lost call")

    def login(self) -> None:
        """Nothing to open; refuses an account the broker has no script for."""
        _ = self._book

    def get_balance(self) -> BrokerBalance:
        book = self._book
        frozen = to_cent(sum(
            ((o.price or ZERO) * (o.quantity - o.filled_quantity) for o in book.orders.values()
             if o.side == "BUY" and o.status in _OPEN),
            ZERO,
        ), ROUND_HALF_EVEN)
        market_value = sum((p.market_value for p in self.get_positions()), ZERO)
        return BrokerBalance(cash=book.cash, available=book.cash - frozen, frozen=frozen, market_value=market_value,
                             total_assets=book.cash + market_value)

    def get_positions(self) -> list[BrokerPosition]:
        """Holdings from ``holdings`` (held before today, sellable) and the trades the script made,
        valued at cost (it has no market). Every trade is today's, so what it bought is not
        sellable before tomorrow (T+1)."""
        book = self._book
        held: dict[str, tuple[int, Decimal]] = {s: (q, c * q) for s, (q, c) in book.holdings.items()}
        for trade in unique_trades(book.trades):
            quantity, cost = held.get(trade.symbol, (0, ZERO))
            sign = 1 if trade.side == "BUY" else -1
            held[trade.symbol] = (quantity + sign * trade.quantity, cost + sign * trade.amount)
        return [
            BrokerPosition(symbol=symbol, quantity=quantity, sellable_quantity=book.holdings.get(symbol, (0, ZERO))[0],
                           avg_cost=to_price_places(cost / quantity, ROUND_HALF_EVEN), last_price=None, market_value=cost)
            for symbol, (quantity, cost) in sorted(held.items()) if quantity > 0
        ]

    def place_order(self, request: OrderRequest) -> OrderAck:
        book = self._book
        book.placed.append(request)
        answer = book.place_answers.popleft() if book.place_answers else Answer(Reply.ACCEPT)
        if answer.reply == Reply.REFUSE:
            book.record(request, BrokerOrderStatus.REJECTED, answer.message or "废单")
            raise BrokerError(answer.message or "废单")
        if answer.reply != Reply.ACCEPT:
            if answer.reaches_broker:
                book.record(request, BrokerOrderStatus.OPEN, "已报")
            self._raise_lost_or_crashed(answer)
        order = book.record(request, BrokerOrderStatus.OPEN, answer.message or "已报")
        return OrderAck(order.broker_order_id, order.message)

    def cancel_order(self, broker_order_id: str) -> None:
        book = self._book
        book.cancels.append(broker_order_id)
        answer = book.cancel_answers.popleft() if book.cancel_answers else Answer(Reply.ACCEPT)
        if answer.reply == Reply.REFUSE:
            raise BrokerError(answer.message or "撤单失败")
        order = book.orders.get(broker_order_id)
        if order is None or order.status not in _OPEN:
            raise BrokerError("委托不存在或已结束, 不能撤单")
        if answer.reply == Reply.ACCEPT or answer.reaches_broker:
            book.close(broker_order_id, BrokerOrderStatus.CANCELLED, "已撤")
        if answer.reply != Reply.ACCEPT:
            self._raise_lost_or_crashed(answer)

    def query_orders(self) -> list[BrokerOrder]:
        return list(self._book.orders.values())

    def query_trades(self) -> list[BrokerTrade]:
        return unique_trades(self._book.trades)

    def query_changes(self, cursor: str | None) -> BrokerChanges:
        return self._book.changes(cursor)


@register
class ScriptedBrokerWithoutRef(ScriptedBroker):
    """The scripted broker as a broker that cannot carry our reference (easytrader's GUI clients):
    its orders come back with an empty ``client_ref``, and the back office must recognise them by
    what they say."""

    kind = "scripted_noref"
    capabilities = Capabilities(market_orders=True, modify=False, history=False, client_ref=False)

    def query_orders(self) -> list[BrokerOrder]:
        return [replace(o, client_ref="") for o in super().query_orders()]

    def query_changes(self, cursor: str | None) -> BrokerChanges:
        changes = super().query_changes(cursor)
        return replace(changes, orders=[replace(o, client_ref="") for o in changes.orders])
