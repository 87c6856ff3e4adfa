"""The pre-trade risk controller: runs every enabled rule for an order and decides.

Rules themselves (risk/rules/) and their configuration (RiskRule rows) come
with the risk-control issue; with none configured every order passes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from django.db import models


class RiskAction(models.TextChoices):
    REJECT = "REJECT", "拒绝"
    REVIEW = "REVIEW", "人工审核"
    WARN = "WARN", "警告放行"


class Decision(StrEnum):
    PASS = "PASS"
    REVIEW = "REVIEW"
    REJECT = "REJECT"


@dataclass(frozen=True)
class Verdict:
    """One rule's answer for one order: passed, or failed with a reason and the values compared."""

    rule: str
    passed: bool
    action: str
    message: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RiskOutcome:
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def decision(self) -> Decision:
        failed = {v.action for v in self.verdicts if not v.passed}
        if RiskAction.REJECT in failed:
            return Decision.REJECT
        if RiskAction.REVIEW in failed:
            return Decision.REVIEW
        return Decision.PASS

    @property
    def reason(self) -> str:
        return "; ".join(f"{v.rule}: {v.message}" for v in self.verdicts if not v.passed)


def risk_check_order(order: Any, *, dry_run: bool = False) -> RiskOutcome:
    """Run the enabled rules for ``order`` (an unsaved or saved Order).

    Precondition: the caller holds the account lock, so running totals read
    here cannot change until the order is written.
    """
    return RiskOutcome()
