"""The pre-trade risk controller: runs every enabled rule for an order and decides.

Configuration (RiskRule rows, restricted symbols, the global trading state)
is cached per process and checked for changes with ONE cheap query per check
(``risk.sql.fingerprint_read``: the global state and the configuration's
version, which database triggers bump on any write to the rule and
restricted-symbol tables), so an edit in admin, a raw SQL write or a global
halt applies to the very next order in every process, and with no rule
configured a check costs exactly that one query (which also reads today's
counters).

Precedence: an account-scoped RiskRule row replaces the global row of the
same code for that account (a disabled account row switches the global rule
off for it). Trading states: the stricter of the global and the account's
state applies; REDUCING lets only sells through, HALTED nothing new. Cancels
never pass through risk control.

A rule that raises is a failing REJECT verdict ("fail closed"), as is a row
whose code or parameters no longer validate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from orders.models import Order
from risk.context import RiskContext
from risk.rules import REGISTRY, Rule, RuleConfigError
from risk.rules.base import POST_TRADE, PRE_TRADE
from risk.sql import (
    CounterRow,
    Fingerprint,
    SnapshotFor,
    SnapshotRow,
    fingerprint_parse,
    fingerprint_read,
    fingerprint_sql,
    snapshot_parse,
    snapshot_read,
    snapshot_sql,
)
from risk.verdicts import Decision, RiskAction, RiskOutcome, Verdict
from trading.clock import now
from trading.db import fast_path, selects_run
from trading.i18n import bilingual
from trading.market_rules import Side
from trading.models import TradingState

__all__ = ["Decision", "RiskAction", "RiskOutcome", "Verdict", "risk_check_order", "config_load", "config_cache_clear",
           "effective_state", "TRADING_STATE_RULE", "POST_TRADE", "PRE_TRADE"]

log = logging.getLogger(__name__)

TRADING_STATE_RULE = "trading_state"
STATE_SEVERITY: dict[str, int] = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Restriction:
    pk: int
    account_id: int | None
    side: str
    reason: str
    valid_from: date | None
    valid_to: date | None

    def applies(self, *, account_id: int, side: str, day: date) -> bool:
        return (
            (self.account_id is None or self.account_id == account_id)
            and (self.side == "BOTH" or self.side == side)
            and (self.valid_from is None or self.valid_from <= day)
            and (self.valid_to is None or day <= self.valid_to)
        )


class _BrokenRule(Rule[Any]):
    """Stands in for a row whose code or parameters do not validate: refuses every order, saying why."""

    phase = PRE_TRADE

    def __init__(self, code: str, message: str) -> None:
        super().__init__(None, RiskAction.REJECT)  # type: ignore[arg-type]  # a broken row has no valid parameters, and this rule reads none
        self.broken_code = code
        self.message = message

    def check(self, order: Order, context: RiskContext) -> Verdict:
        return Verdict(self.broken_code, False, RiskAction.REJECT,
                       bilingual("rule configuration invalid, failing closed") + f": {self.message}")


@dataclass
class RiskConfig:
    """The enabled rules and restrictions as of one fingerprint of the tables."""

    fingerprint: tuple[Any, ...]
    global_rows: dict[str, tuple[bool, Rule[Any]]] = field(default_factory=dict)
    account_rows: dict[int, dict[str, tuple[bool, Rule[Any]]]] = field(default_factory=dict)
    restrictions: dict[int, tuple[Restriction, ...]] = field(default_factory=dict)
    _resolved: dict[tuple[int, str], list[Rule[Any]]] = field(default_factory=dict)

    def rules_for(self, account_id: int, phase: str = PRE_TRADE) -> list[Rule[Any]]:
        """The enabled rules of ``phase`` for an account: its own rows over the global ones."""
        key = (account_id, phase)
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        merged = dict(self.global_rows)
        merged.update(self.account_rows.get(account_id, {}))
        codes = list(REGISTRY) + sorted(set(merged) - set(REGISTRY))  # registry order; unknown codes last
        rules = [merged[code][1] for code in codes if code in merged and merged[code][0] and merged[code][1].phase == phase]
        self._resolved[key] = rules
        return rules


def _build_rule(code: str, params: Any, action: str) -> Rule[Any]:
    try:
        cls = REGISTRY.get(code)
        if cls is None:
            raise RuleConfigError(bilingual("unknown rule code {code!r}", code=code))
        return cls.build(params, action)
    except RuleConfigError as exc:
        log.error("risk rule %s is invalid and fails closed: %s", code, exc.message)
        return _BrokenRule(code, exc.message)


def _load_config(fingerprint: tuple[Any, ...]) -> RiskConfig:
    from risk.models import RestrictedSymbol, RiskRule

    config = RiskConfig(fingerprint)
    for row in RiskRule.objects.all().order_by("pk"):
        entry = (row.enabled, _build_rule(row.code, row.params, row.action))
        if row.account_id is None:
            config.global_rows[row.code] = entry
        else:
            config.account_rows.setdefault(row.account_id, {})[row.code] = entry
    by_instrument: dict[int, list[Restriction]] = {}
    for r in RestrictedSymbol.objects.all().order_by("pk"):
        by_instrument.setdefault(r.instrument_id, []).append(
            Restriction(r.pk, r.account_id, r.side, r.reason, r.valid_from, r.valid_to))
    config.restrictions = {k: tuple(v) for k, v in by_instrument.items()}
    return config


@dataclass(frozen=True)
class Snapshot:
    config: RiskConfig
    global_state: str
    global_reason: str
    # Today's counter rows of the account and symbol asked for (read in the same round trip).
    counter_rows: list[CounterRow] | None = None


_lock = threading.Lock()
_cache: dict[str, Any] = {"config": None, "snapshot": None, "read_at": 0.0}


def config_load(*, max_age: float = 0.0, counters_for: tuple[int, Any, str] | None = None,
                fingerprint: Fingerprint | None = None) -> Snapshot:
    """The current configuration. ``max_age`` 0 (pre-trade checks): verify freshness now with one
    read of the fingerprint (which also reads today's counters of ``counters_for`` = (account id,
    day, symbol)), or from ``fingerprint``, read by the caller; > 0 (post-trade hooks): reuse
    what this process read within ``max_age`` seconds. The singleton row may be absent (fresh or
    flushed database): then ACTIVE."""
    cached: Snapshot | None = _cache["snapshot"]
    if max_age > 0 and cached is not None and time.monotonic() - _cache["read_at"] < max_age:
        return cached
    if fingerprint is None:
        fingerprint = fingerprint_read(counters_for)
    state, reason = fingerprint.trading_state or TradingState.ACTIVE, fingerprint.trading_state_reason or ""
    config_key, counters = fingerprint.config_key, fingerprint.counters
    config: RiskConfig | None = _cache["config"]
    if config is None or config.fingerprint != config_key:
        with _lock:
            config = _cache["config"]
            if config is None or config.fingerprint != config_key:
                config = _load_config(config_key)
                _cache["config"] = config
    snapshot = Snapshot(config, state, reason, counters)
    _cache["snapshot"], _cache["read_at"] = Snapshot(config, state, reason), time.monotonic()
    return snapshot


def config_cache_clear() -> None:
    """Forget the cached configuration (tests; the fingerprint makes this unnecessary otherwise)."""
    with _lock:
        _cache.update(config=None, snapshot=None, read_at=0.0)


def restrictions_for(config: RiskConfig | None, instrument_id: int) -> Iterable[Restriction]:
    config = config or config_load().config
    return config.restrictions.get(instrument_id, ())


# --------------------------------------------------------------------------- trading state


def effective_state(account_state: str, global_state: str) -> str:
    """The stricter of the account's and the global trading state."""
    return max((account_state or TradingState.ACTIVE, global_state or TradingState.ACTIVE), key=lambda s: STATE_SEVERITY.get(s, 2))


def _state_verdict(order: Order, snapshot: Snapshot) -> Verdict | None:
    account = order.account
    state = effective_state(account.trading_state, snapshot.global_state)
    if state == TradingState.ACTIVE:
        return None
    scope_global = STATE_SEVERITY.get(snapshot.global_state, 0) >= STATE_SEVERITY.get(account.trading_state, 0)
    scope, reason = ("全局", snapshot.global_reason) if scope_global else (f"账户 {account.name}", account.trading_state_reason)
    scope_en = "global" if scope_global else f"account {account.name}"
    values = {"state": state, "scope": "global" if scope_global else "account", "reason": reason}
    if state == TradingState.HALTED:
        return Verdict(TRADING_STATE_RULE, False, RiskAction.REJECT,
                       bilingual("{scope_en} trading is HALTED: {reason}", scope=scope, reason=reason, scope_en=scope_en), values)
    if order.side == Side.BUY:
        return Verdict(TRADING_STATE_RULE, False, RiskAction.REJECT,
                       bilingual("{scope_en} is REDUCING: only orders that reduce a position pass", scope=scope, reason=reason, scope_en=scope_en),
                       values)
    return Verdict(TRADING_STATE_RULE, True, RiskAction.REJECT, bilingual("REDUCING: a sell reduces the position"), values)


# --------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class RiskReads:
    """The reads one pre-trade check needs: the configuration fingerprint with today's counters
    and, when this process's configuration gives the account rules, its holdings snapshot. On
    PostgreSQL the order path builds their ``statements`` before it takes the account lock
    (``reads_for``) and sends them in the lock's own round trip; elsewhere there are none and
    ``read`` uses the ORM."""

    statements: list[tuple[str, list[Any]]]
    counters_for: tuple[int, Any, str]
    snapshot_for: SnapshotFor | None  # None: no snapshot asked

    @property
    def group(self) -> str | None:
        """The control group the snapshot was read for; None: no snapshot asked."""
        return self.snapshot_for.group if self.snapshot_for is not None else None

    def matches(self, order: Order) -> bool:
        return self.counters_for == (order.account_id, order.trading_day, order.instrument.symbol)

    def parse(self, rows: list[list[tuple[Any, ...]]]) -> tuple[Fingerprint, list[SnapshotRow] | None]:
        """The fingerprint and the snapshot from the rows of ``statements``."""
        return fingerprint_parse(rows[0], True), snapshot_parse(rows[1]) if self.snapshot_for is not None else None

    def read(self) -> tuple[Fingerprint, list[SnapshotRow] | None]:
        """The fingerprint and the snapshot, read now."""
        if self.statements:
            return self.parse(selects_run(self.statements))
        return (fingerprint_read(self.counters_for),
                snapshot_read(self.snapshot_for) if self.snapshot_for is not None else None)


def reads_for(order: Order) -> RiskReads:
    """What a check of ``order`` will read; on PostgreSQL as statements the caller may run early
    (after the lock)."""
    counters_for = (order.account_id, order.trading_day, order.instrument.symbol)
    snapshot_for = None
    known: RiskConfig | None = _cache["config"]
    if known is not None and known.rules_for(order.account_id, PRE_TRADE):
        from risk.context import snapshot_for_order

        snapshot_for = snapshot_for_order(order)
    statements = []
    if fast_path():
        statements = [fingerprint_sql(counters_for), *([snapshot_sql(snapshot_for)] if snapshot_for is not None else [])]
    return RiskReads(statements, counters_for, snapshot_for)


def risk_check_order(order: Order, *, dry_run: bool = False, recheck: bool = False,
                     prefetched: tuple[RiskReads, list[list[tuple[Any, ...]]]] | None = None) -> RiskOutcome:
    """Run the enabled rules for ``order`` (an unsaved or saved Order) and return every verdict.

    Precondition (unless ``dry_run``): the caller holds the account lock, so
    running totals read here cannot change until the order is written. Reads
    only; the order path records counters and RiskEvents after it saves the
    order (``risk.services.risk_order_recorded``). ``recheck``: an operator is
    approving the (saved, held) order: rules about the moment of entry are
    skipped and the order's own contribution is left out of the totals.
    ``prefetched``: the ``reads_for`` statements and their rows, read by the
    caller after it took the account lock (used when they still match the order).
    """
    if prefetched is None or not prefetched[0].matches(order):
        reads = reads_for(order)
        fingerprint, holdings = reads.read()
    else:
        reads = prefetched[0]
        fingerprint, holdings = reads.parse(prefetched[1])
    snapshot = config_load(counters_for=reads.counters_for, fingerprint=fingerprint)
    # The holdings rows, when they were read for the account's current control group.
    snapshot_rows = holdings if reads.group is not None and reads.group == (order.account.control_group or "") else None
    verdicts: list[Verdict] = []
    state_verdict = _state_verdict(order, snapshot)
    if state_verdict is not None:
        verdicts.append(state_verdict)
    rules = snapshot.config.rules_for(order.account_id, PRE_TRADE)
    if not rules:
        return RiskOutcome(verdicts)
    context = RiskContext(order, at=now(), config=snapshot.config, recheck=recheck, dry_run=dry_run,
                          counter_rows=snapshot.counter_rows, snapshot_rows=snapshot_rows)
    for rule in rules:
        if recheck and not rule.recheck_on_approval:
            continue
        try:
            verdicts.append(rule.check(order, context))
        except Exception as exc:  # a broken rule refuses rather than lets an order slip through
            log.exception("risk rule %s raised on order %s", rule.code, getattr(order, "pk", None))
            verdicts.append(Verdict(rule.code, False, RiskAction.REJECT,
                                    bilingual("rule raised {name}, failing closed", name=type(exc).__name__)))
    return RiskOutcome(verdicts)
