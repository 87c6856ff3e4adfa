"""The embedded SQLite backend queues writers on a file lock instead of SQLite's busy polling."""

from __future__ import annotations

import threading

from django.db.utils import ConnectionHandler


def test_a_second_writer_waits_for_the_first_and_then_succeeds(tmp_path, django_db_blocker) -> None:
    """With SQLite's own busy timeout at 0 a second writer would fail at once ("database is
    locked"); queued on the file lock it waits for the first to commit, then writes."""
    with django_db_blocker.unblock():
        two_writers(tmp_path, "trading.sqlite_backend")  # with "django.db.backends.sqlite3" it fails


def two_writers(tmp_path, engine: str) -> None:
    config = {"ENGINE": engine, "NAME": str(tmp_path / "db.sqlite3"),
              "OPTIONS": {"timeout": 0, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}}
    handler = ConnectionHandler({"default": dict(config), "first": dict(config), "second": dict(config)})
    first = handler["first"]
    first.cursor().execute("CREATE TABLE t (x integer)")
    first._start_transaction_under_autocommit()
    first.cursor().execute("INSERT INTO t VALUES (1)")

    done = threading.Event()
    outcome: list[object] = []

    def second_writer() -> None:
        second = handler["second"]  # this thread's own connection
        try:
            second.ensure_connection()
            second._start_transaction_under_autocommit()
            second.cursor().execute("INSERT INTO t VALUES (2)")
            second.commit()
            outcome.append("written")
        except Exception as exc:  # noqa: BLE001 - asserted below
            outcome.append(exc)
        finally:
            second.close()
            done.set()

    thread = threading.Thread(target=second_writer)
    thread.start()
    assert not done.wait(0.3), outcome  # queued behind the first writer, not failed
    first.commit()
    assert done.wait(10)
    thread.join(10)
    assert outcome == ["written"]
    rows = first.cursor().execute("SELECT x FROM t ORDER BY x").fetchall()
    first.close()
    assert [r[0] for r in rows] == [1, 2]
    assert (tmp_path / "db.sqlite3.writelock").exists()
