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
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from audit.models import AuditCheckpoint, AuditEvent, AuditGap, AuditSeal

log = logging.getLogger(__name__)

GENESIS = "0" * 64
# The event columns an HMAC covers, in this order (the id included: a row moved to another id fails).
SEALED_FIELDS = ("id", "occurred_at", "actor_type", "actor", "action", "object_type", "object_id", "account",
                 "before", "after", "reason")


def _key() -> bytes:
    configured = getattr(settings, "AUDIT_HMAC_KEY", "")
    if configured:
        return configured.encode()
    return hashlib.sha256(b"audit-chain:" + settings.SECRET_KEY.encode()).digest()  # the demo's; production sets its own


def event_digest(row: tuple[Any, ...], key: bytes) -> str:
    """The HMAC of one event's sealed columns (a row of SEALED_FIELDS as read from the database)."""
    values = list(row)
    values[1] = values[1].isoformat()  # occurred_at
    text = json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def seal_chain(seq: int, prev_chain: str, entries: list[list[Any]], key: bytes) -> str:
    body = hashlib.sha256("\n".join(f"{event_id}:{digest}" for event_id, digest in entries).encode()).hexdigest()
    return hmac.new(key, f"{seq}|{prev_chain}|{body}".encode(), hashlib.sha256).hexdigest()


def _rows(query: Any) -> Iterator[tuple[Any, ...]]:
    return query.order_by("id").values_list(*SEALED_FIELDS).iterator(chunk_size=5000)


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
                if fresh >= limit or row[1] >= cutoff:
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


def audit_verify(*, full: bool = False, digests: Path | None = None) -> Verification:
    """Walk the chain (from the last checkpoint unless ``full``) and stop at the first problem.
    A clean walk moves the checkpoint on.

    Every id up to the highest sealed is either sealed (in exactly one seal) or a gap some seal
    recorded; a gap's event, if it commits, is sealed by a later seal. So, seal by seal: the
    chain must follow; each sealed event must exist and match its HMAC; each event row between
    the previous seal's highest id and this one's must be sealed here or be one of its gaps; and
    at the end a gap's event that exists but was never sealed must still be an open gap."""
    key = _key()
    result = Verification()
    checkpoint = None if full else AuditCheckpoint.objects.order_by("-seal_seq").first()
    if checkpoint is not None:
        prev_chain, expected_seq, highest = checkpoint.chain, checkpoint.seal_seq + 1, checkpoint.highest
        pending, result.events = set(checkpoint.pending), checkpoint.events
    else:
        prev_chain, expected_seq, highest, pending = GENESIS, 1, 0, set()
    for seal in AuditSeal.objects.filter(seq__gte=expected_seq).order_by("seq").iterator(chunk_size=20):
        if seal.seq != expected_seq:
            return result.fail(f"seal #{expected_seq} is missing (the next is #{seal.seq})", seal_seq=expected_seq)
        if seal.prev_chain != prev_chain or seal.chain != seal_chain(seal.seq, prev_chain, seal.entries, key):
            first = seal.entries[0][0] if seal.entries else None
            return result.fail(f"seal #{seal.seq} does not follow the chain (changed, replaced or reordered)",
                               seal_seq=seal.seq, event_id=first)
        sealed = {int(event_id): digest for event_id, digest in seal.entries}
        late = sorted(i for i in sealed if i <= highest)
        gaps = set(seal.gaps)
        seen: set[int] = set()
        fresh_rows = AuditEvent.objects.filter(id__gt=highest, id__lte=seal.last_id)
        for query in ((AuditEvent.objects.filter(id__in=late),) if late else ()) + (fresh_rows,):
            for row in _rows(query):
                event_id = row[0]
                digest = sealed.get(event_id)
                if digest is None:
                    if event_id in gaps:
                        continue  # committed after this seal: a later seal has it, or it is still open
                    return result.fail(f"event #{event_id} is not sealed: inserted after the fact",
                                       seal_seq=seal.seq, event_id=event_id)
                if not hmac.compare_digest(digest, event_digest(row, key)):
                    return result.fail(f"event #{event_id} was changed after it was sealed",
                                       seal_seq=seal.seq, event_id=event_id)
                seen.add(event_id)
        missing = sorted(set(sealed) - seen)
        if missing:
            return result.fail(f"event #{missing[0]} was deleted after it was sealed", seal_seq=seal.seq,
                               event_id=missing[0])
        result.late.extend((event_id, seal.seq) for event_id in late)
        pending = (pending - set(late)) | gaps
        highest = max(highest, seal.last_id)
        prev_chain = seal.chain
        expected_seq += 1
        result.seals += 1
        result.walked += len(sealed)
        result.events += len(sealed)
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
