"""Reads of the live view: the snapshot a client (re-)syncs from, and the system's health.

The snapshot first reads the live-update numbers (monitoring/live.py ``seq_current``), then the
state: every event numbered up to them had committed before, so the state includes it; events
numbered after may be in it too, and a client applies them again harmlessly (each carries the
whole of what it describes: an order's status, a position, a balance).
"""

from __future__ import annotations

import time
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.conf import settings
from django.db.models import Q

from brokers.models import BrokerLink, LinkState
from monitoring import live
from orders.models import Order, OrderStatus
from orders.state_machine import order_event_data
from risk.models import RiskEvent
from trading.clock import now
from trading.market_rules import format_symbol
from trading.models import Account
from trading.money import ZERO, to_cent
from trading.selectors import account_positions, account_trading_day

ORDERS_IN_SNAPSHOT = 200
RISK_EVENTS_IN_SNAPSHOT = 50


def account_view(account: Account) -> dict[str, Any]:
    """One account as the dashboard shows it: balance, positions with market value and P&L,
    today's orders (newest first) and risk events."""
    at = now()
    positions = account_positions(account=account, at=at)
    books = {format_symbol(code, exchange): (cost, realized_pnl) for code, exchange, cost, realized_pnl in
             account.positions.values_list("instrument__code", "instrument__exchange", "cost_amount", "realized_pnl")}
    for position in positions:
        cost, realized_pnl = books.get(position["symbol"], (ZERO, ZERO))
        position["cost_amount"], position["realized_pnl"] = str(cost), str(realized_pnl)
    market_value = sum((Decimal(p["market_value"]) for p in positions), ZERO)
    unrealized = sum((Decimal(p["unrealized_pnl"]) for p in positions), ZERO)
    realized = sum((realized_pnl for _, realized_pnl in books.values()), ZERO)
    day = account_trading_day(account, at)
    orders = (Order.objects.filter(account=account, trading_day=day).select_related("instrument")
              .order_by("-id")[:ORDERS_IN_SNAPSHOT])
    risk_events = RiskEvent.objects.filter(account=account, created_at__date__gte=day).order_by("-id")[:RISK_EVENTS_IN_SNAPSHOT]
    link = BrokerLink.objects.filter(account=account).first()
    return {
        "account": account.name,
        "display_name": account.display_name or account.name,
        "trading_day": str(day),
        "trading_state": account.trading_state,
        "balance": {"cash": str(account.cash), "frozen": str(account.frozen), "available": str(account.cash - account.frozen),
                    "market_value": str(market_value), "total_assets": str(account.cash + market_value)},
        "pnl": {"unrealized": str(unrealized), "realized": str(realized),
                "total": str(to_cent(unrealized + realized, ROUND_HALF_EVEN))},
        "positions": positions,
        "realized_by_symbol": {symbol: str(realized_pnl) for symbol, (_, realized_pnl) in books.items()},
        "orders": [order_event_data(order, status=order.status) for order in orders],
        "risk_events": [{"id": e.pk, "rule": e.rule, "level": e.level, "action": e.action, "message": e.message,
                         "order": e.order_id, "at": e.created_at.isoformat()} for e in risk_events],
        "broker_link": {"state": link.state if link else LinkState.UP, "error": link.last_error if link else "",
                        "changed_at": link.changed_at.isoformat() if link and link.changed_at else None},
    }


def live_snapshot(accounts: list[Account], *, system: bool) -> dict[str, Any]:
    """What a live client re-syncs from: ``seq`` (per account, "_system" for the system's events),
    then each account's view and, with ``system``, the system's health."""
    names = [account.name for account in accounts]
    seq = live.seq_current([*names, *([""] if system else [])])
    fresh = {a.pk: a for a in Account.objects.filter(pk__in=[a.pk for a in accounts])}  # money read after seq
    snapshot: dict[str, Any] = {"at": now().isoformat(), "seq": seq,
                                "accounts": [account_view(fresh[a.pk]) for a in accounts if a.pk in fresh]}
    if system:
        snapshot["health"] = system_health()
    return snapshot


_workers_seen: tuple[float, dict[str, Any]] | None = None


def _workers() -> dict[str, Any]:
    """The Celery workers that answer a ping (asked at most every 10 s; in-process tasks: "inline")."""
    global _workers_seen
    if not settings.REDIS_URL:
        return {"state": "inline", "names": []}
    if _workers_seen and _workers_seen[0] > time.monotonic():
        return _workers_seen[1]
    from trading.celery import app

    try:
        replies = app.control.ping(timeout=0.3) or []
        names = sorted(name for reply in replies for name in reply)
        result = {"state": "up" if names else "down", "names": names}
    except Exception as exc:  # Redis down: say so, the page stays up
        result = {"state": "unknown", "names": [], "error": type(exc).__name__}
    _workers_seen = (time.monotonic() + 10.0, result)
    return result


def _queue_depth(key: str) -> int | None:
    if not settings.REDIS_URL:
        return None
    try:
        return int(live._redis().llen(key))
    except Exception:
        return None


def system_health() -> dict[str, Any]:
    """Broker connections (BrokerLink), workers, the scheduler and the backlogs (task queue, live
    relay, orders owed to the broker)."""
    links = [{"account": link.account.name, "state": link.state, "error": link.last_error,
              "changed_at": link.changed_at.isoformat() if link.changed_at else None,
              "last_ok_at": link.last_ok_at.isoformat() if link.last_ok_at else None}
             for link in BrokerLink.objects.select_related("account").order_by("account__name")]
    # The scheduler's every-few-seconds broker heartbeat leaves last_ok_at behind: its age says
    # whether the scheduler and a worker still run (while some broker answers).
    last_beat = max((link["last_ok_at"] for link in links if link["last_ok_at"]), default=None)
    owed = Order.objects.filter(Q(status=OrderStatus.NEW) & Q(dispatched_at__isnull=True)).count()
    return {
        "brokers": links,
        "brokers_down": sum(1 for link in links if link["state"] == LinkState.DOWN),
        "workers": _workers(),
        "scheduler": {"last_heartbeat_at": last_beat, "interval_seconds": settings.BROKER_HEARTBEAT_SECONDS},
        "queue_depth": _queue_depth(settings.CELERY_TASK_DEFAULT_QUEUE),
        "live_backlog": _queue_depth(live.QUEUE_KEY),  # live events the live relay has not sent yet
        "outbox_owed": owed,
    }
