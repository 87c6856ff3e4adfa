"""verify_audit's fast read on PostgreSQL (audit/sealing.py ``_rows``) gives every event the digest
the ORM's read gives it, whatever its time (with or without microseconds) and JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import connection

from audit.models import AuditEvent
from audit.sealing import SEALED_FIELDS, _key, _rows, event_digest

pytestmark = pytest.mark.django_db

TIMES = [datetime(2026, 6, 1, 1, 30, tzinfo=UTC), datetime(2026, 6, 1, 1, 30, 0, 500, tzinfo=UTC),
         datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
PAYLOADS = [None, {}, {"b": 1, "a": [1.5, "x"], "é": "价格 \"quoted\" \\ \n", "n": None, "t": True},
            {"nested": {"z": 1, "aa": {"k": "v"}}, "big": 12345678901234567890, "f": 1e-7}]


def test_the_fast_read_digests_as_the_orm_read(require_postgres) -> None:
    with connection.cursor() as cursor:  # occurred_at as given (the ORM would stamp it now)
        for index, at in enumerate(TIMES):
            for payload in PAYLOADS:
                text = json.dumps(payload) if payload is not None else None
                cursor.execute("INSERT INTO audit_auditevent (occurred_at, actor_type, actor, action, object_type, object_id, "
                               "account, before, after, reason) VALUES (%s, 'user', 'op1', 'test.read', 'order', %s, 'acc1', "
                               "%s, %s, %s)", [at, str(index), text, text, "原因\ttab"])
    key = _key()
    query = AuditEvent.objects.filter(action="test.read")
    orm = [(row[0], event_digest(row, key)) for row in query.order_by("id").values_list(*SEALED_FIELDS)]
    fast = [(row[0], event_digest(row, key)) for row in _rows(query)]
    assert len(orm) == len(TIMES) * len(PAYLOADS) and fast == orm
    assert list(_rows(AuditEvent.objects.filter(id__in=[]))) == []


def test_an_events_digest_is_the_hmac_of_its_canonical_json_as_when_it_was_sealed() -> None:
    """Seals made before the digest was computed with a prebuilt encoder still verify: the HMAC is
    still that of json.dumps(sorted keys, no spaces, not ASCII-escaped, str() for the rest)."""
    import hashlib
    import hmac
    from decimal import Decimal

    key = b"k" * 32
    for at in TIMES:
        for payload in PAYLOADS + [{"amount": Decimal("12.30"), "z": {"b": [1, {"d": 2, "c": 3}]}, "中": "文"}]:
            row = (7, at, "user", "op1", "order.created", "order", "7", "acc1", payload, payload, "原因\ttab")
            text = json.dumps([7, at.isoformat(), *row[2:]], ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                              default=str)
            assert event_digest(row, key) == hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
            assert event_digest((7, at.isoformat(), *row[2:]), key) == event_digest(row, key)
