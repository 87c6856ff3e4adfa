"""One target of the broker contract suite: a broker and our adapter for it, with the controls a
test needs on the broker's side.

Each target (the paper broker, easytrader over fakes of its broker dialects, xtquant over a fake
trader, the gateway over loopback HTTP, ...) is one :class:`Venue` subclass in
``tests/brokers/contract/targets/<name>.py``, listed in that module's ``VENUES`` and the module
named in ``conftest.TARGET_MODULES``. ``test_contract.py`` runs every test against every venue.

A venue controls the broker, never our adapter: ``fill`` is the exchange filling an order,
``fail_next_place`` the network losing an answer, ``disconnect`` the client's session dropping.
The adapter under test must then behave as ``brokers.interface`` promises.
"""

from __future__ import annotations

import abc
from decimal import Decimal

from brokers.interface import BrokerInterface


class Venue(abc.ABC):
    """The broker side of one contract target (see the module docstring)."""

    #: the account (资金账号) the adapter trades
    account = "contract-1"
    #: the instrument every contract test trades; its market is about 10.00 (limits 9.00-11.00)
    symbol = "600000.SH"

    @abc.abstractmethod
    def adapter(self) -> BrokerInterface:
        """A new adapter for ``account``, not yet logged in. May be called more than once (a
        restarted worker): every adapter sees the same broker."""

    @abc.abstractmethod
    def fund(self, cash: Decimal) -> None:
        """The broker account holds ``cash`` (called before any order)."""

    @abc.abstractmethod
    def hold(self, symbol: str, quantity: int, avg_cost: Decimal) -> None:
        """The broker account holds ``quantity`` sellable shares of ``symbol``."""

    @abc.abstractmethod
    def fill(self, broker_order_id: str, quantity: int, price: Decimal) -> None:
        """The exchange executes ``quantity`` more of an open order at ``price`` (one trade)."""

    @abc.abstractmethod
    def reject(self, broker_order_id: str, message: str) -> None:
        """The exchange rejects an order the broker had accepted (废单 after 已报), saying ``message``."""

    @abc.abstractmethod
    def fail_next_place(self, *, took_effect: bool) -> None:
        """The next order placement gets no answer in time; with ``took_effect`` the broker
        received and entered the order all the same, without it the order never arrived."""

    @abc.abstractmethod
    def refuse_next_cancel(self, message: str) -> None:
        """The broker refuses the next cancel (e.g. 集合竞价时段不可撤单) and the order keeps resting."""

    @abc.abstractmethod
    def repeat_trade_reports(self) -> None:
        """From now on the broker reports every trade twice (as a reconnect that replays the
        day's trades does)."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """The session to the broker drops (the client process dies, the gateway's network goes)."""

    @abc.abstractmethod
    def reconnect(self) -> None:
        """The broker can be reached again; what it holds is unchanged."""

    def close(self) -> None:
        """Release what the venue started (servers, threads). Called once after each test."""
        return None  # most venues start nothing
