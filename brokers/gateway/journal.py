"""The gateway's on-disk journal (sqlite3 from the stdlib): submissions by client_ref, order
events with a sequence number, and the nonces seen inside the signing window.

A submission is written (``pending``) and committed *before* the hosted client is called, and its
outcome after, so after a crash or a restart the gateway still knows that a client_ref was sent
and never sends it again: a later submit of it gets the recorded answer, or, when the crash came
between the two writes, "outcome unknown" (the back office reconciles it against the broker's
order list). Writes are synchronous (``synchronous=FULL``) for that reason.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

# A-share trading days are Beijing dates; a fixed offset needs no tz database (absent on Windows).
BEIJING = timezone(timedelta(hours=8))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    client_ref TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'answered')),
    status INTEGER,
    answer TEXT,
    entrust_no TEXT,
    trading_day TEXT NOT NULL,
    created_at REAL NOT NULL,
    answered_at REAL
);
CREATE INDEX IF NOT EXISTS submissions_day ON submissions (trading_day, entrust_no);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    client_ref TEXT,
    entrust_no TEXT,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
"""


@dataclass(frozen=True)
class Submission:
    client_ref: str
    request: dict[str, Any]
    state: str  # pending | answered
    status: int | None  # the HTTP status of the recorded answer
    answer: dict[str, Any] | None
    entrust_no: str | None

    def as_json(self) -> dict[str, Any]:
        return {"client_ref": self.client_ref, "request": self.request, "state": self.state,
                "status": self.status, "answer": self.answer, "entrust_no": self.entrust_no}


def trading_day(at: float) -> str:
    return datetime.fromtimestamp(at, BEIJING).date().isoformat()


class Journal:
    """One sqlite file; safe to share between the server's threads (one connection, one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # nonces -------------------------------------------------------------------------------

    def remember_nonce(self, key_id: str, nonce: str, *, now: float, keep_for: float) -> bool:
        """Record ``nonce``; False when this key already used it (a replay)."""
        with self._lock:
            self._db.execute("DELETE FROM nonces WHERE expires_at < ?", (now,))
            try:
                self._db.execute("INSERT INTO nonces (key_id, nonce, expires_at) VALUES (?, ?, ?)",
                                 (key_id, nonce, now + keep_for))
            except sqlite3.IntegrityError:
                return False
            return True

    # submissions --------------------------------------------------------------------------

    def submission(self, client_ref: str) -> Submission | None:
        with self._lock:
            row = self._db.execute(
                "SELECT client_ref, request, state, status, answer, entrust_no FROM submissions WHERE client_ref = ?",
                (client_ref,),
            ).fetchone()
        if row is None:
            return None
        return Submission(row[0], json.loads(row[1]), row[2], row[3], json.loads(row[4]) if row[4] else None, row[5])

    def begin(self, client_ref: str, request: dict[str, Any], *, now: float) -> Submission | None:
        """Record ``client_ref`` as sent (pending), unless it was already: then the earlier
        submission, and nothing is written."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO submissions (client_ref, request, state, trading_day, created_at)"
                    " VALUES (?, ?, 'pending', ?, ?)",
                    (client_ref, json.dumps(request, sort_keys=True), trading_day(now), now),
                )
                self._event("submitted", client_ref, None, request, now)
                self._db.execute("COMMIT")
                return None
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
        found = self.submission(client_ref)
        assert found is not None  # submissions are never deleted
        return found

    def answer(self, client_ref: str, status: int, answer: dict[str, Any], entrust_no: str | None,
               *, kind: str, now: float) -> None:
        """Record the outcome of a pending submission and its event."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE submissions SET state = 'answered', status = ?, answer = ?, entrust_no = COALESCE(?, entrust_no),"
                " answered_at = ?"
                " WHERE client_ref = ?",
                (status, json.dumps(answer, sort_keys=True, default=str), entrust_no, now, client_ref),
            )
            self._event(kind, client_ref, entrust_no, answer, now)
            self._db.execute("COMMIT")

    def bind(self, client_ref: str, entrust_no: str, *, now: float) -> str:
        """Record that today's submission ``client_ref``, answered without an entrust number, is
        the broker's order ``entrust_no`` (found by the back office). Returns "" when done, else
        why not: no such submission, already bound (to another number), or the number taken."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT entrust_no, trading_day FROM submissions WHERE client_ref = ?",
                                       (client_ref,)).fetchone()
                day = trading_day(now)
                if row is None or row[1] != day:
                    return "no submission with this client_ref today"
                if row[0] is not None:
                    return "" if row[0] == entrust_no else f"already bound to {row[0]}"
                taken = self._db.execute("SELECT client_ref FROM submissions WHERE trading_day = ? AND entrust_no = ?",
                                         (day, entrust_no)).fetchone()
                if taken is not None:
                    return f"entrust_no already bound to {taken[0]}"
                self._db.execute("UPDATE submissions SET entrust_no = ? WHERE client_ref = ?", (entrust_no, client_ref))
                self._event("bound", client_ref, entrust_no, {}, now)
                return ""
            finally:
                self._db.execute("COMMIT")

    def unbound(self, *, now: float) -> list[dict[str, Any]]:
        """Today's submissions with no entrust number that may have reached the broker: in flight,
        answered without a number, or failed other than by the client's refusal (TradeError)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT client_ref, request, state, answer FROM submissions"
                " WHERE trading_day = ? AND entrust_no IS NULL ORDER BY created_at",
                (trading_day(now),),
            ).fetchall()
        found = []
        for client_ref, request, state, answer in rows:
            error = (json.loads(answer) if answer else {}).get("error") or {}
            if error.get("type") != "TradeError":
                found.append({"client_ref": client_ref, "request": json.loads(request), "state": state})
        return found

    def client_refs(self, *, now: float) -> dict[str, str]:
        """Today's entrust numbers (as text) and the client_ref each was submitted under. Entrust
        numbers restart every day at some brokers, so only today's count."""
        with self._lock:
            rows = self._db.execute(
                "SELECT entrust_no, client_ref FROM submissions WHERE trading_day = ? AND entrust_no IS NOT NULL",
                (trading_day(now),),
            ).fetchall()
        return {entrust_no: client_ref for entrust_no, client_ref in rows}

    def prune(self, *, before: float) -> int:
        """Forget submissions and events older than ``before`` (a client_ref is never reused, so
        weeks of journal keep resubmissions safe); the number of submissions forgotten."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            gone = self._db.execute("DELETE FROM submissions WHERE created_at < ?", (before,)).rowcount
            self._db.execute("DELETE FROM events WHERE at < ?", (before,))
            self._db.execute("COMMIT")
        return int(gone)

    # events -------------------------------------------------------------------------------

    def record(self, kind: str, *, client_ref: str | None = None, entrust_no: str | None = None,
               data: dict[str, Any] | None = None, now: float) -> None:
        with self._lock:
            self._event(kind, client_ref, entrust_no, data or {}, now)

    def _event(self, kind: str, client_ref: str | None, entrust_no: str | None, data: dict[str, Any],
               now: float) -> None:
        self._db.execute("INSERT INTO events (at, kind, client_ref, entrust_no, data) VALUES (?, ?, ?, ?, ?)",
                         (now, kind, client_ref, entrust_no, json.dumps(data, sort_keys=True, default=str)))

    def events(self, since: int, limit: int = 500) -> list[dict[str, Any]]:
        """The events after sequence number ``since``, oldest first, at most ``limit``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, at, kind, client_ref, entrust_no, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (since, limit),
            ).fetchall()
        return [
            {"seq": seq, "at": datetime.fromtimestamp(at, UTC).isoformat(), "kind": kind, "client_ref": client_ref,
             "entrust_no": entrust_no, "data": json.loads(data)}
            for seq, at, kind, client_ref, entrust_no, data in rows
        ]


def wall_clock() -> float:
    return time.time()
