"""The audit chain (audit/sealing.py): sealed events, and verify_audit naming the first event that
was changed, deleted, inserted or reordered, late commits sealed, the digests kept outside.

Tampering is done as the database owner would: on PostgreSQL with the append-only triggers
switched off for the session (session_replication_role = replica, as a superuser can).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from audit.models import AuditCheckpoint, AuditEvent, AuditGap, AuditSeal
from audit.sealing import (
    SEALED_FIELDS,
    _key,
    audit_digest_export,
    audit_seal,
    audit_verify,
    event_digest,
    seal_chain,
)
from audit.services import Actor, audit_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_lag")]


@pytest.fixture
def no_lag():
    with override_settings(AUDIT_SEAL_LAG_SECONDS=0):
        yield


def record(n: int, account: str = "acc1") -> list[AuditEvent]:
    return [audit_record(actor=Actor.user("op1"), action="order.created", object_type="order", object_id=i,
                         account=account, after={"status": "NEW", "price": "9.90"}) for i in range(n)]


def owner_sql(sql: str, params: list[object] | None = None) -> None:
    """A statement as the database's owner would run it, the append-only triggers off."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params or [])


def seal_all() -> int:
    total = 0
    while sealed := audit_seal():
        total += sealed
    return total


def test_sealed_events_verify_and_the_checkpoint_moves_on() -> None:
    record(30)
    assert seal_all() == 30
    record(5)
    assert seal_all() == 5
    result = audit_verify()
    assert result.ok and (result.seals, result.events) == (2, 35)
    checkpoint = AuditCheckpoint.objects.get()
    assert checkpoint.seal_seq == 2 and checkpoint.chain == AuditSeal.objects.get(seq=2).chain
    record(3)
    seal_all()
    again = audit_verify()  # incremental: only the new seal is walked
    assert again.ok and again.seals == 1 and again.events == 38


def test_a_changed_event_is_named() -> None:
    events = record(10)
    seal_all()
    owner_sql("UPDATE audit_auditevent SET reason = 'covered up' WHERE id = %s", [events[6].pk])
    result = audit_verify()
    assert not result.ok and result.event_id == events[6].pk and "changed" in result.problem


def test_two_events_swapped_are_named_at_the_first() -> None:
    events = record(10)
    seal_all()
    a, b = events[3], events[7]
    owner_sql("UPDATE audit_auditevent SET object_id = %s WHERE id = %s", [b.object_id, a.pk])
    owner_sql("UPDATE audit_auditevent SET object_id = %s WHERE id = %s", [a.object_id, b.pk])
    result = audit_verify()
    assert not result.ok and result.event_id == a.pk


def test_a_deleted_event_is_named() -> None:
    events = record(10)
    seal_all()
    owner_sql("DELETE FROM audit_auditevent WHERE id = %s", [events[4].pk])
    result = audit_verify()
    assert not result.ok and result.event_id == events[4].pk and "deleted" in result.problem


def test_an_event_inserted_into_a_closed_gap_is_named() -> None:
    events = record(6)
    owner_sql("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])  # a rolled-back id, as it were
    seal_all()
    assert list(AuditGap.objects.values_list("event_id", flat=True)) == [events[2].pk]
    with override_settings(AUDIT_GAP_SECONDS=0):
        record(1)
        seal_all()  # the gap is closed
    assert not AuditGap.objects.exists()
    owner_sql("INSERT INTO audit_auditevent (id, occurred_at, actor_type, actor, action, object_type, object_id, "
              "account, reason) VALUES (%s, %s, 'user', 'op1', 'order.cancelled', 'order', '2', 'acc1', 'forged')",
              [events[2].pk, events[2].occurred_at])
    result = audit_verify(full=True)
    assert not result.ok and result.event_id == events[2].pk and "inserted" in result.problem


def test_a_late_commit_into_an_open_gap_is_sealed_late_and_verifies() -> None:
    events = record(6)
    saved = AuditEvent.objects.get(pk=events[2].pk)
    owner_sql("DELETE FROM audit_auditevent WHERE id = %s", [saved.pk])  # not committed yet, as it were
    seal_all()
    owner_sql("INSERT INTO audit_auditevent (id, occurred_at, actor_type, actor, action, object_type, object_id, "
              "account, reason) VALUES (%s, %s, 'user', 'op1', 'order.created', 'order', '2', 'acc1', '')",
              [saved.pk, saved.occurred_at])
    assert seal_all() == 1
    result = audit_verify()
    assert result.ok and result.late == [(saved.pk, 2)]


def test_a_changed_seal_breaks_the_chain() -> None:
    events = record(10)
    seal_all()
    owner_sql("UPDATE audit_auditevent SET reason = 'covered up' WHERE id = %s", [events[1].pk])
    seal = AuditSeal.objects.get()
    entries = [[i, "0" * 64 if i == events[1].pk else d] for i, d in seal.entries]
    owner_sql("UPDATE audit_auditseal SET entries = %s WHERE seq = 1", [json.dumps(entries)])
    result = audit_verify()
    assert not result.ok and result.seal_seq == 1 and "chain" in result.problem


def test_a_chain_rebuilt_with_the_key_is_caught_by_the_exported_digest(tmp_path: Path) -> None:
    events = record(10)
    seal_all()
    digests = tmp_path / "digests.jsonl"
    assert audit_digest_export(day="2026-11-27", path=digests)["seal_seq"] == 1
    assert audit_digest_export(day="2026-11-27", path=digests) is None  # once a day
    # Someone with the key (and the database) changes an event and rebuilds its seal.
    owner_sql("UPDATE audit_auditevent SET reason = 'covered up' WHERE id = %s", [events[0].pk])
    key = _key()
    rows = AuditEvent.objects.order_by("id").values_list(*SEALED_FIELDS)
    entries = [[row[0], event_digest(row, key)] for row in rows]
    owner_sql("UPDATE audit_auditseal SET entries = %s, chain = %s WHERE seq = 1",
              [json.dumps(entries), seal_chain(1, "0" * 64, entries, key)])
    assert audit_verify(full=True).ok  # the chain alone cannot tell
    result = audit_verify(full=True, digests=digests)
    assert not result.ok and "2026-11-27" in result.problem


def test_verify_audit_command_reports_and_fails_with_the_event(capsys: pytest.CaptureFixture[str]) -> None:
    events = record(4)
    call_command("verify_audit")
    assert "audit chain intact: 4 events" in capsys.readouterr().out
    owner_sql("UPDATE audit_auditevent SET actor = 'someone else' WHERE id = %s", [events[3].pk])
    with pytest.raises(CommandError, match=f"event #{events[3].pk} was changed"):
        call_command("verify_audit", "--full")
    assert AuditEvent.objects.filter(action="audit.verified").count() == 2


def test_concurrent_sealers_and_writers_seal_every_event_once(require_postgres: None) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(40):
                record(5)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def seal() -> None:
        try:
            while not stop.is_set():
                audit_seal()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    writers = [threading.Thread(target=write) for _ in range(3)]
    sealers = [threading.Thread(target=seal) for _ in range(2)]
    for thread in writers + sealers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in sealers:
        thread.join()
    assert errors == []
    seal_all()
    sealed = [event_id for entries in AuditSeal.objects.values_list("entries", flat=True) for event_id, _ in entries]
    assert len(sealed) == len(set(sealed)) == AuditEvent.objects.count() == 600
    assert audit_verify(full=True).ok


# --------------------------------------------------------------------------- checked by worker processes


def sealed_in_fives(n: int) -> list[AuditEvent]:
    """``n`` events in seals of five: seal k holds events[5k-5:5k]."""
    events = record(n)
    while audit_seal(limit=5):
        pass
    return events


def test_the_first_problem_in_chain_order_is_named_among_several(require_postgres: None) -> None:
    events = sealed_in_fives(40)
    result = audit_verify(full=True)
    assert result.ok and (result.seals, result.walked) == (8, 40)
    owner_sql("UPDATE audit_auditevent SET reason = 'covered up' WHERE id = %s", [events[33].pk])  # seal 7
    owner_sql("DELETE FROM audit_auditevent WHERE id = %s", [events[12].pk])  # seal 3
    owner_sql("UPDATE audit_auditevent SET reason = 'covered up' WHERE id = %s", [events[22].pk])  # seal 5
    result = audit_verify(full=True)
    assert not result.ok and (result.seal_seq, result.event_id) == (3, events[12].pk) and "deleted" in result.problem
    assert AuditCheckpoint.objects.count() == 1  # the clean walk's only


def test_an_earlier_seals_event_is_named_before_a_later_break_in_the_chain(require_postgres: None) -> None:
    events = sealed_in_fives(40)
    owner_sql("UPDATE audit_auditevent SET actor = 'someone else' WHERE id = %s", [events[27].pk])  # seal 6
    owner_sql("UPDATE audit_auditseal SET chain = %s WHERE seq = 7", ["0" * 64])
    result = audit_verify(full=True)
    assert not result.ok and (result.seal_seq, result.event_id) == (6, events[27].pk) and "changed" in result.problem
    owner_sql("UPDATE audit_auditseal SET chain = %s WHERE seq = 2", ["0" * 64])  # now the chain breaks first
    result = audit_verify(full=True)
    assert not result.ok and result.seal_seq == 2 and "chain" in result.problem


# --------------------------------------------------------------------------- the database refuses


@pytest.mark.parametrize("statement", [
    "UPDATE audit_auditevent SET actor = 'someone else'",
    "DELETE FROM audit_auditevent",
    "TRUNCATE audit_auditevent",
    "UPDATE audit_auditseal SET chain = ''",
    "DELETE FROM audit_auditseal",
])
def test_postgresql_refuses_to_change_the_log(require_postgres: None, statement: str) -> None:
    record(2)
    seal_all()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditEvent.objects.count() == 2 and AuditSeal.objects.count() == 1
