"""The contract every broker adapter honours (../shared/PLAN.md 6.1).

An adapter is one class in ``brokers/adapters/<name>.py`` registered by name
(:mod:`brokers.registry`). It returns the typed objects below, never raw dicts,
and reports failures as exceptions:

* :class:`trading.errors.BrokerError` - the broker answered and refused (its
  own message is kept verbatim in ``message``);
* :class:`trading.errors.BrokerTimeout` - no answer in time: the call may or
  may not have taken effect, so the caller must reconcile, never retry blindly.

Every request carries ``client_ref`` (our order id) and the broker reports it
back on its orders, so reconciliation can find an order whose answer was lost.
Adapters that cannot carry a reference declare ``capabilities.client_ref`` False
and are matched on (symbol, side, price, quantity, time) instead.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

    from trading.models import Account


class BrokerOrderStatus(StrEnum):
    OPEN = "OPEN"  # accepted, resting, nothing filled
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"  # possibly after partial fills
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"  # day order not filled by the close


@dataclass(frozen=True)
class Capabilities:
    market_orders: bool = True
    modify: bool = False  # native modify; otherwise cancel-and-replace
    history: bool = True
    client_ref: bool = True


@dataclass(frozen=True)
class BrokerBalance:
    cash: Decimal
    available: Decimal
    frozen: Decimal
    market_value: Decimal
    total_assets: Decimal


@dataclass(frozen=True)
class BrokerPosition:
    symbol: str
    quantity: int
    sellable_quantity: int
    avg_cost: Decimal
    last_price: Decimal | None
    market_value: Decimal


@dataclass(frozen=True)
class OrderRequest:
    client_ref: str
    symbol: str
    side: str  # BUY | SELL
    order_type: str  # LIMIT | MARKET
    quantity: int
    price: Decimal | None = None
    protection_price: Decimal | None = None


@dataclass(frozen=True)
class OrderAck:
    broker_order_id: str
    message: str = ""


@dataclass(frozen=True)
class BrokerOrder:
    broker_order_id: str
    client_ref: str
    symbol: str
    side: str
    order_type: str
    price: Decimal | None
    quantity: int
    filled_quantity: int
    avg_fill_price: Decimal | None
    status: BrokerOrderStatus
    message: str
    created_at: datetime
    trading_day: date


@dataclass(frozen=True)
class BrokerTrade:
    broker_trade_id: str
    broker_order_id: str
    symbol: str
    side: str
    price: Decimal
    quantity: int
    amount: Decimal
    filled_at: datetime
    trading_day: date
    commission: Decimal = Decimal("0")
    stamp_duty: Decimal = Decimal("0")
    transfer_fee: Decimal = Decimal("0")
    other_fees: Decimal = Decimal("0")

    @property
    def fees(self) -> Decimal:
        return self.commission + self.stamp_duty + self.transfer_fee + self.other_fees


@dataclass(frozen=True)
class BrokerChanges:
    """What ``query_changes`` read: orders (with their trades) and where to read on from.

    ``complete``: ``orders`` lists every order ``query_orders`` would (a full
    read, so an order missing from it is unknown to the broker); otherwise only
    those that changed after the cursor. ``cursor``: pass it to the next call
    to read only what changed after this read; None when the adapter cannot.
    """

    orders: list[BrokerOrder]
    trades: list[BrokerTrade]
    cursor: str | None = None
    complete: bool = True


class BrokerInterface(abc.ABC):
    """One connection to one account at one broker.

    ``settings`` is the account's decrypted broker settings (credentials,
    endpoints). Methods may block on the network; callers run them in workers,
    never inside a database transaction.
    """

    kind: ClassVar[str]
    label: ClassVar[StrOrPromise] = ""  # the name people read: gettext_lazy("...") with an English msgid
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, account_name: str, settings: dict[str, Any] | None = None) -> None:
        self.account_name = account_name
        self.settings: dict[str, Any] = dict(settings or {})

    @classmethod
    def for_account(cls, account: Account) -> Self:
        """The adapter for ``account``, built from its decrypted broker settings.

        An adapter that needs more of the account row (the paper broker: its
        session mode and fees) overrides this to keep what it needs, instead of
        reading the row again on every call.
        """
        return cls(account.name, account.broker_settings)

    @abc.abstractmethod
    def login(self) -> None:
        """Open the session (log in with the configured credentials). Idempotent."""

    @abc.abstractmethod
    def get_balance(self) -> BrokerBalance:
        """The account's cash as the broker sees it."""

    @abc.abstractmethod
    def get_positions(self) -> list[BrokerPosition]:
        """Holdings as the broker sees them."""

    @abc.abstractmethod
    def place_order(self, request: OrderRequest) -> OrderAck:
        """Send a new order. Raises BrokerError when refused, BrokerTimeout when unanswered."""

    @abc.abstractmethod
    def cancel_order(self, broker_order_id: str) -> None:
        """Ask the broker to cancel. The outcome is seen later in ``query_orders``."""

    @abc.abstractmethod
    def query_orders(self) -> list[BrokerOrder]:
        """Today's orders of the account."""

    @abc.abstractmethod
    def query_trades(self) -> list[BrokerTrade]:
        """Today's trades (fills) of the account."""

    def heartbeat(self) -> None:
        """Check the session is alive (brokers.connection's heartbeat). This default reads the
        balance; an adapter with a cheaper ping overrides it. Raises as any call does."""
        self.get_balance()

    def history_orders(self, start: date, end: date) -> list[BrokerOrder]:
        """Orders of past trading days, both ends included."""
        raise NotImplementedError(f"{self.kind} does not provide order history")

    def query_order(self, broker_order_id: str) -> BrokerSnapshot:
        """One order (none in ``orders`` when the broker has no such order) and its trades.

        This default reads the whole lists; an adapter that can look one order up overrides it.
        """
        orders = [o for o in self.query_orders() if o.broker_order_id == broker_order_id]
        trades = [t for t in self.query_trades() if t.broker_order_id == broker_order_id] if orders else []
        return BrokerSnapshot(orders=orders, trades=trades)

    def query_changes(self, cursor: str | None) -> BrokerChanges:
        """The orders that changed after ``cursor`` (from an earlier answer), with their trades.

        ``cursor`` None, or one the adapter no longer recognises: a full read
        (``complete``). This default always reads everything (``query_orders``
        and ``query_trades``); an adapter that can tell what changed overrides
        it, so polling an account costs what changed, not what is open.
        """
        return BrokerChanges(self.query_orders(), self.query_trades(), cursor=None, complete=True)


@dataclass
class BrokerSnapshot:
    """What one poll of an account read from its broker."""

    orders: list[BrokerOrder] = field(default_factory=list)
    trades: list[BrokerTrade] = field(default_factory=list)

    def trades_of(self, broker_order_id: str) -> list[BrokerTrade]:
        return [t for t in self.trades if t.broker_order_id == broker_order_id]
