"""The one clock of the back office.

Every "now" of the domain (order and fill timestamps, the trading day, sessions, the risk
windows, the paper broker's matching, quotes) is :func:`now`. Tests move them all at once with
the ``clock`` fixture (tests/conftest.py), which replaces ``_source``; nothing else replaces it.
Import either way (``from trading.clock import now`` or ``from trading import clock``): both
read ``_source`` at each call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

# timezone.now: an aware datetime in UTC (USE_TZ), as every clock here returned before it was the
# only one, so what is stored, audited and answered over the API keeps its form. The trading day
# and the sessions are always taken in Asia/Shanghai (trading.calendar).
_source: Callable[[], datetime] = timezone.now


def now() -> datetime:
    """The current time, timezone-aware."""
    return _source()
