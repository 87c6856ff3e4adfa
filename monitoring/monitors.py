"""Monitors: domain events and periodic checks turned into alerts.

Event monitors (:func:`on_domain_event`, connected in ``MonitoringConfig.ready``) run in the
publishing process after its transaction committed; they must be quick and never raise into it.

* ``broker.disconnected`` (CRITICAL) / ``broker.reconnected`` (INFO, and the disconnection is
  resolved): BROKER_LINK events.
* ``order.rejected``: an order the broker rejected (BROKER_REJECTED, RECONCILED_REJECTED);
  ``order.unknown``: one whose broker answer was lost (UNKNOWN);
  ``order.repeated_rejections``: ``threshold`` broker rejections of one account within ``window``.
* ``risk.warn``: a risk rule with action WARN let an order pass; ``risk.rejected``: a rule rejected
  one (one alert per account and rule while open; repeats count on it).
* ``conditional.refused``: a conditional order fired and its child was refused by market rules or
  risk control (CONDITIONAL events, event REFUSED); the parent ended FAILED with the reason.
* ``balance.cash_change``: an account's cash moved by more than ``threshold`` CNY in one change.
* ``pnl.warning_line`` / ``pnl.stop_line``: the day's loss reached ``threshold`` percent of the
  day's capital (BALANCE and POSITION events, and periodically: prices move without events).
* ``system.health``: a HEALTH event of a part that went DOWN (FAILED, DEGRADED, ...); resolved
  when the part reports healthy again.

Periodic checks (:func:`monitors_check`, from Celery beat and the embedded scheduler):

* ``system.heartbeat``: a worker or scheduler's heartbeat older than ``window`` seconds.
* ``orders.outbox_backlog``: at least ``threshold`` broker calls owed and not dispatched for
  ``window`` seconds (accounts whose broker link is down wait on purpose, and are left out).
* ``orders.rate_spike`` / ``orders.cancel_ratio``: orders an account created in the last
  ``window`` seconds above ``threshold``; cancelled orders over orders above ``threshold``.
* ``calendar.horizon``: the holidays file ends within ``threshold`` days (60): after it, weekdays
  are treated as trading days, and the alert says so.
* Abnormal trading (:func:`abnormal_trading`, today's figures of orders/activity.py computed once
  for all of them, one alert per account and day, or per holder and symbol, however often seen):
  ``orders.hf_second`` / ``orders.hf_day``: orders plus cancels in an account's busiest second /
  today reached ``threshold`` (a share, 65%) of the exchanges' high-frequency line (accounts
  registered as high-frequency left out); ``orders.fill_rate``: under ``threshold`` of today's
  orders filled once an account has ``min_count`` orders; ``orders.self_trade``: ``threshold``
  self-trade attempts today; ``orders.closing_window``: ``threshold`` orders in the closing call;
  ``positions.stake_line``: a holding at ``threshold`` (4.5%) of an issuer's total shares.

Each monitor's level, threshold and window come from its ``MonitorSetting`` row (admin), else
``settings.MONITORING_MONITORS`` [code], else :data:`DEFAULTS`.

Why one module of over 500 lines: it is the catalogue of monitors. Every monitor is a few lines
over the same :data:`DEFAULTS` table, :func:`setting_of` and :func:`_raise`, and the list above is
the one place an operator's code (a ``MonitorSetting`` row, a routing rule) is defined; the
figures the larger ones judge live elsewhere (orders/activity.py, risk/post_trade.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring.alerts import alert_raise, alerts_resolve_key
from monitoring.models import Alert, AlertStatus, Heartbeat, Level, MonitorSetting
from trading.calendar import SHANGHAI
from trading.clock import now
from trading.events import DomainEvent, EventKind
from trading.i18n import bilingual
from trading.market_rules import HF_WARN_SHARE_DEFAULT, hf_warn_at

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    level: str
    threshold: Decimal | None = None
    window_seconds: int | None = None
    enabled: bool = True
    min_count: int | None = None


DEFAULTS: dict[str, Setting] = {
    "broker.disconnected": Setting(Level.CRITICAL),
    "broker.reconnected": Setting(Level.INFO),
    "order.rejected": Setting(Level.WARNING),
    "order.unknown": Setting(Level.WARNING),
    "order.repeated_rejections": Setting(Level.CRITICAL, Decimal(5), 300),
    "risk.warn": Setting(Level.WARNING),
    "risk.rejected": Setting(Level.WARNING),
    "conditional.refused": Setting(Level.WARNING),
    "balance.cash_change": Setting(Level.WARNING, Decimal(1_000_000)),
    "system.heartbeat": Setting(Level.CRITICAL, None, 60),
    "orders.outbox_backlog": Setting(Level.WARNING, Decimal(1), 30),
    "orders.rate_spike": Setting(Level.WARNING, Decimal(300), 60),
    "orders.cancel_ratio": Setting(Level.WARNING, Decimal("0.8"), 300),
    "calendar.horizon": Setting(Level.WARNING, Decimal(60)),
    # The day's loss as a percentage of the capital it is measured against (风险警示线 / 止损线).
    "system.health": Setting(Level.WARNING),
    "pnl.warning_line": Setting(Level.WARNING, Decimal(3)),
    "pnl.stop_line": Setting(Level.CRITICAL, Decimal(5)),
    # Abnormal trading (orders/activity.py): shares of the exchanges' high-frequency lines, counts
    # of today, the stake disclosure line's early warning (MARKET_RULES).
    "orders.hf_second": Setting(Level.WARNING, HF_WARN_SHARE_DEFAULT),
    "orders.hf_day": Setting(Level.WARNING, HF_WARN_SHARE_DEFAULT),
    "orders.fill_rate": Setting(Level.WARNING, Decimal("0.1"), min_count=50),
    "orders.self_trade": Setting(Level.WARNING, Decimal(1)),
    "orders.closing_window": Setting(Level.WARNING, Decimal(20)),
    "positions.stake_line": Setting(Level.WARNING, Decimal("0.045")),
}

_cache: dict[str, tuple[float, Setting]] = {}
_CACHE_SECONDS = 2.0


def setting_of(code: str) -> Setting:
    """The monitor's setting: its admin row, else settings.MONITORING_MONITORS, else DEFAULTS
    (read at most every two seconds per process)."""
    hit = _cache.get(code)
    if hit and time.monotonic() - hit[0] < _CACHE_SECONDS:
        return hit[1]
    base = DEFAULTS[code]
    overrides: dict[str, Any] = dict(getattr(settings, "MONITORING_MONITORS", {}).get(code, {}))
    if overrides.get("threshold") is not None:
        overrides["threshold"] = Decimal(str(overrides["threshold"]))
    if overrides:
        base = replace(base, **overrides)
    row = MonitorSetting.objects.filter(code=code).first()
    if row is not None:
        base = Setting(row.level, row.threshold if row.threshold is not None else base.threshold,
                       row.window_seconds if row.window_seconds is not None else base.window_seconds, row.enabled,
                       row.min_count if row.min_count is not None else base.min_count)
    _cache[code] = (time.monotonic(), base)
    return base


def settings_cache_clear() -> None:
    _cache.clear()
    _last_cash.clear()
    _pnl_checked.clear()


def _raise(code: str, *, title: str, detail: str = "", account: str = "", event_kind: str = "",
           data: dict[str, Any] | None = None, dedup_key: str = "") -> Alert | None:
    setting = setting_of(code)
    if not setting.enabled:
        return None
    return alert_raise(code=code, level=setting.level, title=title, detail=detail, account=account,
                       event_kind=event_kind, data=data, dedup_key=dedup_key)


# ---- event monitors -------------------------------------------------------------------------


def on_domain_event(sender: object, *, event: DomainEvent, **kwargs: Any) -> None:
    """The domain_event receiver: route the event to its monitor."""
    handler = _HANDLERS.get(event.kind)
    if handler is not None:
        handler(event)
    _check_heartbeats_now_and_then()


def broker_link(event: DomainEvent) -> None:
    state, error, account = event.data.get("state"), str(event.data.get("error") or ""), event.account
    key = f"broker.link:{account}"
    if state == "DOWN":
        _raise("broker.disconnected", title=bilingual("Broker connection of {account} lost", account=account),
               detail=error[:1000], account=account, event_kind=event.kind, data=dict(event.data), dedup_key=key)
        return
    down = Alert.objects.filter(dedup_key=key).exclude(status=AlertStatus.RESOLVED).values_list("pk", flat=True).first()
    alerts_resolve_key(key, note="broker reconnected")
    _raise("broker.reconnected", title=bilingual("Broker connection of {account} restored", account=account),
           account=account, event_kind=event.kind, data=dict(event.data),
           dedup_key=f"broker.reconnected:{account}:{down or event.at.isoformat()}")


BROKER_REJECTIONS = {"BROKER_REJECTED", "RECONCILED_REJECTED"}


def order(event: DomainEvent) -> None:
    data, account = event.data, event.account
    status, what = data.get("status"), data.get("event")
    if status == "REJECTED" and what in BROKER_REJECTIONS:
        reason = str(data.get("reason") or "")
        _raise("order.rejected", title=bilingual("Broker rejected orders of {account}", account=account),
               detail=bilingual("Order {order} rejected: {reason}", order=data.get("id"), reason=reason[:500]),
               account=account, event_kind=event.kind, data=dict(data))
        _repeated_rejections(account, event)
    elif status == "UNKNOWN":
        _raise("order.unknown", title=bilingual("Broker answer lost for orders of {account}", account=account),
               detail=bilingual("Order {order}: outcome unknown until reconciliation", order=data.get("id")),
               account=account, event_kind=event.kind, data=dict(data))


def _repeated_rejections(account: str, event: DomainEvent) -> None:
    from orders.models import Order, OrderStatus

    setting = setting_of("order.repeated_rejections")
    if not setting.enabled or setting.threshold is None:
        return
    since = timezone.now() - timedelta(seconds=setting.window_seconds or 300)
    # Rejected after a submission began: the broker's refusals, not risk control's.
    count = Order.objects.filter(account__name=account, status=OrderStatus.REJECTED, updated_at__gte=since,
                                 submitted_at__isnull=False).count()
    if count >= setting.threshold:
        _raise("order.repeated_rejections",
               title=bilingual("{count} broker rejections of {account} within {seconds} s", count=count,
                               account=account, seconds=setting.window_seconds),
               detail=str(event.data.get("reason") or "")[:500], account=account, event_kind=event.kind,
               data={"count": count})


def conditional(event: DomainEvent) -> None:
    data, account = event.data, event.account
    if data.get("event") != "REFUSED":
        return
    _raise("conditional.refused", title=bilingual("Conditional order of {account} fired but its order was refused", account=account),
           detail=bilingual("Conditional order {parent} ({kind}, {symbol}): {reason}", parent=data.get("id"), kind=data.get("kind"),
                            symbol=data.get("symbol"), reason=str(data.get("reason") or "")[:500]),
           account=account, event_kind=event.kind, data=dict(data), dedup_key=f"conditional.refused:{data.get('id')}")


def risk(event: DomainEvent) -> None:
    data, account = event.data, event.account
    action = str(data.get("action") or "").upper()
    rule = str(data.get("rule") or "")
    if action == "WARN":
        code, title = "risk.warn", bilingual("Risk warning on {account}: {rule}", account=account, rule=rule)
    elif action == "REJECT":
        code, title = "risk.rejected", bilingual("Risk control rejected an order of {account}: {rule}",
                                                 account=account, rule=rule)
    else:
        return
    _raise(code, title=title, detail=str(data.get("message") or "")[:1000], account=account, event_kind=event.kind,
           data=dict(data), dedup_key=f"{code}:{account}:{rule}")


_last_cash: dict[str, Decimal] = {}


def balance(event: DomainEvent) -> None:
    """Cash moved by more than the threshold since the last balance event this process saw of
    the account (the first one after a start only sets the mark)."""
    account = event.account
    try:
        cash = Decimal(str(event.data.get("cash")))
    except (InvalidOperation, ValueError):
        return
    previous = _last_cash.get(account)
    _last_cash[account] = cash
    setting = setting_of("balance.cash_change")
    if previous is None or setting.threshold is None or not setting.enabled:
        return
    change = cash - previous
    if abs(change) > setting.threshold:
        _raise("balance.cash_change",
               title=bilingual("Cash of {account} changed by {change} CNY", account=account, change=f"{change:,.2f}"),
               detail=bilingual("from {before} to {after} (threshold {threshold})", before=f"{previous:,.2f}",
                                after=f"{cash:,.2f}", threshold=f"{setting.threshold:,.2f}"),
               account=account, event_kind=event.kind, data={"before": str(previous), "after": str(cash)},
               dedup_key=f"balance.cash_change:{account}:{event.at.isoformat()}")


def daily_loss(account_name: str) -> tuple[Decimal, Decimal] | None:
    """The account's P&L today and its loss in percent of the day's capital (start-of-day assets
    plus net deposits), read without writing: risk control's figures (risk/post_trade.py)."""
    from risk.models import RiskCounter
    from risk.post_trade import PostTradeState
    from trading.calendar import trading_day_of
    from trading.models import Account

    account = Account.objects.filter(name=account_name).first()
    if account is None:
        return None
    at = now()
    state = PostTradeState(account, trading_day_of(at), at=at)
    stored = (RiskCounter.objects.filter(account_id=account.pk, trading_day=state.day, key="")
              .values_list("start_assets", flat=True).first())
    base = (stored if stored is not None else state.computed_start_assets()) + state.net_deposits
    if base <= 0:
        return None
    pnl = state.assets - base
    return pnl, (-pnl / base * 100).quantize(Decimal("0.01"))


def pnl_lines(account: str) -> Decimal | None:
    """Raise the warning line's and the stop line's alerts (once a day each) when the day's loss
    reaches them. Returns the loss in percent."""
    figures = daily_loss(account)
    if figures is None:
        return None
    pnl, loss = figures
    day = now().astimezone(SHANGHAI).date().isoformat()
    for code in ("pnl.warning_line", "pnl.stop_line"):
        line = setting_of(code).threshold
        if line is not None and loss >= line:
            _raise(code, account=account,
                   title=bilingual("{account} lost {loss}% today (line {line}%)", account=account, loss=loss, line=line),
                   detail=bilingual("P&L today: {pnl} CNY", pnl=f"{pnl:,.2f}"),
                   data={"pnl": str(pnl), "loss_percent": str(loss), "line": str(line)},
                   dedup_key=f"{code}:{account}:{day}")
    return loss


_pnl_checked: dict[str, float] = {}

UNHEALTHY = {"DOWN", "FAILED", "FAILING", "DEGRADED", "STALE", "ERROR"}


def health(event: DomainEvent) -> None:
    """A HEALTH event (data: part, state, detail): a part that went bad raises ``system.health``
    (one alert per part); the same part healthy again resolves it."""
    part, state = str(event.data.get("part") or "?"), str(event.data.get("state") or "").upper()
    key = f"system.health:{event.account}:{part}"
    if state in UNHEALTHY:
        _raise("system.health", title=bilingual("{part} is {state}", part=part, state=state),
               detail=str(event.data.get("detail") or "")[:1000], account=event.account, event_kind=event.kind,
               data=dict(event.data), dedup_key=key)
    elif Alert.objects.filter(dedup_key=key).exclude(status=AlertStatus.RESOLVED).exists():
        alerts_resolve_key(key, note=f"{part} {state}")


def balance_or_position(event: DomainEvent) -> None:
    """A balance or position change: the cash monitor, and the P&L lines (every 2 s at most per
    account and process: each look values the positions)."""
    if event.kind == EventKind.BALANCE:
        balance(event)
    last = _pnl_checked.get(event.account, 0.0)
    if time.monotonic() - last >= 2.0:
        _pnl_checked[event.account] = time.monotonic()
        pnl_lines(event.account)


_HANDLERS: dict[str, Any] = {EventKind.BROKER_LINK: broker_link, EventKind.ORDER: order, EventKind.RISK: risk,
                             EventKind.BALANCE: balance_or_position, EventKind.POSITION: balance_or_position,
                             EventKind.HEALTH: health, EventKind.CONDITIONAL: conditional}


# ---- heartbeats and periodic checks -----------------------------------------------------


def heartbeat_beat(name: str, detail: str = "") -> None:
    """Record that ``name`` (worker, scheduler) is alive now."""
    Heartbeat.objects.update_or_create(name=name, defaults={"at": now(), "detail": detail[:255]})


def scheduler_heartbeat() -> None:
    """The embedded scheduler's beat (it runs this every 10 s)."""
    import os

    heartbeat_beat("scheduler", f"pid {os.getpid()}")


def expected_heartbeats() -> list[str]:
    """Which processes should beat: the Celery worker (fed by beat) with Redis, the embedded
    scheduler without (settings.MONITORING_HEARTBEATS overrides)."""
    names = getattr(settings, "MONITORING_HEARTBEATS", None)
    if names is not None:
        return list(names)
    return ["worker"] if settings.REDIS_URL else ["scheduler"]


def heartbeats_check(*, include_missing: bool = True) -> list[str]:
    """Raise ``system.heartbeat`` for each expected process whose last beat is too old (or
    missing, unless ``include_missing`` is false), resolve it for those beating again. Returns
    the stale ones."""
    setting = setting_of("system.heartbeat")
    limit = timedelta(seconds=setting.window_seconds or 60)
    at = now()
    beats = dict(Heartbeat.objects.values_list("name", "at"))
    stale = []
    for name in expected_heartbeats():
        key = f"system.heartbeat:{name}"
        last = beats.get(name)
        if last is not None and at - last <= limit:
            if Alert.objects.filter(dedup_key=key).exclude(status=AlertStatus.RESOLVED).exists():
                alerts_resolve_key(key, note="heartbeat back")
            continue
        if last is None and not include_missing:
            continue
        stale.append(name)
        if setting.enabled:
            since = f"{timezone.localtime(last):%Y-%m-%d %H:%M:%S}" if last else "-"
            _raise("system.heartbeat", title=bilingual("No heartbeat from {name} for over {seconds} s", name=name,
                                                       seconds=int(limit.total_seconds())),
                   detail=bilingual("Last heartbeat: {at}", at=since), dedup_key=key, data={"process": name})
    return stale


_heartbeat_checked = [0.0]
_heartbeat_lock = threading.Lock()


def _check_heartbeats_now_and_then() -> None:
    """Processes that publish events (web, relay) also look at the heartbeats, every 30 s at
    most: a worker that stopped beating is noticed while trading goes on even if nothing else
    looks. A process that never beat at all is left to the periodic check (this process may be
    one that runs without it: a test, a shell)."""
    every = float(getattr(settings, "MONITORING_HEARTBEAT_PIGGYBACK_SECONDS", 30))
    if every <= 0:
        return
    with _heartbeat_lock:
        if time.monotonic() - _heartbeat_checked[0] < every:
            return
        _heartbeat_checked[0] = time.monotonic()
    try:
        heartbeats_check(include_missing=False)
    except Exception:
        log.exception("heartbeat check failed")


def outbox_backlog() -> int:
    """Raise ``orders.outbox_backlog`` when too many broker calls stay owed; resolve it when not."""
    from brokers.models import BrokerLink, LinkState
    from orders.models import Order, OrderStatus

    setting = setting_of("orders.outbox_backlog")
    before = timezone.now() - timedelta(seconds=setting.window_seconds or 30)
    down = BrokerLink.objects.filter(state=LinkState.DOWN).values_list("account_id", flat=True)
    owed = (Order.objects.filter(status__in=[OrderStatus.NEW, OrderStatus.CANCEL_REQUESTED], updated_at__lt=before)
            .exclude(status=OrderStatus.NEW, admitted_at__isnull=True).exclude(account_id__in=down).count())
    key = "orders.outbox_backlog"
    if setting.threshold is not None and owed >= setting.threshold:
        _raise(key, title=bilingual("{count} broker calls owed for over {seconds} s", count=owed,
                                    seconds=setting.window_seconds), data={"owed": owed}, dedup_key=key)
    elif Alert.objects.filter(dedup_key=key).exclude(status=AlertStatus.RESOLVED).exists():
        alerts_resolve_key(key, note="backlog cleared")
    return owed


def order_activity() -> None:
    """``orders.rate_spike`` and ``orders.cancel_ratio`` per account over their windows."""
    from django.db.models import Count, Q

    from orders.models import Order, OrderStatus

    spike, ratio = setting_of("orders.rate_spike"), setting_of("orders.cancel_ratio")
    since = timezone.now() - timedelta(seconds=spike.window_seconds or 60)
    if spike.threshold is not None:
        for account, count in (Order.objects.filter(created_at__gte=since).values_list("account__name")
                               .annotate(n=Count("pk")).filter(n__gt=int(spike.threshold))):
            _raise("orders.rate_spike", account=account,
                   title=bilingual("{count} orders of {account} within {seconds} s", count=count, account=account,
                                   seconds=spike.window_seconds), data={"count": count})
    since = timezone.now() - timedelta(seconds=ratio.window_seconds or 300)
    if ratio.threshold is not None:
        rows = (Order.objects.filter(created_at__gte=since).values_list("account__name")
                .annotate(n=Count("pk"), cancelled=Count("pk", filter=Q(status=OrderStatus.CANCELLED))))
        for account, count, cancelled in rows:
            if count >= 20 and Decimal(cancelled) / count > ratio.threshold:
                _raise("orders.cancel_ratio", account=account,
                       title=bilingual("{account} cancelled {cancelled} of {count} orders", account=account,
                                       cancelled=cancelled, count=count),
                       data={"count": count, "cancelled": cancelled})


def abnormal_trading() -> dict[str, int]:
    """The abnormal-trading monitors over today's figures (orders/activity.py, computed once for all
    of them). Each alert is keyed by account (or holder and symbol) and day: a storm of orders
    counts on one alert. Returns how many alerts were raised or counted again, by code."""
    from orders.activity import account_days, stakes_at_least

    today = now().astimezone(SHANGHAI).date()
    raised: Counter[str] = Counter()

    def alert(code: str, account: str, title: str, data: dict[str, Any], key: str = "") -> None:
        if _raise(code, account=account, title=title, data=data,
                  dedup_key=f"{code}:{key or account}:{today.isoformat()}") is not None:
            raised[code] += 1

    second, day, fill = setting_of("orders.hf_second"), setting_of("orders.hf_day"), setting_of("orders.fill_rate")
    self_trade, closing = setting_of("orders.self_trade"), setting_of("orders.closing_window")
    wanted = any(s.enabled and s.threshold is not None for s in (second, day, fill, self_trade, closing))
    for figures in account_days(since=today, until=today) if wanted else []:
        name = figures.account
        if not figures.registered_hf:
            count, line = figures.peak_second_count, figures.line_per_second
            if second.threshold is not None and count >= hf_warn_at(line, second.threshold):
                at = timezone.localtime(figures.peak_second_at, SHANGHAI) if figures.peak_second_at else None
                alert("orders.hf_second", name,
                      bilingual("{account}: {count} orders plus cancels in one second ({at}), {share} of the "
                                "high-frequency line {line}", account=name, count=count, line=line,
                                at=f"{at:%H:%M:%S}" if at else "-", share=f"{Decimal(count) / line:.1%}"),
                      {"count": count, "line": line, "warn_share": str(second.threshold),
                       "second": at.isoformat() if at else ""})
            count, line = figures.order_actions, figures.line_per_day
            if day.threshold is not None and count >= hf_warn_at(line, day.threshold):
                alert("orders.hf_day", name,
                      bilingual("{account}: {count} orders plus cancels today, {share} of the high-frequency line "
                                "{line}", account=name, count=count, line=line, share=f"{Decimal(count) / line:.1%}"),
                      {"count": count, "line": line, "warn_share": str(day.threshold)})
        if (fill.threshold is not None and figures.orders >= (fill.min_count or 1)
                and figures.fill_rate < fill.threshold):
            alert("orders.fill_rate", name, bilingual("{account}: {filled} of {count} orders filled today ({rate})",
                                                      account=name, filled=figures.filled_orders, count=figures.orders,
                                                      rate=f"{figures.fill_rate:.1%}"),
                  {"orders": figures.orders, "filled": figures.filled_orders, "threshold": str(fill.threshold)})
        if self_trade.threshold is not None and figures.self_trade_attempts >= self_trade.threshold:
            alert("orders.self_trade", name, bilingual("{account}: {count} self-trade attempts today", account=name,
                                                       count=figures.self_trade_attempts),
                  {"attempts": figures.self_trade_attempts, "by_action": dict(figures.self_trade)})
        if closing.threshold is not None and figures.closing_orders >= closing.threshold:
            alert("orders.closing_window", name, bilingual("{account}: {count} orders in the closing call auction today",
                                                           account=name, count=figures.closing_orders),
                  {"orders": figures.closing_orders})
    stake = setting_of("positions.stake_line")
    if stake.enabled and stake.threshold is not None:
        for held in stakes_at_least(share=stake.threshold):
            alert("positions.stake_line", "" if held.is_group else held.holder,
                  bilingual("{holder} holds {ratio} of {symbol}'s total shares (alert at {share}, disclosure at 5%)",
                            holder=held.holder, ratio=f"{held.ratio:.2%}", symbol=held.symbol,
                            share=f"{stake.threshold:.1%}"),
                  {"holder": held.holder, "group": held.is_group, "symbol": held.symbol, "quantity": held.quantity,
                   "total_shares": held.total_shares},
                  key=f"{'group:' if held.is_group else ''}{held.holder}:{held.symbol}")
    return dict(raised)


def calendar_horizon() -> int:
    """Days left in the holidays file; ``calendar.horizon`` when fewer than the threshold."""
    from trading.calendar import SHANGHAI, coverage

    last = coverage()[1]
    today = now().astimezone(SHANGHAI).date()
    left = (last - today).days
    setting = setting_of("calendar.horizon")
    key = f"calendar.horizon:{last.isoformat()}"
    if setting.threshold is not None and left <= setting.threshold:
        _raise("calendar.horizon",
               title=bilingual("Trading calendar ends on {last}: {days} days left", last=last.isoformat(), days=left),
               detail=bilingual("After {last} every weekday is treated as a trading day, holidays included. Add the "
                                "exchanges' published holidays: manage.py add_holidays", last=last.isoformat()),
               dedup_key=key, data={"last": last.isoformat(), "days_left": left})
    return left


def pnl_lines_all() -> dict[str, Decimal | None]:
    """The P&L lines of every active account (prices move without any event of ours)."""
    from trading.models import Account

    names = Account.objects.filter(status=Account.Status.ACTIVE).values_list("name", flat=True)
    return {name: pnl_lines(name) for name in names}


def monitors_check() -> dict[str, Any]:
    """Every periodic check once (each one's failure logged, the others still run)."""
    results: dict[str, Any] = {}
    for check in (heartbeats_check, outbox_backlog, order_activity, abnormal_trading, calendar_horizon, pnl_lines_all):
        try:
            with transaction.atomic():
                results[check.__name__] = check()
        except Exception:
            log.exception("monitor %s failed", check.__name__)
    return results
