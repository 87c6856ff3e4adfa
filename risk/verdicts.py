"""The vocabulary of risk control: actions, verdicts, the outcome of one check.

Kept free of models so that models, rules and the order path can all import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """One rule's answer for one order: passed, or failed with a reason and the values compared.

    ``action`` is what a failure does (REJECT, REVIEW or WARN); on a passed
    verdict it is the action the rule is configured with. ``values`` holds the
    numbers compared, JSON-ready (decimals as strings).
    """

    rule: str
    passed: bool
    action: str
    message: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        # Written out: dataclasses.asdict deep-copies, and this runs per rule per order.
        return {"rule": self.rule, "passed": self.passed, "action": str(self.action), "message": self.message,
                "values": dict(self.values)}


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
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]

    @property
    def reason(self) -> str:
        return "; ".join(f"{v.rule}: {v.message}" for v in self.verdicts if not v.passed)
