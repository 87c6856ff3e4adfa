"""Who may watch the live pages, and the words their JavaScript shows (the admin's catalogues)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from brokers.models import LinkState
from orders.models import OrderStatus
from trading.market_rules import Side

# The permission a staff role needs to watch the live stream and pages (every role has it).
VIEW_PERMISSION = "orders.view_order"


def live_labels() -> dict[str, Any]:
    """The words the live pages' JavaScript shows, in the request's language (admin's catalogues)."""
    return {
        "status": {value: gettext(str(label)) for value, label in OrderStatus.choices},
        "side": {value: gettext(str(label)) for value, label in Side.choices},
        "link": {value: gettext(str(label)) for value, label in LinkState.choices},
        "workers": {"up": gettext("running"), "down": gettext("none answering"), "inline": gettext("in-process"),
                    "unknown": gettext("unknown")},
        "connection": {"live": gettext("live"), "connecting": gettext("connecting"), "resync": gettext("re-syncing"),
                       "polling": gettext("polling (no websocket)")},
        "text": {"none": gettext("nothing yet"), "pnl": gettext("P&L"), "broker": gettext("Broker"), "workers": gettext("Workers"),
                 "scheduler": gettext("Scheduler"), "queue": gettext("Queue backlog"), "outbox": gettext("Orders owed to the broker"),
                 "live_backlog": gettext("Live events not yet sent"),
                 "ago": gettext("last heartbeat %s s ago"), "new_held": gettext("New orders arrived: reload to see them"),
                 "missed": gettext("Some changes were missed: reload the page")},
    }
