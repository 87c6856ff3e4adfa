"""run_system's supervisor: a crashed process is restarted with back-off, the others keep running."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from trading.supervisor import Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) still answers kill(0); read its state.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_killed_child_is_restarted_and_the_others_keep_running() -> None:
    messages: list[str] = []
    supervisor = Supervisor({"worker": SLEEPER, "web": SLEEPER}, first_backoff=0.2, poll_interval=0.05, say=messages.append)
    supervisor.start()
    try:
        first_worker = supervisor.children["worker"].process.pid
        web = supervisor.children["web"].process.pid
        os.kill(first_worker, signal.SIGKILL)
        for _ in range(100):
            supervisor.check()
            pid = supervisor.pids()["worker"]
            if pid not in (None, first_worker):
                break
            time.sleep(0.05)
        assert supervisor.pids()["worker"] not in (None, first_worker)
        assert supervisor.pids()["web"] == web and _alive(web)
        assert supervisor.children["worker"].restarts == 1
        assert any("worker" in m and "exited with -9" in m and "restarting in 0.2s" in m for m in messages), messages
        assert any("worker restarted" in m for m in messages), messages
    finally:
        supervisor.stop()
    assert not any(_alive(pid) for child in supervisor.children.values() for pid in child.pids)


def test_back_off_doubles_with_crashes_in_a_row_up_to_a_cap() -> None:
    supervisor = Supervisor({}, first_backoff=1.0, max_backoff=30.0)
    assert [supervisor.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_child_that_keeps_crashing_waits_longer_each_time() -> None:
    messages: list[str] = []
    crasher = [sys.executable, "-c", "raise SystemExit(3)"]
    supervisor = Supervisor({"market": crasher}, first_backoff=0.1, max_backoff=0.4, poll_interval=0.02, say=messages.append)
    supervisor.start()
    try:
        assert _wait_for(lambda: (supervisor.check(), supervisor.children["market"].restarts >= 3)[1])
    finally:
        supervisor.stop()
    delays = [m.split("restarting in ")[1].split("s ")[0] for m in messages if "restarting in" in m]
    assert delays[:4] == ["0.1", "0.2", "0.4", "0.4"][: len(delays[:4])]
    assert all("exited with 3" in m for m in messages if "restarting in" in m)


def test_sigterm_stops_every_child() -> None:
    supervisor = Supervisor({"a": SLEEPER, "b": SLEEPER}, poll_interval=0.05, say=lambda _: None)
    supervisor.catch_signals()
    supervisor.start()
    pids = [c.process.pid for c in supervisor.children.values()]
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.monotonic()
    supervisor.run()  # returns once SIGTERM arrived and the children stopped
    assert time.monotonic() - started < 10
    assert not any(_alive(pid) for pid in pids)
    assert signal.getsignal(signal.SIGTERM) is not None



def test_a_child_that_exits_is_reported_once_so_that_its_live_metrics_stop_counting(tmp_path) -> None:
    from prometheus_client.multiprocess import mark_process_dead

    from trading.management.commands.run_system import metrics_dir_reset

    exited: list[int] = []

    def on_exit(pid: int) -> None:
        exited.append(pid)
        mark_process_dead(pid, str(tmp_path))

    supervisor = Supervisor({"web": SLEEPER}, first_backoff=30, poll_interval=0.05, say=lambda m: None, on_exit=on_exit)
    supervisor.start()
    try:
        pid = supervisor.children["web"].process.pid
        live = tmp_path / f"gauge_livesum_{pid}.db"
        live.write_bytes(b"")  # what a websocket gauge of that process leaves
        counter = tmp_path / f"counter_{pid}.db"
        counter.write_bytes(b"")
        os.kill(pid, signal.SIGKILL)
        assert _wait_for(lambda: (supervisor.check(), exited)[1] == [pid])
        supervisor.check()
        assert exited == [pid]  # once, not at every round of the back-off
        assert not live.exists() and counter.exists()  # its counters still count what happened
    finally:
        supervisor.stop()
    (tmp_path / "notes.txt").write_text("kept")
    assert metrics_dir_reset(str(tmp_path)) == 1  # run_system's start: the counters of an earlier run go
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
