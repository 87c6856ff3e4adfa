"""Every write on orders, one transaction per use case, split by use case:

- ``inputs``: parsing and checking a client's order (fields, market rules), building it;
- ``intake``: accepting orders (``order_submit``, batches, the risk dry run);
- ``freezes``: admission (holdings, risk control) and the cash and shares an order holds;
- ``modify``: cancel and modify (cancel-and-replace), and what follows an order's end;
- ``broker``: the broker calls (submit exactly once, cancel, a refused cancel);
- ``sync``: the broker's state of an order recorded (status events, fills into positions and cash);
- ``reconcile``: polling the broker, lost orders found or re-sent;
- ``discrepancies``: reconciliation proper: the broker's orders, trades, positions and cash
  compared with ours, differences kept as Discrepancy rows, and a person resolving them;
- ``outbox``: the order row as its own outbox (relay, sweep);
- ``expiry``: orders whose trading day ended before they reached the broker;
- ``locks``: the row locks of the order path (README, "Locks") and account lookups.

Modules import one another in that direction only (no cycles: ``intake`` -> ``broker`` ->
``sync`` -> ``modify`` -> ``freezes`` -> ``outbox``/``inputs``/``locks``; ``discrepancies`` ->
``reconcile`` -> ``broker``). Callers outside the
package import the names re-exported here.
"""

from orders.services.broker import (
    WORKER,
    order_cancel_at_broker,
    order_cancel_refused,
    order_place,
    order_send_to_broker,
    submitting_stale,
)
from orders.services.discrepancies import (
    RECONCILIATION,
    ReconcileResult,
    account_reconcile,
    accounts_reconcile_all,
    discrepancy_resolve,
)
from orders.services.expiry import expire_locked, orders_expire_day
from orders.services.freezes import Admission, admission_for, admit_saved, freeze_admitted, release_freezes
from orders.services.inputs import (
    CheckedOrder,
    OrderInput,
    build_order,
    created_event,
    instrument_lookup,
    order_check,
)
from orders.services.intake import (
    BatchItemResult,
    SubmitResult,
    batch_size_check,
    order_dry_run,
    order_submit,
    order_submit_batch,
    request_is_worker,
)
from orders.services.locks import account_by_name, account_id_by_name, lock_order, lock_order_alone, relock_order_alone
from orders.services.modify import (
    MODIFIABLE_STATUSES,
    after_order_ended,
    order_cancel,
    order_modify,
    replacement_abandon,
)
from orders.services.outbox import (
    CANCEL,
    SUBMIT,
    dispatch_on_commit,
    enqueue,
    order_reread,
    orders_release_waiting,
    outbox_relay_once,
    outbox_sweep,
    reread_after_inline_worker,
    tasks_run_inline,
)
from orders.services.reconcile import (
    account_poll,
    account_poll_or_wait,
    accounts_poll_all,
    accounts_poll_later,
    broker_back,
)
from orders.services.sync import RESTING_AT_BROKER, nothing_new_at_broker, order_sync

__all__ = [
    "OrderInput",
    "CheckedOrder",
    "instrument_lookup",
    "order_check",
    "build_order",
    "created_event",
    "account_id_by_name",
    "account_by_name",
    "lock_order",
    "lock_order_alone",
    "relock_order_alone",
    "SUBMIT",
    "CANCEL",
    "dispatch_on_commit",
    "enqueue",
    "tasks_run_inline",
    "reread_after_inline_worker",
    "order_reread",
    "orders_release_waiting",
    "outbox_relay_once",
    "outbox_sweep",
    "Admission",
    "admission_for",
    "freeze_admitted",
    "admit_saved",
    "release_freezes",
    "MODIFIABLE_STATUSES",
    "order_cancel",
    "order_modify",
    "after_order_ended",
    "replacement_abandon",
    "order_sync",
    "RESTING_AT_BROKER",
    "nothing_new_at_broker",
    "WORKER",
    "submitting_stale",
    "order_send_to_broker",
    "order_place",
    "order_cancel_at_broker",
    "order_cancel_refused",
    "orders_expire_day",
    "expire_locked",
    "account_poll",
    "account_poll_or_wait",
    "broker_back",
    "accounts_poll_later",
    "accounts_poll_all",
    "RECONCILIATION",
    "ReconcileResult",
    "account_reconcile",
    "accounts_reconcile_all",
    "discrepancy_resolve",
    "SubmitResult",
    "order_submit",
    "request_is_worker",
    "BatchItemResult",
    "batch_size_check",
    "order_submit_batch",
    "order_dry_run",
]
