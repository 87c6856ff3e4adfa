"""Exceptions of workers in the audit log: a Celery ``task_failure`` receiver.

A task that raises is recorded as ``worker.task_failed`` (the task's name and id, its arguments,
which are ids, and the exception's type and message), in a transaction of its own: the task's own
transaction has rolled back by then. Connected once, in ``TradingConfig.ready``; it runs in the
worker process, and in the request's process when tasks run in-process (the embedded default).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from audit.services import Actor, audit_record

log = logging.getLogger(__name__)


def _short(value: Any, limit: int = 500) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def task_failure_record(sender: Any = None, task_id: str | None = None, exception: BaseException | None = None,
                        args: Any = None, kwargs: Any = None, **_: Any) -> None:
    """The ``task_failure`` receiver. Never raises: a failure to record is logged instead."""
    name = str(getattr(sender, "name", sender))
    try:
        with transaction.atomic():
            audit_record(actor=Actor.system("worker"), action="worker.task_failed", object_type="task",
                         object_id=task_id or "", after={"task": name, "args": _short(args), "kwargs": _short(kwargs),
                                                         "error_type": type(exception).__name__},
                         reason=_short(str(exception), 1000))
    except Exception:
        log.exception("could not record the failure of task %s (%s)", name, task_id)


def connect() -> None:
    from celery.signals import task_failure

    task_failure.connect(task_failure_record, dispatch_uid="trading.task_failure_record", weak=False)
