"""Keep a set of child processes running: what ``run_system`` starts (web, workers, market).

A child that exits while the system runs is restarted after a back-off that
doubles with each crash in a row (1 s, 2 s, 4 s ... up to ``max_backoff``) and
starts again from the first step once the child has run for ``stable_after``
seconds; the other children keep running. SIGTERM / SIGINT (Ctrl-C) stop every
child: SIGTERM first, SIGKILL after ``stop_timeout`` seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("trading.supervisor")


@dataclass
class Child:
    name: str
    command: Sequence[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    crashes: int = 0  # crashes in a row, without a stable run in between
    restart_at: float | None = None
    restarts: int = 0
    pids: list[int] = field(default_factory=list)


class Supervisor:
    """Start ``commands`` (name -> argv) and keep them running until :meth:`stop` or a signal.
    Children get ``env`` (default: this process's environment)."""

    def __init__(
        self,
        commands: Mapping[str, Sequence[str]],
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        first_backoff: float = 1.0,
        max_backoff: float = 30.0,
        stable_after: float = 60.0,
        stop_timeout: float = 10.0,
        poll_interval: float = 0.2,
        say: Callable[[str], None] | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self.children = {name: Child(name, list(command)) for name, command in commands.items()}
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.stable_after = stable_after
        self.stop_timeout = stop_timeout
        self.poll_interval = poll_interval
        self.say = say or log.warning
        self.on_exit = on_exit  # told the pid of each child that exited (run_system: its metrics)
        self.stopping = False
        self._previous_handlers: dict[int, Any] = {}

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(child.command, cwd=self.cwd, env=self.env)
        child.started_at = time.monotonic()
        child.restart_at = None
        child.pids.append(child.process.pid)

    def start(self) -> None:
        for child in self.children.values():
            self._spawn(child)

    def pids(self) -> dict[str, int | None]:
        return {name: (c.process.pid if c.process and c.process.poll() is None else None) for name, c in self.children.items()}

    def backoff(self, crashes: int) -> float:
        """Seconds to wait before restarting a child that crashed ``crashes`` times in a row (>= 1)."""
        return min(self.first_backoff * 2 ** (crashes - 1), self.max_backoff)

    def check(self) -> None:
        """One round: notice children that exited and restart those whose back-off is over."""
        now = time.monotonic()
        for child in self.children.values():
            if child.restart_at is not None:
                if now >= child.restart_at and not self.stopping:
                    self._spawn(child)
                    child.restarts += 1
                    self.say(f"{child.name} restarted (pid {child.process.pid if child.process else '?'})")
                continue
            if child.process is None or child.process.poll() is None:
                continue
            if self.on_exit is not None:
                try:
                    self.on_exit(child.process.pid)
                except Exception:
                    log.exception("on_exit of %s (pid %s) failed", child.name, child.process.pid)
            if now - child.started_at >= self.stable_after:
                child.crashes = 0
            child.crashes += 1
            delay = self.backoff(child.crashes)
            child.restart_at = now + delay
            self.say(
                f"{child.name} (pid {child.process.pid}) exited with {child.process.returncode}; "
                f"restarting in {delay:g}s (crash {child.crashes} in a row); the others keep running"
            )

    def catch_signals(self) -> None:
        """From now on SIGTERM and SIGINT make :meth:`run` stop every child. Call from the main thread,
        before :meth:`start`, so a signal that arrives while starting is not lost."""
        if self._previous_handlers:
            return

        def on_signal(*_: object) -> None:
            self.stopping = True

        self._previous_handlers = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    def run(self) -> None:
        """Supervise until SIGTERM or SIGINT, then stop every child. Call from the main thread."""
        self.catch_signals()
        try:
            while not self.stopping:
                self.check()
                time.sleep(self.poll_interval)
        finally:
            self.stop()
            for sig, handler in self._previous_handlers.items():
                signal.signal(sig, handler)
            self._previous_handlers = {}

    def stop(self) -> None:
        """SIGTERM every running child, then SIGKILL what is still running after ``stop_timeout``."""
        self.stopping = True
        running = [c.process for c in self.children.values() if c.process is not None and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for process in running:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
