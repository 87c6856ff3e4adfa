"""Start the whole system in the foreground: web server, workers, simulated market."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server (ASGI), the task workers and the simulated market until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-market", action="store_true", help="do not start the simulated market")

    def handle(self, *args, **options):
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        host, port = options["host"], options["port"]
        commands = {
            "web": [python, "-m", "daphne", "-b", host, "-p", str(port), "trading.asgi:application"],
        }
        if settings.REDIS_URL:
            celery = [python, "-m", "celery", "-A", "trading"]
            commands["worker"] = [*celery, "worker", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--concurrency", "2", "--loglevel", "INFO"]
            commands["beat"] = [*celery, "beat", "--loglevel", "INFO", "--schedule", str(Path(settings.BASE_DIR) / "var" / "celerybeat-schedule")]
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
        processes = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR) for name, cmd in commands.items()}
        key_file = Path(settings.BASE_DIR) / "var" / "demo_api_key.txt"
        key = key_file.read_text().strip() if key_file.exists() else "<your key>"
        base = f"http://{host}:{port}"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"交易后台已启动 / the back office is running ({mode})",
                    f"  admin:     {base}/admin/   (user admin, password above or in var/demo_credentials.txt)",
                    f"  API docs:  {base}/api/v1/docs",
                    f"  OpenAPI:   {base}/api/v1/openapi.json",
                    f"  health:    {base}/healthz",
                    "  first order:",
                    f"    curl -s -X POST {base}/api/v1/orders -H 'Authorization: Bearer {key}' \\",
                    "      -H 'Content-Type: application/json' \\",
                    '      -d \'{"account":"demo","symbol":"600000.SH","side":"BUY","order_type":"LIMIT","price":"10.10","quantity":1000}\'',
                    f"  processes: {', '.join(f'{n} (pid {p.pid})' for n, p in processes.items())}",
                    "  Ctrl-C stops everything.",
                    "",
                ]
            )
        )
        self.stdout.flush()
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with {process.returncode}; stopping the others")
                        stopping = True
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for process in processes.values():
                try:
                    process.wait(max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
