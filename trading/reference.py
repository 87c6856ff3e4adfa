"""Loading instrument reference data from the shipped file into the database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from audit.services import SYSTEM, Actor, audit_record
from trading.market_rules import load_reference_instruments
from trading.models import Instrument


@dataclass
class LoadReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


FIELDS = ("name", "board", "is_st", "listing_date", "registration_listing", "t0", "limit_pct", "industry", "total_shares",
          "delisting", "risk_level")


@transaction.atomic
def instruments_load(*, path: Path | str | None = None, actor: Actor = SYSTEM) -> LoadReport:
    """Create or update Instrument rows from the reference file; audits each change."""
    report = LoadReport()
    existing = {(i.exchange, i.code): i for i in Instrument.objects.all()}
    for ref in load_reference_instruments(path):
        values = {f: getattr(ref, f) for f in FIELDS}
        values["total_shares"] = values["total_shares"] or 0
        instrument = existing.get((ref.exchange, ref.code))
        if instrument is None:
            instrument = Instrument.objects.create(exchange=ref.exchange, code=ref.code, **values)
            report.created += 1
            audit_record(actor=actor, action="instrument.created", object_type="instrument", object_id=instrument.pk,
                         after={"symbol": ref.symbol, **{k: str(v) for k, v in values.items()}})
            continue
        before = {f: getattr(instrument, f) for f in FIELDS}
        changed = {f: v for f, v in values.items() if before[f] != v}
        if not changed:
            report.unchanged += 1
            continue
        for name, value in changed.items():
            setattr(instrument, name, value)
        instrument.save()
        report.updated += 1
        audit_record(actor=actor, action="instrument.updated", object_type="instrument", object_id=instrument.pk,
                     before={k: str(before[k]) for k in changed}, after={k: str(v) for k, v in changed.items()})
    return report
