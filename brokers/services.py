"""Writes of the simulated market and of the paper broker's books; opening an account.

``quotes_publish`` is the only writer of ``trading.Quote``: it stores the
published top of book and runs the paper broker's matcher for the resting
orders of those symbols, all in one transaction (lock order: quotes sorted by
instrument id, then paper accounts sorted by name; see ``brokers.models``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from audit.services import SYSTEM, Actor, audit_record
from brokers.adapters import paper
from brokers.models import PaperAccount, PaperOrder, PaperPosition, PaperTrade
from brokers.registry import adapter_class
from brokers.signals import quotes_published
from trading import calendar
from trading import market_rules as rules
from trading.clock import now
from trading.errors import Conflict, FieldProblem, InputRule, InvalidOrder, NotFound
from trading.i18n import bilingual
from trading.market_rules import FeeSchedule
from trading.models import Account, CashEntryKind, Instrument, Quote, SessionMode
from trading.money import ROUND_HALF_EVEN, ZERO, to_cent
from trading.selectors import quote_cache_clear
from trading.services import account_lock, cash_post
from trading.suitability import permissions_normalize

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- accounts


@transaction.atomic
def account_create(
    *,
    name: str,
    broker_kind: str = "paper",
    cash: Decimal = ZERO,
    fee_schedule: FeeSchedule | None = None,
    session_mode: str = SessionMode.ALWAYS,
    broker_settings: dict[str, Any] | None = None,
    display_name: str = "",
    permissions: Sequence[str] = (),
    owner: str = "",
    actor: Actor = SYSTEM,
) -> Account:
    """Open an account with its starting cash as a DEPOSIT ledger row, and its book at the
    broker when the adapter keeps one (the paper broker).

    It may trade the main boards (and funds); ``permissions`` (``trading.suitability.TradingPermission``
    codes) are the others the broker granted, dated today."""
    if Account.objects.filter(name=name).exists():
        raise Conflict(bilingual("account {name!r} already exists", name=name))
    adapter = adapter_class(broker_kind)  # raises for an unknown kind
    if cash < ZERO:
        raise InvalidOrder.single("cash", InputRule.NON_NEGATIVE, bilingual("cash must be >= 0; got {cash}", cash=cash))
    try:
        granted = permissions_normalize(dict.fromkeys(permissions, True), default_day=calendar.trading_day_of(now()))
    except ValueError as exc:
        raise InvalidOrder.single("permissions", InputRule.CHOICE, str(exc)) from None
    account = Account.objects.create(
        name=name,
        display_name=display_name or name,
        broker_kind=broker_kind,
        broker_settings=broker_settings or {},
        fee_schedule=(fee_schedule or FeeSchedule()).to_dict(),
        session_mode=session_mode,
        trading_permissions=granted,
        owner=owner,
    )
    audit_record(
        actor=actor,
        action="account.created",
        object_type="account",
        object_id=account.pk,
        account=account.name,
        after={"broker_kind": broker_kind, "session_mode": session_mode, "fee_schedule": account.fee_schedule,
               "trading_permissions": granted, "owner": owner, "broker_settings": sorted(broker_settings or {})},
    )
    if cash:
        cash_post(account, kind=CashEntryKind.DEPOSIT, amount=cash, actor=actor, memo="初始资金")
    open_hook = getattr(adapter, "open_account", None)
    if open_hook is not None:
        open_hook(account.name, cash)
    return account


@transaction.atomic
def account_broker_settings_set(*, account_id: int, settings: Mapping[str, Any], broker_kind: str | None = None,
                                actor: Actor, reason: str = "") -> Account:
    """Replace an account's broker settings (and, if given, its broker kind). Audited as
    ``account.broker_settings_changed`` with the setting names before and after and which ones
    changed value, never the values themselves (they are credentials). The adapter is built anew
    for the next call (``brokers.registry.broker_for``)."""
    if broker_kind is not None:
        adapter_class(broker_kind)  # raises for an unknown kind
    account_lock(account_id)  # the lock row leaves the credentials out: read them under the lock
    account = Account.objects.get(pk=account_id)
    old = dict(account.broker_settings or {})
    new = dict(settings)
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if not changed and broker_kind in (None, account.broker_kind):
        return account
    before = {"broker_kind": account.broker_kind, "settings": sorted(old)}
    account.broker_settings = new
    if broker_kind is not None:
        account.broker_kind = broker_kind
    account.save(update_fields=["broker_settings", "broker_kind"])
    audit_record(actor=actor, action="account.broker_settings_changed", object_type="account", object_id=account.pk,
                 account=account.name, before=before,
                 after={"broker_kind": account.broker_kind, "settings": sorted(new), "changed": changed}, reason=reason)
    return account


# --------------------------------------------------------------------------- quotes


@dataclass(frozen=True)
class QuoteIn:
    """One published quote. Plain dicts with the same keys are accepted too."""

    symbol: str
    last: Decimal | None = None
    prev_close: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_volume: int | None = None
    ask_volume: int | None = None


@dataclass
class PublishResult:
    """The stored quotes (one per input, in input order) and the accounts whose
    paper orders traded or changed status, so the caller can poll them."""

    quotes: list[Quote] = field(default_factory=list)
    accounts_with_fills: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _ParsedQuote:
    instrument: Instrument
    last: Decimal | None
    prev_close: Decimal | None
    bid: Decimal | None
    ask: Decimal | None
    bid_volume: int
    ask_volume: int


def _value(quote: QuoteIn | Mapping[str, Any], name: str) -> Any:
    if isinstance(quote, Mapping):
        return quote.get(name)
    return getattr(quote, name, None)


def _price(index: int, name: str, raw: Any, tick: Decimal) -> Decimal | None:
    loc = f"quotes[{index}].{name}"
    if raw is None or raw == "":
        return None
    if isinstance(raw, (float, bool)):
        raise InvalidOrder.single(
            loc, InputRule.DECIMAL, bilingual("{name} must be a decimal string, not {raw!r}", name=name, raw=raw)
        )
    try:
        price = raw if isinstance(raw, Decimal) else Decimal(str(raw))
    except (InvalidOperation, ValueError):
        raise InvalidOrder.single(loc, InputRule.DECIMAL, bilingual("{name} is not a number: {raw!r}", name=name, raw=raw)) from None
    if not price.is_finite() or price < 0:
        raise InvalidOrder.single(loc, InputRule.NON_NEGATIVE, bilingual("{name} must be >= 0; got {raw}", name=name, raw=raw))
    if price == 0:
        return None  # an empty side / no price
    if price % tick:
        raise InvalidOrder.single(
            loc, InputRule.TICK_SIZE, bilingual("{name} must be a multiple of {tick}; got {price}", tick=tick, name=name, price=price)
        )
    return price


def _volume(index: int, name: str, raw: Any) -> int:
    loc = f"quotes[{index}].{name}"
    if raw is None or raw == "":
        return 0
    if isinstance(raw, (bool, float)):
        raise InvalidOrder.single(loc, InputRule.INTEGER, bilingual("{name} must be an integer; got {raw!r}", name=name, raw=raw))
    try:
        volume = int(raw)
    except (TypeError, ValueError):
        raise InvalidOrder.single(loc, InputRule.INTEGER, bilingual("{name} must be an integer; got {raw!r}", name=name, raw=raw)) from None
    if volume < 0:
        raise InvalidOrder.single(loc, InputRule.NON_NEGATIVE, bilingual("{name} must be >= 0; got {volume}", name=name, volume=volume))
    return volume


def _parse(index: int, quote: QuoteIn | Mapping[str, Any]) -> _ParsedQuote:
    symbol = _value(quote, "symbol")
    loc = f"quotes[{index}].symbol"
    if not symbol or not isinstance(symbol, str):
        raise InvalidOrder.single(loc, InputRule.REQUIRED, bilingual("symbol is required"))
    try:
        code, exchange = rules.normalize_symbol(symbol)
    except rules.MarketRuleViolation as violation:
        raise InvalidOrder.single(loc, violation.rule, violation.message) from None
    instrument = Instrument.objects.filter(exchange=exchange, code=code).first()
    if instrument is None:
        raise InvalidOrder.single(
            loc, InputRule.UNKNOWN_SYMBOL, bilingual("unknown symbol {value}", value=rules.format_symbol(code, exchange))
        )
    tick = rules.tick_size(rules.board_of(instrument))
    parsed = _ParsedQuote(
        instrument=instrument,
        last=_price(index, "last", _value(quote, "last"), tick),
        prev_close=_price(index, "prev_close", _value(quote, "prev_close"), tick),
        bid=_price(index, "bid", _value(quote, "bid"), tick),
        ask=_price(index, "ask", _value(quote, "ask"), tick),
        bid_volume=_volume(index, "bid_volume", _value(quote, "bid_volume")),
        ask_volume=_volume(index, "ask_volume", _value(quote, "ask_volume")),
    )
    if parsed.bid is not None and parsed.ask is not None and parsed.bid >= parsed.ask:
        raise InvalidOrder.single(
            f"quotes[{index}].bid",
            InputRule.CROSSED,
            bilingual("bid {bid} must be below ask {ask}", bid=parsed.bid, ask=parsed.ask),
        )
    return parsed


def _check_band(index: int, item: _ParsedQuote, quote: Quote, day: date) -> None:
    """422 for a published last, bid or ask outside the day's price-limit band.

    The band comes from the quote's ``prev_close`` (published now or stored);
    without one, or for an instrument without a limit that day, any price goes.
    """
    if not quote.prev_close:
        return
    limits = rules.limit_prices(item.instrument, quote.prev_close, day)
    if limits is None:
        return
    down, up = limits
    for name in ("last", "bid", "ask"):
        price = getattr(item, name)
        if price is not None and not down <= price <= up:
            raise InvalidOrder.single(
                f"quotes[{index}].{name}",
                InputRule.PRICE_LIMIT,
                bilingual("{name} {price} is outside the day's price band {down}-{up} set by prev_close {prev_close}", name=name, price=price, down=down, up=up, prev_close=quote.prev_close),
            )


def quotes_publish(quotes: Sequence[QuoteIn | Mapping[str, Any]]) -> PublishResult:
    """Publish quotes to the simulated market and match the paper broker's resting orders.

    Each quote is a snapshot of the top of book: ``bid``/``ask`` and their
    volumes replace the previous ones (absent = that side is empty, which
    seals a limit up or down); ``last`` and ``prev_close`` keep their previous
    value when absent (``prev_close`` sets the day's price-limit band). Prices
    are decimals (strings or Decimal, never floats) on the instrument's tick;
    0 means absent. ``last``, ``bid`` and ``ask`` must lie within the band set
    by the (new or stored) ``prev_close``: nothing trades outside it. The whole
    call is one transaction; any invalid quote raises ``InvalidOrder`` naming
    ``quotes[i].<field>`` and its rule, and nothing is stored.
    """
    parsed = [_parse(index, quote) for index, quote in enumerate(quotes)]
    at = now()
    day = calendar.trading_day_of(at)
    instruments = {item.instrument.pk: item.instrument for item in parsed}
    result = PublishResult()
    with transaction.atomic():
        # Lock order: quotes by instrument id, then accounts (RestingBook.lock).
        locked: dict[int, Quote] = {}
        for pk in sorted(instruments):
            quote = paper.lock_quote(instruments[pk], create=True)
            assert quote is not None  # created when absent
            locked[pk] = quote
        for index, item in enumerate(parsed):
            quote = locked[item.instrument.pk]
            if item.last is not None:
                quote.last = item.last
            if item.prev_close is not None:
                quote.prev_close = item.prev_close
            quote.bid, quote.bid_volume = item.bid, item.bid_volume
            quote.ask, quote.ask_volume = item.ask, item.ask_volume
            quote.trading_day = day
            _check_band(index, item, quote, day)
            result.quotes.append(quote)
        for quote in locked.values():
            quote.save()
        book = paper.RestingBook.lock([(instruments[pk], locked[pk]) for pk in sorted(locked)], at)
        for pk in sorted(locked):
            book.match(instruments[pk], locked[pk])
        result.accounts_with_fills = set(book.changed_accounts)
        transaction.on_commit(quote_cache_clear)
        if quotes_published.has_listeners():
            stored = list(locked.values())
            transaction.on_commit(lambda: _announce(stored))
    return result


def _announce(quotes: list[Quote]) -> None:
    """After commit: tell the listeners of ``quotes_published`` (conditional orders) about ``quotes``."""
    for receiver, outcome in quotes_published.send_robust(sender=Quote, quotes=quotes):
        if isinstance(outcome, Exception):
            log.error("quotes_published: receiver %r failed: %r", receiver, outcome)


@transaction.atomic
def paper_order_reject(*, account_name: str, broker_order_id: str, message: str) -> PaperOrder:
    """The simulated exchange rejects an order the paper broker had accepted (废单 after 已报), with
    ``message`` as its reason; what it held is released. Raises BrokerError for no such open order."""
    return paper.reject_accepted_order(account_name, broker_order_id, message, now())


@transaction.atomic
def paper_reset_account(*, account_name: str, cash: Decimal) -> PaperAccount:
    """Wipe the paper broker's books of one account and start again with ``cash`` (tests, demos).

    Deletes its orders, trades and positions; creates the account when absent.
    Does not touch the back office's own records.
    """
    cash = to_cent(Decimal(cash), ROUND_HALF_EVEN)
    if cash < ZERO:
        raise InvalidOrder.single("cash", InputRule.NON_NEGATIVE, bilingual("cash must be >= 0; got {cash}", cash=cash))
    account, _ = PaperAccount.objects.get_or_create(account_name=account_name, defaults={"cash": cash})
    account = PaperAccount.objects.select_for_update().get(pk=account.pk)
    PaperTrade.objects.filter(order__account_name=account_name).delete()
    PaperOrder.objects.filter(account_name=account_name).delete()
    PaperPosition.objects.filter(account_name=account_name).delete()
    account.cash = cash
    account.frozen = ZERO
    account.save(update_fields=["cash", "frozen", "updated_at"])
    return account


@dataclass
class OpeningLoad:
    account: str
    positions: list[tuple[str, int, int]] = field(default_factory=list)  # (symbol, quantity, sellable today)
    paper_books: bool = False


def opening_positions_load(*, account_name: str, rows: list[dict[str, str]], actor: Any) -> OpeningLoad:
    """Load an account's opening positions from CSV rows (``symbol, quantity, avg_cost, acquired``),
    all or nothing, audited.

    Each symbol in the rows is set to the sum of its lots (see ``trading.services.position_open``:
    shares acquired before today are sellable, today's are T+1); symbols not in the rows are left
    as they are; cash is not touched. A paper account's broker books (``PaperPosition``) get the
    same holdings, or the paper broker would refuse to sell what the back office says is held.
    Lock order: the account, its positions, then the paper account.
    """
    from trading.services import account_lock, opening_lots_parse, position_open

    at = now()
    today = calendar.trading_day_of(at)
    lots = opening_lots_parse(rows, today=today)
    account = Account.objects.filter(name=account_name).first()
    if account is None:
        raise NotFound(bilingual("account {account_name!r} does not exist", account_name=account_name))
    by_symbol: dict[str, list[Any]] = {}
    for lot in lots:
        by_symbol.setdefault(lot.symbol, []).append(lot)
    instruments: dict[str, Instrument] = {}
    problems = []
    for symbol in by_symbol:
        code, _, exchange = symbol.partition(".")
        inst = Instrument.objects.filter(code=code, exchange=exchange).first()
        if inst is None:
            problems.append(FieldProblem("symbol", InputRule.UNKNOWN_SYMBOL, bilingual("unknown symbol {symbol}", symbol=symbol)))
        else:
            instruments[symbol] = inst
    if problems:
        raise InvalidOrder(problems)
    result = OpeningLoad(account=account.name, paper_books=account.broker_kind == "paper")
    with transaction.atomic():
        account = account_lock(account.pk)
        positions = {symbol: position_open(account=account, instrument=instruments[symbol], lots=symbol_lots,
                                           today=today, actor=actor)
                     for symbol, symbol_lots in sorted(by_symbol.items())}
        if result.paper_books:
            _paper_positions_set(account.name, positions, today)
        for symbol, position in positions.items():
            result.positions.append((symbol, position.quantity, position.sellable_quantity(today)))
    return result


def _paper_positions_set(account_name: str, positions: dict[str, Any], today: Any) -> None:
    """The paper broker's own books hold what the back office loaded (caller is in the transaction)."""
    paper_account = PaperAccount.objects.select_for_update().filter(account_name=account_name).first()
    if paper_account is None:
        paper_account = PaperAccount.objects.create(account_name=account_name, cash=ZERO)
    for symbol, position in positions.items():
        book, _ = PaperPosition.objects.select_for_update().get_or_create(account_name=account_name, symbol=symbol)
        if book.frozen_quantity:
            raise Conflict(bilingual("the paper broker holds {frozen_quantity} shares of {symbol} for open sells; cancel them first", symbol=symbol, frozen_quantity=book.frozen_quantity))
        book.quantity = position.quantity
        book.cost_amount = position.cost_amount
        # The back office's unsettled count is 0 for T+0 instruments; the paper broker ignores it for those anyway.
        book.bought_today = position.unsettled_quantity
        book.bought_day = today
        book.save()
