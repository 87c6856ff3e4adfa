"""Prometheus metrics of the back office, summed over all its processes (docs/metrics.md).

Two kinds of figures:

* Counted where it happens, in whichever process it happens (a web worker, a Celery child, the
  relay, the scheduler): fills, order status changes, risk verdicts, broker link changes (from the
  domain events of trading/events.py, received after commit: the order path imports nothing of
  this), broker call latency (``brokers.signals.broker_called``, sent where brokers/connection.py
  guards every adapter call), alert deliveries (monitoring's delivery engine increments
  :data:`ALERT_DELIVERIES`) and websocket clients (the live-update consumers move
  :data:`WEBSOCKET_CLIENTS`). prometheus_client's multiprocess mode keeps each process's values in
  a file of its own under ``PROMETHEUS_MULTIPROC_DIR``; a scrape adds them up.
* Read at scrape time by :class:`StateCollector` in the process that answers the scrape: orders
  of the trading day by status, broker links, the outbox and the Celery queue. These are states
  that the database (or Redis) holds already, so reading them is exact whichever process changed
  them, survives restarts, and costs the order path nothing: four small queries per scrape.

Why orders by status is a gauge read at scrape and not counters of transitions: a counter per
status would count entries and never exits, so "how many are SUBMITTED now" would be a
difference of counters kept by processes that restart; the grouped query over one trading day
(``order.trading_day`` is indexed) answers it exactly. The transition counter
(``trading_order_transitions_total``) is kept as well, for rates (orders accepted or rejected per
second), where a counter is the right tool.

Names other engineers use: ``ALERT_DELIVERIES.labels(channel=<channel kind>, result=<"sent" |
"failed" | "retry" | "merged">).inc()`` after each delivery attempt, and ``WEBSOCKET_CLIENTS.inc()``
/ ``.dec()`` on connect / disconnect. Both are safe to call in any process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings

# The multiprocess mode is chosen when prometheus_client is first imported: the directory must be
# in the environment before that (children started later, e.g. by run_system, inherit it).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", settings.PROMETHEUS_MULTIPROC_DIR)
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest  # noqa: E402
from prometheus_client import multiprocess as prometheus_multiprocess  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

log = logging.getLogger(__name__)

# Broker calls take from a millisecond (the paper broker) to seconds (a GUI client, a lost answer).
BROKER_CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

ORDER_TRANSITIONS = Counter(
    "trading_order_transitions", "Order status changes, by the status entered (a new order counts as NEW)", ["status"])
FILLS = Counter("trading_fills", "Fills recorded, by side", ["side"])
FILLED_AMOUNT = Counter("trading_filled_amount_yuan", "Traded amount of the fills recorded, in yuan, by side", ["side"])
RISK_VERDICTS = Counter(
    "trading_risk_verdicts",
    "Risk verdicts that held, rejected or warned (and protections that fired), by rule and action", ["rule", "action"])
BROKER_LINK_CHANGES = Counter(
    "trading_broker_link_changes", "Broker links going down or up again, by the state entered", ["state"])
BROKER_CALL_SECONDS = Histogram(
    "trading_broker_call_seconds", "Broker calls made through an adapter, by adapter kind, method and outcome "
    "(ok, refused, timeout, unavailable, error)", ["kind", "method", "outcome"], buckets=BROKER_CALL_BUCKETS)
# Evaluating one quote's conditional orders: tens of microseconds when it reaches nothing, a
# child's order intake when it fires.
CONDITIONS_BUCKETS = (0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
CONDITIONS_EVALUATION_SECONDS = Histogram(
    "trading_conditions_evaluation_seconds", "Evaluating the conditional orders of one quote, by result "
    "(idle: reached no threshold; evaluated: parents asked, none acted; fired: a parent acted)", ["result"],
    buckets=CONDITIONS_BUCKETS)
#: Incremented by monitoring's alert delivery engine after each attempt.
ALERT_DELIVERIES = Counter(
    "trading_alert_deliveries", "Alert deliveries by channel and result (sent, failed, retry, merged)",
    ["channel", "result"])
#: Moved by the live-update websocket consumers (inc on connect, dec on disconnect); summed over the
#: processes alive (a dead process's clients are gone with it).
WEBSOCKET_CLIENTS = Gauge("trading_websocket_clients", "Websocket clients connected", multiprocess_mode="livesum")


# ---------------------------------------------------------------- counted from the domain events


_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *values: Any) -> Any:
    """``metric.labels(*values)``, looked up once per process (labels() validates and locks each time;
    the label values come from small fixed sets: statuses, sides, rules, adapter methods)."""
    key = (metric, *values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*(str(v) if v not in (None, "") else "none" for v in values))
    return child


def _order(data: dict[str, Any]) -> None:
    _child(ORDER_TRANSITIONS, data.get("status")).inc()


def _fill(data: dict[str, Any]) -> None:
    side = data.get("side")
    _child(FILLS, side).inc()
    try:
        _child(FILLED_AMOUNT, side).inc(float(Decimal(str(data.get("amount") or 0))))
    except (InvalidOperation, ValueError):
        pass


def _risk(data: dict[str, Any]) -> None:
    _child(RISK_VERDICTS, data.get("rule"), data.get("action")).inc()


def _broker_link(data: dict[str, Any]) -> None:
    _child(BROKER_LINK_CHANGES, data.get("state")).inc()


_COUNTED = {"order": _order, "fill": _fill, "risk": _risk, "broker_link": _broker_link}


def domain_event_counted(sender: Any, event: Any, **kwargs: Any) -> None:
    """Receiver of ``trading.events.domain_event``: counts it (quick; runs after the commit)."""
    count = _COUNTED.get(event.kind)
    if count is not None:
        count(event.data)


def broker_call_observed(sender: Any, kind: str, method: str, seconds: float, outcome: str, **kwargs: Any) -> None:
    """Receiver of ``brokers.signals.broker_called``."""
    _child(BROKER_CALL_SECONDS, kind, method, outcome).observe(seconds)


def conditions_evaluation_observed(sender: Any, seconds: float, result: str, **kwargs: Any) -> None:
    """Receiver of ``conditions.signals.conditions_evaluated``."""
    _child(CONDITIONS_EVALUATION_SECONDS, result).observe(seconds)


def _celery_child_exited(**kwargs: Any) -> None:
    """A Celery worker child ends: its live gauges stop counting (its counters stay: they count
    what happened). gunicorn's child_exit hook (deploy/gunicorn.conf.py) and run_system's
    supervisor do the same for their children."""
    prometheus_multiprocess.mark_process_dead(os.getpid(), os.environ["PROMETHEUS_MULTIPROC_DIR"])


def connect() -> None:
    """Connect the receivers (monitoring's AppConfig.ready)."""
    from celery.signals import worker_process_shutdown

    from brokers.signals import broker_called
    from conditions.signals import conditions_evaluated
    from trading.events import domain_event

    domain_event.connect(domain_event_counted, dispatch_uid="monitoring.metrics")
    broker_called.connect(broker_call_observed, dispatch_uid="monitoring.metrics")
    conditions_evaluated.connect(conditions_evaluation_observed, dispatch_uid="monitoring.metrics")
    worker_process_shutdown.connect(_celery_child_exited, dispatch_uid="monitoring.metrics", weak=False)


# ---------------------------------------------------------------- read at scrape time


#: The figures read at scrape: name -> (help, labels).
STATE_FAMILIES: dict[str, tuple[str, list[str]]] = {
    "trading_orders_today": ("Orders of the current trading day (Asia/Shanghai) by status", ["status"]),
    "trading_broker_link_up": ("Active accounts' broker links: 1 up, 0 down (BrokerLink)", ["account", "kind"]),
    "trading_outbox_depth": ("Broker calls owed (the order rows are the outbox): submit = NEW orders admitted, "
                             "cancel = CANCEL_REQUESTED", ["call"]),
    "trading_outbox_oldest_seconds": ("Seconds since the oldest owed order last changed", ["call"]),
    "trading_queue_depth": ("Celery tasks waiting in the Redis queue (with REDIS_URL only)", ["queue"]),
}


def _family(name: str) -> GaugeMetricFamily:
    help_text, labels = STATE_FAMILIES[name]
    return GaugeMetricFamily(name, help_text, labels=labels)


class StateCollector(Collector):
    """Figures read from the database and Redis when scraped (see the module docstring). A part
    that cannot be read is left out of the answer (and logged); the rest is still answered."""

    def describe(self) -> list[GaugeMetricFamily]:
        return [_family(name) for name in STATE_FAMILIES]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for part in (self._orders, self._broker_links, self._outbox, self._queue):
            try:
                yield from part()
            except Exception:
                log.exception("metrics: %s could not be read", part.__name__.strip("_"))

    def _orders(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count

        from orders.models import Order, OrderStatus
        from trading.calendar import trading_day_of
        from trading.clock import now

        day = trading_day_of(now())
        counts = dict(Order.objects.filter(trading_day=day).order_by().values_list("status").annotate(n=Count("id")))
        family = _family("trading_orders_today")
        for status in OrderStatus.values:
            family.add_metric([status], counts.get(status, 0))
        yield family

    def _broker_links(self) -> Iterator[GaugeMetricFamily]:
        from brokers.models import LinkState
        from trading.models import Account

        family = _family("trading_broker_link_up")
        rows = Account.objects.filter(status=Account.Status.ACTIVE).values_list("name", "broker_kind", "broker_link__state")
        for name, kind, state in rows.order_by("name"):
            family.add_metric([name, kind], 0 if state == LinkState.DOWN else 1)
        yield family

    def _outbox(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count, Min

        from orders.models import OrderStatus
        from orders.services.outbox import orders_owed
        from trading.clock import now

        rows = {status: (n, oldest) for status, n, oldest in
                orders_owed().order_by().values_list("status").annotate(n=Count("id"), oldest=Min("updated_at"))}
        depth, age = _family("trading_outbox_depth"), _family("trading_outbox_oldest_seconds")
        at = now()
        for call, status in (("submit", OrderStatus.NEW), ("cancel", OrderStatus.CANCEL_REQUESTED)):
            n, oldest = rows.get(status, (0, None))
            depth.add_metric([call], n)
            age.add_metric([call], (at - oldest).total_seconds() if oldest else 0)
        yield depth
        yield age

    def _queue(self) -> Iterator[GaugeMetricFamily]:
        if not settings.REDIS_URL:
            return  # tasks run in-process: there is no queue
        from monitoring.readiness import redis_client
        from trading.celery import app

        queue = app.conf.task_default_queue
        # Celery's Redis transport keeps a queue in a list named after it, and one list per priority
        # step above 0 (name + "\x06\x16" + step) when priorities are used.
        names = [queue, *(f"{queue}\x06\x16{step}" for step in (3, 6, 9))]
        pipe = redis_client().pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
        family = _family("trading_queue_depth")
        family.add_metric([queue], sum(pipe.execute()))
        yield family


def metrics_text() -> tuple[bytes, str]:
    """The scrape: every process's counted figures and the figures read now. (body, content type)"""
    from prometheus_client import CONTENT_TYPE_LATEST

    registry = CollectorRegistry()
    prometheus_multiprocess.MultiProcessCollector(registry)
    registry.register(StateCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
