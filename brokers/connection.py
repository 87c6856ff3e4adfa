"""Connection management for every broker adapter: a circuit breaker per account, re-login,
reconnect with exponential back-off and jitter, a heartbeat; the state in ``BrokerLink`` and an
event on every change.

``brokers.registry.broker_for`` hands out each adapter guarded (:func:`guard`): its broker calls
go through the account's :class:`Breaker`.

* Link up: the call goes through. A ``BrokerUnavailable`` (the session is gone) opens the circuit
  at once; ``BROKER_FAILURE_THRESHOLD`` ``BrokerTimeout``s in a row open it too. A refusal
  (``BrokerError``) is an answer: the link is up.
* Circuit open: calls fail fast with ``BrokerUnavailable`` (nothing reaches the broker) until the
  next attempt is due; then one call probes: the adapter logs in again (``login()``) and the call
  is made. Success closes the circuit (reconnected); failure opens it again for twice as long
  (``BROKER_BACKOFF_BASE_SECONDS`` doubling up to ``BROKER_BACKOFF_MAX_SECONDS``, each wait drawn
  between 80% and 120% so that many processes do not knock at the same moment).
* The heartbeat (:func:`brokers_heartbeat`, every ``BROKER_HEARTBEAT_SECONDS`` from Celery beat
  or the embedded scheduler) calls each active account's ``heartbeat()`` through the same guard,
  so a broker that drops while nothing trades is noticed and one that comes back is found.

Every call that reaches the adapter (and every probe's login) is timed and sent as
``brokers.signals.broker_called`` when someone listens (monitoring's latency histogram); calls an
open circuit refuses are not.

Each process keeps its own breakers in memory (a broker call never waits on the database for
them). A change of state is written to ``BrokerLink`` (what admin and ``/healthz`` show), audited
as ``broker.disconnected`` / ``broker.reconnected``, and sent as :data:`link_changed` after
commit: the orders layer then polls the account after a reconnect (unknown outcomes are queried,
never sent again) and releases the orders that waited. An open breaker also looks at
``BrokerLink``: a reconnect another process saw lets it probe at once.

What the order path does with it (orders/services/broker.py): an order is not claimed for the
broker while its account's circuit is open (it stays NEW, owed, and the sweep offers it again);
a placement answered ``BrokerUnavailable`` goes back from SUBMITTING to NEW, never REJECTED.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import django.dispatch
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import Actor, audit_record
from brokers.interface import BrokerInterface
from brokers.models import BrokerLink, LinkState
from brokers.signals import broker_called
from trading.clock import now
from trading.errors import BrokerError, BrokerTimeout, BrokerUnavailable
from trading.events import EventKind, publish
from trading.i18n import bilingual

if TYPE_CHECKING:
    from trading.models import Account

log = logging.getLogger(__name__)

#: Sent after commit when an account's link changes: ``account_id``, ``state`` (LinkState), ``error``.
link_changed = django.dispatch.Signal()

#: The adapter methods that talk to the broker (guarded); ``login`` is the guard's own probe.
GUARDED_METHODS = (
    "get_balance", "get_positions", "place_order", "cancel_order", "query_orders", "query_trades",
    "history_orders", "query_order", "query_changes", "heartbeat",
)

T = TypeVar("T")


@dataclass
class Breaker:
    """One account's circuit in this process."""

    state: str = LinkState.UP
    failures: int = 0  # failed calls in a row
    openings: int = 0  # times opened without a success between (the back-off's exponent)
    opened_at: datetime | None = None
    next_attempt: datetime | None = None
    error: str = ""


_BREAKERS: dict[int, Breaker] = {}


def breaker_of(account_id: int) -> Breaker:
    breaker = _BREAKERS.get(account_id)
    if breaker is None:
        breaker = _BREAKERS[account_id] = Breaker()
    return breaker


def breakers_forget() -> None:
    """Forget this process's breakers (tests; a process starts with every link presumed up)."""
    _BREAKERS.clear()


def backoff(openings: int) -> float:
    """Seconds before the next attempt after the circuit opened ``openings`` times in a row."""
    base = settings.BROKER_BACKOFF_BASE_SECONDS * (2 ** max(openings - 1, 0))
    return min(base, settings.BROKER_BACKOFF_MAX_SECONDS) * random.uniform(0.8, 1.2)


def link_open(account_id: int) -> bool:
    """Whether a call to the account's broker may be made now: the link is up, or down with a
    probe due (its back-off over, or another process saw it come back)."""
    breaker = _BREAKERS.get(account_id)
    if breaker is None or breaker.state == LinkState.UP:
        return True
    if breaker.next_attempt is None or now() >= breaker.next_attempt:
        return True
    seen = BrokerLink.objects.filter(account_id=account_id).values_list("state", "changed_at").first()
    return bool(seen and seen[0] == LinkState.UP and seen[1] and breaker.opened_at and seen[1] > breaker.opened_at)


def guard(adapter: BrokerInterface, account: Account) -> BrokerInterface:
    """``adapter`` with its broker calls going through ``account``'s breaker (see the module
    docstring). The same object is returned, its class and attributes unchanged."""
    for name in GUARDED_METHODS:
        setattr(adapter, name, _guarded(adapter, account, name, getattr(adapter, name)))
    return adapter


def _guarded(adapter: BrokerInterface, account: Account, method: str, call: Callable[..., T]) -> Callable[..., T]:
    account_id, account_name, kind = account.pk, account.name, account.broker_kind

    @functools.wraps(call)
    def guarded(*args: Any, **kwargs: Any) -> T:
        if adapter.__dict__.get("_in_guard"):
            return call(*args, **kwargs)  # one guarded method calling another (query_order's default)
        adapter.__dict__["_in_guard"] = True
        try:
            return _through(adapter, account_id, account_name, kind, method, call, args, kwargs)
        finally:
            adapter.__dict__["_in_guard"] = False

    return guarded


def _through(adapter: BrokerInterface, account_id: int, account_name: str, kind: str, method: str,
             call: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    breaker = breaker_of(account_id)
    if breaker.state == LinkState.DOWN:
        if not link_open(account_id):
            assert breaker.next_attempt is not None
            raise BrokerUnavailable(bilingual("broker disconnected; next attempt at {at}",
                                              at=f"{timezone.localtime(breaker.next_attempt):%H:%M:%S}") + f": {breaker.error}")
        try:
            _timed(kind, "login", adapter.login, (), {})  # the probe: a new session first
        except BrokerError as exc:
            _failed(breaker, account_id, account_name, kind, exc, certain=True)
            raise BrokerUnavailable(exc.message) from exc
    try:
        result = _timed(kind, method, call, args, kwargs)
    except BrokerUnavailable as exc:
        _failed(breaker, account_id, account_name, kind, exc, certain=True)
        raise
    except BrokerTimeout as exc:
        _failed(breaker, account_id, account_name, kind, exc, certain=False)
        raise
    except BrokerError:
        _succeeded(breaker, account_id, account_name, kind)  # refused: an answer all the same
        raise
    _succeeded(breaker, account_id, account_name, kind)
    return result


def _timed(kind: str, method: str, call: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    """``call(*args, **kwargs)``, its duration and outcome sent as ``broker_called`` when anyone
    listens (brokers/signals.py); nothing but the call when nobody does."""
    if not broker_called.has_listeners():
        return call(*args, **kwargs)
    outcome = "error"
    started = time.perf_counter()
    try:
        result = call(*args, **kwargs)
        outcome = "ok"
        return result
    except BrokerUnavailable:
        outcome = "unavailable"
        raise
    except BrokerTimeout:
        outcome = "timeout"
        raise
    except BrokerError:
        outcome = "refused"
        raise
    finally:
        broker_called.send_robust(sender=BrokerInterface, kind=kind, method=method,
                                  seconds=time.perf_counter() - started, outcome=outcome)


def _succeeded(breaker: Breaker, account_id: int, account_name: str, kind: str) -> None:
    if breaker.state == LinkState.UP and not breaker.failures:
        return  # the common case costs two comparisons
    was_down = breaker.state == LinkState.DOWN
    breaker.state, breaker.failures, breaker.openings = LinkState.UP, 0, 0
    breaker.next_attempt, breaker.error = None, ""
    if was_down:
        _record(account_id, account_name, kind, breaker, "broker.reconnected", "")


def _failed(breaker: Breaker, account_id: int, account_name: str, kind: str, exc: BrokerError, *, certain: bool) -> None:
    breaker.failures += 1
    breaker.error = exc.message[:500]
    if breaker.state == LinkState.UP and not certain and breaker.failures < settings.BROKER_FAILURE_THRESHOLD:
        return
    was_up = breaker.state == LinkState.UP
    breaker.state = LinkState.DOWN
    breaker.openings += 1
    breaker.opened_at = now()
    breaker.next_attempt = breaker.opened_at + timedelta(seconds=backoff(breaker.openings))
    if was_up:
        _record(account_id, account_name, kind, breaker, "broker.disconnected", breaker.error)
    else:
        _store(account_id, breaker)  # a failed probe: the next attempt moves on


def _store(account_id: int, breaker: Breaker, *, changed: bool = False) -> None:
    values: dict[str, Any] = {"state": breaker.state, "failures": breaker.failures, "last_error": breaker.error,
                              "next_attempt_at": breaker.next_attempt}
    if breaker.state == LinkState.UP:
        values["last_ok_at"] = now()
    if changed:
        values["changed_at"] = now()
    link, created = BrokerLink.objects.get_or_create(account_id=account_id, defaults=values)
    if not created:
        for key, value in values.items():
            setattr(link, key, value)
        link.save(update_fields=list(values))


def _record(account_id: int, account_name: str, kind: str, breaker: Breaker, action: str, error: str) -> None:
    """A change of state: stored, audited, announced after commit. Never fails the broker call."""
    state = breaker.state
    try:
        with transaction.atomic():
            _store(account_id, breaker, changed=True)
            audit_record(actor=Actor.broker(kind), action=action, object_type="account", object_id=account_id,
                         account=account_name, after={"state": state}, reason=error)
            transaction.on_commit(lambda: link_changed.send(sender=BrokerLink, account_id=account_id, state=state,
                                                            error=error))
            publish(EventKind.BROKER_LINK, account_name, {"account_id": account_id, "state": state, "error": error})
    except Exception:
        log.exception("could not record the %s of account %s's broker link", action, account_name)
    if state == LinkState.DOWN:
        log.warning("broker link of account %s down: %s", account_name, error)
    else:
        log.info("broker link of account %s up again", account_name)


def brokers_heartbeat() -> dict[str, str]:
    """Ask every active account's broker whether it is there (through its guard). Returns each
    account's link state after the beat. A link down and not yet due is not knocked on."""
    from brokers.registry import broker_for
    from trading.models import Account

    states: dict[str, str] = {}
    for account in Account.objects.filter(status=Account.Status.ACTIVE).order_by("pk"):
        if link_open(account.pk):
            try:
                broker_for(account).heartbeat()
            except BrokerError:
                pass  # the guard recorded it
            except Exception:
                log.exception("heartbeat of account %s failed", account.name)
        states[account.name] = breaker_of(account.pk).state
    return states
