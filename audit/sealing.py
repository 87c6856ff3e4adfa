"""The audit chain: committed events sealed with a keyed hash, in order, by one sealer.

Why asynchronous. Chaining each event to the one before it as it is written would put every
transaction that writes an event (every order of every account) behind one lock on the chain's
head. Instead the order path only inserts its events, as before, and a sealer job
(:func:`audit_seal`, every ``AUDIT_SEAL_SECONDS`` from Celery beat or the embedded scheduler, and
``manage.py seal_audit``) seals what has committed since its last pass: one :class:`AuditSeal`
row lists each new event's id with its HMAC and is chained to the previous seal by
``HMAC(seq | previous chain | SHA-256 of the entries)``. The key (``AUDIT_HMAC_KEY``) comes from
the environment, never the database, so write access to the database alone cannot rebuild the
chain after changing a row. Intake pays nothing for it.

Order and late commits. The sealer takes events in id order, up to the first that is younger
than ``AUDIT_SEAL_LAG_SECONDS`` (its transaction may have neighbours still open). An id it finds
missing below the highest it seals is recorded as a gap (:class:`AuditGap`): a transaction still
open, whose event is sealed late (in a later seal) when it commits, or one rolled back, whose gap
closes after ``AUDIT_GAP_SECONDS``. An event that appears in a closed gap, or anywhere below the
sealed head without a seal, was inserted afterwards: ``verify_audit`` names it.

What it shows (``manage.py verify_audit``, :func:`audit_verify`): walking the seals in order, the
first seal whose chain does not follow (a seal changed, removed or reordered), the first event
whose content no longer matches its HMAC (changed, or two rows' contents swapped), whose sealed
id is gone (deleted), or that no seal covers (inserted). It resumes from its last checkpoint
(:class:`AuditCheckpoint`) unless asked for a full walk, and compares the chain with the daily
digests exported outside the database (:func:`audit_digest_export`), so even a rebuilt chain
(someone with the key) is caught against what was sent out.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from audit.models import AuditCheckpoint, AuditEvent, AuditGap, AuditSeal

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_cursor_numbers = itertools.count(1)
# The event columns an HMAC covers, in this order (the id included: a row moved to another id fails).
SEALED_FIELDS = ("id", "occurred_at", "actor_type", "actor", "action", "object_type", "object_id", "account",
                 "before", "after", "reason")


def _key() -> bytes:
    configured = getattr(settings, "AUDIT_HMAC_KEY", "")
    if configured:
        return configured.encode()
    return hashlib.sha256(b"audit-chain:" + settings.SECRET_KEY.encode()).digest()  # the demo's; production sets its own


# One encoder for every digest: JSON with sorted keys, no spaces, not ASCII-escaped, anything else as
# str(), as json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
# writes it. JSONEncoder.encode builds its C encoder again on every call; this one is built once.
_CANONICAL_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_CANONICAL = (_c_encoder(None, str, json.encoder.encode_basestring, None, ":", ",", True, False, True) if _c_encoder
              else lambda values, _level: _CANONICAL_ENCODER.iterencode(values))
# json.loads without its two whitespace look-ups (PostgreSQL's JSON text starts with the value).
_parse_json = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]


def _canonical(values: Any) -> bytes:
    return "".join(_CANONICAL(values, 0)).encode()


def event_digest(row: tuple[Any, ...], key: bytes) -> str:
    """The HMAC of one event's sealed columns (a row of SEALED_FIELDS as read from the database;
    ``occurred_at`` either the datetime or its ``isoformat()`` text, as :func:`_rows` reads it on
    PostgreSQL)."""
    if not isinstance(row[1], str):
        row = (row[0], row[1].isoformat(), *row[2:])  # occurred_at
    return hmac.digest(key, _canonical(row), "sha256").hex()


def seal_chain(seq: int, prev_chain: str, entries: list[list[Any]], key: bytes) -> str:
    body = hashlib.sha256("\n".join(f"{event_id}:{digest}" for event_id, digest in entries).encode()).hexdigest()
    return hmac.new(key, f"{seq}|{prev_chain}|{body}".encode(), hashlib.sha256).hexdigest()


# PostgreSQL: the sealed columns as _rows reads them there: the time as text, made Python's isoformat()
# of the UTC datetime the ORM would return ("2026-06-01T01:30:00+00:00", with ".ffffff" only when
# there are microseconds) by _pg_rows, the JSON as text parsed once there. Skipping the ORM's per-row
# converters and the datetime parsing is most of verify_audit's speed (bench/audit_scale.py).
_PG_COLUMNS = """id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
    actor_type, actor, action, object_type, object_id, account, before::text, after::text, reason"""


def _rows(query: Any) -> Iterator[tuple[Any, ...]]:
    """The SEALED_FIELDS of the events of ``query`` (a queryset of AuditEvent), in id order."""
    if connection.vendor != "postgresql":
        return query.order_by("id").values_list(*SEALED_FIELDS).iterator(chunk_size=5000)
    return _pg_rows(query)


def _pg_rows(query: Any) -> Iterator[tuple[Any, ...]]:
    compiler = query.query.get_compiler(connection=connection)
    try:
        where, params = compiler.compile(query.query.where)
    except EmptyResultSet:  # id__in=[]
        return
    sql = f"SELECT {_PG_COLUMNS} FROM {AuditEvent._meta.db_table} WHERE {where or 'TRUE'} ORDER BY id"  # noqa: S608 - compiled by the ORM
    parse = _parse_json
    connection.ensure_connection()
    # A server-side cursor streams the rows. Outside a transaction it has to be WITH HOLD, and the
    # server then computes and stores the whole result (in a temporary file past work_mem) before
    # the first row: callers that read much (verify_audit) read inside a transaction instead.
    with connection.connection.cursor(name=f"audit_rows_{next(_cursor_numbers)}",
                                      withhold=connection.get_autocommit()) as stream:
        stream.execute(sql, params)
        while rows := stream.fetchmany(10_000):  # a batch at a time: iterating the cursor costs a call per row
            for row in rows:
                at, before, after = row[1], row[8], row[9]
                yield (row[0], at[:-7] + "+00:00" if at.endswith(".000000") else at + "+00:00", *row[2:8],
                       parse(before, 0)[0] if before is not None else None,
                       parse(after, 0)[0] if after is not None else None, row[10])


def _occurred(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def audit_seal(*, limit: int = 20_000) -> int:
    """Seal the events committed since the last seal (and late ones filling earlier gaps).
    Returns how many events were sealed. Safe to run in several processes: one wins each seal."""
    key = _key()
    at = timezone.now()
    cutoff = at - timedelta(seconds=settings.AUDIT_SEAL_LAG_SECONDS)
    try:
        with transaction.atomic():
            head = AuditSeal.objects.order_by("-seq").first()
            seq = head.seq + 1 if head else 1
            prev_chain = head.chain if head else GENESIS
            sealed_to = AuditSeal.objects.aggregate(highest=Max("last_id"))["highest"] or 0
            entries: list[list[Any]] = []
            # Late commits into earlier gaps; gaps too old to fill are closed.
            AuditGap.objects.filter(seen_at__lt=at - timedelta(seconds=settings.AUDIT_GAP_SECONDS)).delete()
            gap_ids = list(AuditGap.objects.values_list("event_id", flat=True))
            late = [(row[0], event_digest(row, key)) for row in _rows(AuditEvent.objects.filter(id__in=gap_ids))]
            entries.extend([event_id, digest] for event_id, digest in late)
            fresh = 0
            expected = sealed_to + 1 if head else None  # the first seal starts at the first event
            gaps: list[int] = []
            for row in _rows(AuditEvent.objects.filter(id__gt=sealed_to)):
                if fresh >= limit or _occurred(row[1]) >= cutoff:
                    break
                gaps.extend(range(expected if expected is not None else row[0], row[0]))
                expected = row[0] + 1
                entries.append([row[0], event_digest(row, key)])
                fresh += 1
            if not entries:
                return 0
            entries.sort(key=lambda entry: entry[0])
            ids = [entry[0] for entry in entries]
            AuditSeal.objects.create(
                seq=seq, sealed_at=at, first_id=ids[0], last_id=ids[-1], count=len(entries), entries=entries,
                gaps=gaps, prev_chain=prev_chain, chain=seal_chain(seq, prev_chain, entries, key))
            if late:
                AuditGap.objects.filter(event_id__in=[event_id for event_id, _ in late]).delete()
            AuditGap.objects.bulk_create([AuditGap(event_id=g, seal_seq=seq, seen_at=at) for g in gaps])
            return len(entries)
    except IntegrityError:  # another sealer took this seq: it sealed these events
        return 0


@dataclass
class Verification:
    ok: bool = True
    problem: str = ""  # the first problem found, in words
    seal_seq: int | None = None  # where it was found
    event_id: int | None = None
    seals: int = 0  # seals walked this run
    walked: int = 0  # events verified this run
    events: int = 0  # events verified in all, checkpoints included
    head: str = GENESIS
    late: list[tuple[int, int]] = field(default_factory=list)  # (event id, seal) sealed after a later event

    def fail(self, problem: str, *, seal_seq: int | None = None, event_id: int | None = None) -> Verification:
        self.ok, self.problem, self.seal_seq, self.event_id = False, problem, seal_seq, event_id
        return self


@dataclass(frozen=True)
class _SealCheck:
    """What one seal's events are checked against: independent of every other seal's events, so
    seals can be checked in any order."""

    seq: int
    highest: int  # the highest event id sealed by the seals before this one
    last_id: int
    late: tuple[int, ...]  # sealed here, at or below ``highest``: committed late into an earlier gap
    sealed: dict[int, str]  # event id -> its HMAC
    gaps: frozenset[int]


def _check_seal_events(check: _SealCheck) -> tuple[str, int] | None:
    """The first problem among one seal's events, as (words, event id), or None: an event row
    between the previous seals' highest id and this seal's that this seal neither seals nor lists as
    a gap (inserted), a sealed event whose content no longer matches its HMAC (changed), a sealed id
    with no row (deleted)."""
    key = _key()
    sealed, gaps = check.sealed, check.gaps
    encode, digest_of, compare = _CANONICAL, hmac.digest, hmac.compare_digest
    postgres = connection.vendor == "postgresql"
    seen: set[int] = set()
    queries = [AuditEvent.objects.filter(id__gt=check.highest, id__lte=check.last_id)]
    if check.late:
        queries.insert(0, AuditEvent.objects.filter(id__in=check.late))
    with transaction.atomic():  # the rows stream (see _pg_rows); a read only
        for query in queries:
            for row in _rows(query):
                event_id = row[0]
                digest = sealed.get(event_id)
                if digest is None:
                    if event_id in gaps:
                        continue  # committed after this seal: a later seal has it, or it is still open
                    return f"event #{event_id} is not sealed: inserted after the fact", event_id
                # event_digest(row, key), inlined: on PostgreSQL the time is already text (_PG_COLUMNS)
                mac = digest_of(key, "".join(encode(row, 0)).encode(), "sha256").hex() if postgres else event_digest(row, key)
                if not compare(digest, mac):
                    return f"event #{event_id} was changed after it was sealed", event_id
                seen.add(event_id)
    if len(seen) != len(sealed):
        missing = min(set(sealed) - seen)
        return f"event #{missing} was deleted after it was sealed", missing
    return None


def _seals_from(seq: int, *, batch: int = 20) -> Iterator[AuditSeal]:
    """The seals from ``seq`` on, in order, read ``batch`` at a time by key (no cursor held open: a
    holdable one would copy every seal's entries into a temporary file first)."""
    while True:
        seals = list(AuditSeal.objects.filter(seq__gte=seq).order_by("seq")[:batch])
        yield from seals
        if len(seals) < batch:
            return
        seq = seals[-1].seq + 1


def audit_verify(*, full: bool = False, digests: Path | None = None) -> Verification:
    """Walk the chain (from the last checkpoint unless ``full``) and stop at the first problem.
    A clean walk moves the checkpoint on.

    Every id up to the highest sealed is either sealed (in exactly one seal) or a gap some seal
    recorded; a gap's event, if it commits, is sealed by a later seal. So, seal by seal: the
    chain must follow; each sealed event must exist and match its HMAC; each event row between
    the previous seal's highest id and this one's must be sealed here or be one of its gaps; and
    at the end a gap's event that exists but was never sealed must still be an open gap.

    The chain is walked in order, each seal's events checked before the next seal (:func:`_check_seal_events`),
    so the problem reported is the first in chain order. (Checking seals in forked worker processes
    was tried and dropped: a fork of a process with other threads running hung in the test suite.)"""
    key = _key()
    result = Verification()
    checkpoint = None if full else AuditCheckpoint.objects.order_by("-seal_seq").first()
    if checkpoint is not None:
        prev_chain, expected_seq, highest = checkpoint.chain, checkpoint.seal_seq + 1, checkpoint.highest
        pending, result.events = set(checkpoint.pending), checkpoint.events
    else:
        prev_chain, expected_seq, highest, pending = GENESIS, 1, 0, set()

    def settle(check: _SealCheck, outcome: tuple[str, int] | None) -> bool:
        if outcome is not None:
            result.fail(outcome[0], seal_seq=check.seq, event_id=outcome[1])
            return False
        result.late.extend((event_id, check.seq) for event_id in check.late)
        result.seals += 1
        result.walked += len(check.sealed)
        result.events += len(check.sealed)
        return True

    for seal in _seals_from(expected_seq):
        problem = ""
        if seal.seq != expected_seq:
            problem = f"seal #{expected_seq} is missing (the next is #{seal.seq})"
        elif seal.prev_chain != prev_chain or seal.chain != seal_chain(seal.seq, prev_chain, seal.entries, key):
            problem = f"seal #{seal.seq} does not follow the chain (changed, replaced or reordered)"
        if problem:
            first = seal.entries[0][0] if seal.entries and seal.seq == expected_seq else None
            return result.fail(problem, seal_seq=expected_seq if seal.seq != expected_seq else seal.seq, event_id=first)
        sealed = {int(event_id): digest for event_id, digest in seal.entries}
        check = _SealCheck(seq=seal.seq, highest=highest, last_id=seal.last_id, sealed=sealed,
                           late=tuple(sorted(i for i in sealed if i <= highest)), gaps=frozenset(seal.gaps))
        if not settle(check, _check_seal_events(check)):
            return result
        pending = (pending - set(check.late)) | check.gaps
        highest = max(highest, seal.last_id)
        prev_chain = seal.chain
        expected_seq += 1
    open_gaps = set(AuditGap.objects.values_list("event_id", flat=True))
    closed = sorted(pending - open_gaps)
    if closed:
        intruder = AuditEvent.objects.filter(id__in=closed).order_by("id").values_list("id", flat=True).first()
        if intruder is not None:
            return result.fail(f"event #{intruder} is not sealed: inserted after the fact", event_id=intruder)
    result.head = prev_chain
    if digests is not None:
        mismatch = _digests_mismatch(digests)
        if mismatch:
            return result.fail(mismatch)
    if result.seals:
        AuditCheckpoint.objects.create(seal_seq=expected_seq - 1, chain=prev_chain, highest=highest,
                                       pending=sorted(pending & open_gaps), events=result.events,
                                       verified_at=timezone.now())
    return result


def _digests_mismatch(path: Path) -> str:
    if not path.exists():
        return ""
    chains = dict(AuditSeal.objects.values_list("seq", "chain"))
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        digest = json.loads(line)
        if chains.get(digest["seal_seq"]) != digest["chain"]:
            return (f"the digest exported on {digest['date']} (seal #{digest['seal_seq']}) does not match the "
                    "database: the chain was rebuilt or cut")
    return ""


def digest_path() -> Path:
    return Path(settings.AUDIT_DIGEST_PATH)


def audit_digest_export(*, day: str | None = None, path: Path | None = None) -> dict[str, Any] | None:
    """Append the chain's head to the digest file (outside the database) and, with
    AUDIT_DIGEST_EMAIL set, mail it to compliance. One line per day: a second call the same day
    does nothing. Returns the digest written, or None."""
    from django.core.mail import send_mail

    path = path or digest_path()
    day = day or f"{timezone.localdate():%Y-%m-%d}"
    head = AuditSeal.objects.order_by("-seq").first()
    if head is None:
        return None
    if path.exists() and any(json.loads(line).get("date") == day for line in path.read_text().splitlines() if line.strip()):
        return None
    digest = {"date": day, "seal_seq": head.seq, "chain": head.chain, "last_event_id": head.last_id,
              "exported_at": timezone.now().isoformat()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(digest, sort_keys=True) + "\n")
    if settings.AUDIT_DIGEST_EMAIL:
        send_mail(f"审计链摘要 / audit chain digest {day}", json.dumps(digest, indent=2, sort_keys=True),
                  None, [settings.AUDIT_DIGEST_EMAIL])
    return digest


def audit_digest_daily() -> dict[str, Any] | None:
    """The periodic job: export today's digest once the market has closed (15:30 Shanghai)."""
    local = timezone.localtime()
    if (local.hour, local.minute) < (15, 30):
        return None
    return audit_digest_export()
