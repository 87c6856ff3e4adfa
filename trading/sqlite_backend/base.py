"""SQLite for the embedded mode, with writers queued in the kernel instead of polling.

Several processes share the database file (web workers, scheduler, relay, market), and every
write transaction starts with ``BEGIN IMMEDIATE``. A writer that meets SQLite's lock polls it
through the busy handler, sleeping 1, 2, 5, 10, 15 ... ms between tries, so under load most of an
order's time went to sleeping while the lock was free. Here each transaction first takes an
exclusive ``flock`` on a file beside the database (``<name>.writelock``): waiters sleep in the
kernel and wake the moment the holder commits or rolls back, and SQLite's own lock is then
uncontended. Reads take nothing (WAL). In-memory databases (the tests) need no lock.
"""

from __future__ import annotations

import fcntl
import os
from typing import Any

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    _write_lock_fd: int | None = None
    _write_lock_held = False

    def _write_lock_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        if self.is_in_memory_db() or not name:
            return None
        return f"{name}.writelock"

    def _write_lock_acquire(self) -> None:
        path = self._write_lock_path()
        if path is None or self._write_lock_held:
            return
        if self._write_lock_fd is None:
            self._write_lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._write_lock_fd, fcntl.LOCK_EX)
        self._write_lock_held = True

    def _write_lock_release(self) -> None:
        if self._write_lock_held and self._write_lock_fd is not None:
            fcntl.flock(self._write_lock_fd, fcntl.LOCK_UN)
        self._write_lock_held = False

    def _start_transaction_under_autocommit(self) -> None:
        self._write_lock_acquire()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # a private hook of Django's backend, absent from django-stubs
        except BaseException:
            self._write_lock_release()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()  # type: ignore[misc]  # a private hook of Django's backend, absent from django-stubs
        finally:
            self._write_lock_release()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()  # type: ignore[misc]  # a private hook of Django's backend, absent from django-stubs
        finally:
            self._write_lock_release()

    def _close(self) -> Any:
        try:
            return super()._close()  # type: ignore[misc]  # a private hook of Django's backend, absent from django-stubs
        finally:
            self._write_lock_release()
            if self._write_lock_fd is not None:
                os.close(self._write_lock_fd)
                self._write_lock_fd = None
