"""Start the whole system in the foreground: web server, workers, simulated market, supervised."""

import os
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone
from prometheus_client.multiprocess import mark_process_dead

from trading.clock import now
from trading.management.commands.demo_setup import demo_files_dir
from trading.market_rules import load_reference_instruments, round_to_tick, tick_size
from trading.models import Quote
from trading.supervisor import Supervisor

FIRST_ORDER_SYMBOL = "600000.SH"


def first_order_price(symbol: str = FIRST_ORDER_SYMBOL, *, since: datetime | None = None, wait: float = 0.0) -> Decimal | None:
    """The current ask of ``symbol`` (a buy there fills at once and sits well inside the price cage),
    waiting up to ``wait`` seconds for a quote newer than ``since``; else its reference previous close,
    where the simulated market starts. None if neither is known."""
    code, _, exchange = symbol.partition(".")
    deadline = time.monotonic() + wait
    while True:
        quote = Quote.objects.select_related("instrument").filter(instrument__code=code, instrument__exchange=exchange).first()
        fresh = quote is not None and quote.ask and (since is None or quote.updated_at >= since)
        if fresh or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if quote is not None and quote.ask:
        return round_to_tick(quote.ask, tick_size(quote.instrument.board))  # "10.05", not the column's "10.0500"
    ref = next((r for r in load_reference_instruments() if r.symbol == symbol), None)
    if ref is None or not ref.prev_close:
        return None
    return round_to_tick(ref.prev_close, tick_size(ref.board))


def metrics_dir_reset(path: str) -> int:
    """Empty the metrics directory of a system about to start (prometheus_client's multiprocess
    files): the files of an earlier run's processes would add to this run's figures. Returns how
    many files were removed; other files are left alone."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    removed = 0
    for file in directory.glob("*.db"):
        if file.name.split("_", 1)[0] in ("counter", "gauge", "histogram", "summary"):
            file.unlink(missing_ok=True)
            removed += 1
    return removed


class Command(BaseCommand):
    help = ("Run the web server (ASGI), the task workers and the simulated market until Ctrl-C; "
            "a process that exits is restarted with back-off while the others keep running.")

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-market", action="store_true", help="do not start the simulated market")

    def handle(self, *args, **options):
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        host, port = options["host"], options["port"]
        if settings.WEB_SERVER == "daphne":
            web = [python, "-m", "daphne", "-b", host, "-p", str(port), "trading.asgi:application"]
        else:
            web = [python, "-m", "gunicorn", "--workers", str(settings.WEB_WORKERS), "--bind", f"{host}:{port}",
                   "--config", str(Path(settings.BASE_DIR) / "deploy" / "gunicorn.conf.py"),
                   "--timeout", "60", "--graceful-timeout", "10", "trading.wsgi:application"]
        commands = {"web": web}
        live_port = 0
        if settings.WEB_SERVER != "daphne" and settings.REDIS_URL:
            # The live pages' websockets (/ws/live/) on the next port: gunicorn speaks no websocket.
            # Every process learns the port (settings.LIVE_WEBSOCKET_PORT) before it starts. Only
            # with Redis: the in-memory channel layer cannot carry events between processes (the
            # embedded system's pages poll the snapshot instead, monitoring/static/monitoring/live.js).
            live_port = port + 1
            os.environ["LIVE_WEBSOCKET_PORT"] = str(live_port)
            commands["websockets"] = [python, "-m", "daphne", "-b", host, "-p", str(live_port), "trading.asgi:application"]
        if settings.REDIS_URL:
            celery = [python, "-m", "celery", "-A", "trading"]
            commands["worker"] = [*celery, "worker", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--concurrency", "2", "--loglevel", "INFO"]
            commands["beat"] = [*celery, "beat", "--loglevel", "INFO", "--schedule", str(Path(settings.BASE_DIR) / "var" / "celerybeat-schedule")]
            commands["live"] = [python, manage, "run_live_relay"]  # live updates to the websockets (monitoring)
            mode = "PostgreSQL + Celery on Redis + Channels on Redis" if settings.DATABASE_URL else "Celery on Redis"
        else:
            commands["scheduler"] = [python, manage, "run_scheduler"]
            mode = "embedded: SQLite, in-process tasks, in-memory channel layer"
        if settings.ORDERS_DISPATCH == "relay":
            # Without Redis the relay runs the broker calls itself (in-process tasks): off the
            # web process, on another core (ORDERS_DISPATCH=relay, see README "Benchmarks").
            commands["relay"] = [python, manage, "run_outbox_relay"]
        if not options["no_market"]:
            commands["market"] = [python, manage, "simulate_market", "--interval", "1"]

        def say(message: str) -> None:
            self.stderr.write(f"{timezone.localtime():%H:%M:%S} run_system: {message}")
            self.stderr.flush()

        # Metrics (monitoring/metrics.py): the children inherit the directory; an earlier run's counters
        # must not add to this run's; a child that exits stops counting in the live gauges.
        metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", settings.PROMETHEUS_MULTIPROC_DIR)
        metrics_dir_reset(metrics_dir)
        supervisor = Supervisor(commands, cwd=settings.BASE_DIR, say=say,
                                on_exit=lambda pid: mark_process_dead(pid, metrics_dir))
        started = now()
        supervisor.catch_signals()
        supervisor.start()
        key_file = demo_files_dir() / "demo_api_key.txt"
        key = key_file.read_text().strip() if key_file.exists() else "<your key>"
        base = f"http://{host}:{port}"
        # The first order is priced at the current ask: a fixed price would soon be outside the price cage.
        try:
            price = first_order_price(since=started, wait=0 if options["no_market"] else 5)
        except Exception:
            supervisor.stop()
            raise
        order = (f'{{"account":"demo","symbol":"{FIRST_ORDER_SYMBOL}","side":"BUY","order_type":"LIMIT",'
                 f'"price":"{price}","quantity":1000}}')
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"交易后台已启动 / the back office is running ({mode})",
                    f"  admin:     {base}/admin/   (user admin, password above or in var/demo_credentials.txt)",
                    f"  API docs:  {base}/api/v1/docs",
                    f"  OpenAPI:   {base}/api/v1/openapi.json",
                    *([f"  live:      ws://{host}:{live_port}/ws/live/   (the dashboard and the order desk connect there)"]
                      if live_port else []),
                    f"  health:    {base}/healthz   ready: {base}/readyz   metrics: {base}/metrics (staff or METRICS_TOKEN)",
                    f"  first order (a buy at the current ask of {FIRST_ORDER_SYMBOL}, {price}):",
                    f"    curl -s -X POST {base}/api/v1/orders -H 'Authorization: Bearer {key}' \\",
                    "      -H 'Content-Type: application/json' \\",
                    f"      -d '{order}'",
                    f"  processes: {', '.join(f'{n} (pid {p})' for n, p in supervisor.pids().items())}",
                    "  a process that exits is restarted (1 s, 2 s, 4 s ... 30 s apart); Ctrl-C stops everything.",
                    "",
                ]
            )
        )
        self.stdout.flush()
        supervisor.run()
        say("stopped")
