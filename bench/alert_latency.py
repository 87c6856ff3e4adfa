"""Alert latency: from the triggering event to the message at a local SMTP server and a local
DingTalk robot, on PostgreSQL and Redis with real Celery workers.

Two kinds of events, one after the other (each waits for its deliveries before the next):

* a broker disconnect: the scripted broker's session drops and a broker call through the
  account's circuit breaker (brokers/connection.py) notices it, as in production; the clock
  starts before that call;
* a risk rejection: a RISK event (action REJECT) published in a committing transaction, as the
  risk path publishes it; the clock starts before the transaction.

Then: the monitor raises the alert in the publishing process after commit, owes one delivery
per channel, and enqueues the flush on Redis; a Celery worker (a separate process, started
here) sends the email and the signed DingTalk message; the clock stops when each sink has it.
After each event the alert is resolved (as an operator would), so the next one is a new alert.

Prints p50/p99 per sink and for both, against the target p99 < 1 s.

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/h_alerts_bench,
recreated), BENCH_REDIS_URL (redis://127.0.0.1:6379/11), BENCH_EVENTS (1000 of each kind),
BENCH_SMTP_PORT (8832), BENCH_WORKER_CONCURRENCY (2).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/h_alerts_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000"))
SMTP_PORT = int(os.environ.get("BENCH_SMTP_PORT", "8832"))
CONCURRENCY = os.environ.get("BENCH_WORKER_CONCURRENCY", "2")
QUEUE = "bench-alerts"
TARGET_P99 = 1.0


def env() -> dict[str, str]:
    values = dict(os.environ)
    values.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, CELERY_QUEUE=QUEUE, LOG_LEVEL="WARNING",
                  DJANGO_SETTINGS_MODULE="trading.settings", DJANGO_DEBUG="0")
    return values


def recreate_database() -> None:
    from bench.system import recreate_postgres

    recreate_postgres(DATABASE_URL)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env(), check=True,
                   capture_output=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(name: str, values: list[float]) -> bool:
    p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
    ok = p99 < TARGET_P99
    print(f"  {name:<34} n={len(values):>5}  p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
          f"max {max(values) * 1000:7.1f} ms  mean {statistics.mean(values) * 1000:7.1f} ms  "
          f"target p99 < {TARGET_P99 * 1000:.0f} ms: {'met' if ok else 'MISSED'}")
    return ok


def main() -> int:
    import redis

    redis.Redis.from_url(REDIS_URL).delete(QUEUE)
    recreate_database()
    os.environ.update(env())
    import django

    django.setup()
    from django.db import transaction

    from brokers.adapters.scripted import ScriptedBroker
    from brokers.connection import breakers_forget
    from brokers.registry import broker_for
    from monitoring.alerts import alerts_resolve_key
    from monitoring.models import Channel, RoutingRule
    from tests import factories
    from tests.monitoring.sinks import SmtpSink, WebhookSink
    from trading.errors import BrokerUnavailable
    from trading.events import EventKind, publish

    account = factories.account("bench", broker_kind=ScriptedBroker.kind)
    script = ScriptedBroker.open_account("bench", account.cash)
    with SmtpSink(SMTP_PORT) as smtp, WebhookSink() as webhooks:
        webhooks.dingtalk.per_minute = 10**9  # the engine's latency, not the robot's quota (tests cover that)
        mail = Channel.objects.create(name="mail", kind="email", options={
            "host": "127.0.0.1", "port": SMTP_PORT, "from": "alerts@example.com", "to": "desk@example.com"})
        ding = Channel.objects.create(name="ding", kind="dingtalk", rate_per_minute=10**6, secrets={
            "webhook": f"{webhooks.url}/dingtalk?access_token={webhooks.dingtalk.key}",
            "secret": webhooks.dingtalk.secret})
        rule = RoutingRule.objects.create(name="bench", min_level="WARNING", renotify_seconds=0)
        rule.channels.set([mail, ding])

        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "trading", "worker", "-Q", QUEUE, "--concurrency", CONCURRENCY,
             "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env(), start_new_session=True)
        try:
            results: dict[str, dict[str, list[float]]] = {}

            def measure(kind: str, trigger, resolve) -> None:
                times: dict[str, list[float]] = {"email (SMTP)": [], "DingTalk robot (HTTP)": [], "both": []}
                for n in range(EVENTS):
                    mails, hooks = len(smtp.mails), len(webhooks.of("/dingtalk"))
                    started = time.monotonic()
                    trigger(n)
                    mail_at = smtp.wait(mails + 1, timeout=30)[mails].at
                    hook_at = webhooks.wait("/dingtalk", hooks + 1, timeout=30)[hooks].at
                    times["email (SMTP)"].append(mail_at - started)
                    times["DingTalk robot (HTTP)"].append(hook_at - started)
                    times["both"].append(max(mail_at, hook_at) - started)
                    resolve(n)
                results[kind] = times

            def disconnect(n: int) -> None:
                script.connected = False
                try:
                    broker_for(account).query_orders()
                except BrokerUnavailable:
                    pass

            def reconnect(n: int) -> None:
                script.connected = True
                breakers_forget()  # the link presumed up again, without a reconnection alert
                alerts_resolve_key("broker.link:bench")

            def risk_rejection(n: int) -> None:
                with transaction.atomic():
                    publish(EventKind.RISK, "bench", {"rule": "max_order_amount", "action": "REJECT", "order": n,
                                                      "message": "单笔委托金额超过上限"})

            def risk_resolve(n: int) -> None:
                alerts_resolve_key("risk.rejected:bench:max_order_amount")

            # warm-up: the worker's first task (imports, connections) is not a figure
            disconnect(-1)
            smtp.wait(1, timeout=60)
            webhooks.wait("/dingtalk", 1, timeout=60)
            reconnect(-1)
            measure("broker disconnect", disconnect, reconnect)
            measure("risk rejection", risk_rejection, risk_resolve)
        finally:
            worker.send_signal(signal.SIGTERM)  # warm shutdown: the worker finishes its task and stops
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)

    refused = [r for r in webhooks.requests if r.answer.get("errcode")]
    print(f"alert latency, event -> delivered at the sink ({EVENTS} events of each kind, one at a time; "
          f"PostgreSQL {DATABASE_URL.rsplit('/', 1)[1]}, Redis, Celery worker --concurrency {CONCURRENCY})")
    ok = True
    for kind, times in results.items():
        print(f"{kind}:")
        for sink, values in times.items():
            ok = report(sink, values) and ok
    print(f"DingTalk answers refused: {len(refused)} (signature checked on every message)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
