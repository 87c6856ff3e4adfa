"""Writes to the audit log. Callers run inside their own transaction, so the event
commits or rolls back together with the change it records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audit.models import ActorType, AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who caused a change: a user, an API key, the broker or the system itself."""

    type: str = ActorType.SYSTEM
    name: str = "system"

    @classmethod
    def system(cls, name: str = "system") -> "Actor":
        return cls(ActorType.SYSTEM, name)

    @classmethod
    def command(cls, command: str) -> "Actor":
        """A management command run by an operator from a shell: the system, named by the command
        and the operating-system user who ran it (``manage.py trading_state (ops)``)."""
        import getpass

        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (e.g. in a container)
            user = "unknown"
        return cls(ActorType.SYSTEM, f"manage.py {command} ({user})"[:128])

    @classmethod
    def broker(cls, name: str) -> "Actor":
        return cls(ActorType.BROKER, name)

    @classmethod
    def api_key(cls, name: str) -> "Actor":
        return cls(ActorType.API_KEY, name)

    @classmethod
    def user(cls, username: str) -> "Actor":
        return cls(ActorType.USER, username)


SYSTEM = Actor.system()


def audit_event(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: Any,
    account: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    """An audit event built but not inserted, for callers that insert several at once."""
    return AuditEvent(
        actor_type=actor.type,
        actor=actor.name,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        account=account,
        before=before,
        after=after,
        reason=reason,
    )


def audit_record(**fields: Any) -> AuditEvent:
    """Append one audit event (same keywords as :func:`audit_event`).

    Precondition: called inside the transaction of the change it records.
    """
    event = audit_event(**fields)
    event.save()
    return event
