"""Signals the broker adapters send. ``brokers`` imports no higher layer, so a higher layer that
must act on a broker's news (``orders``: poll the account) connects a receiver here.

``broker_update(account_name=...)``: an adapter learnt from a push of its broker (miniQMT's
callbacks) that orders or trades of the account changed. It is sent from the broker client's own
callback thread, outside any transaction: a receiver must be quick, must not call the broker,
and must hand the work on (``orders/receivers.py`` enqueues the account's poll). Adapters send it
with ``send_robust``, so a failing receiver never breaks the broker client's callbacks.

``broker_called(kind=..., method=..., seconds=..., outcome=...)``: a guarded broker call
(brokers/connection.py) came back, or the circuit's probe (``method="login"``) did. ``outcome`` is
``ok``, ``refused`` (BrokerError), ``timeout`` (BrokerTimeout), ``unavailable`` (BrokerUnavailable)
or ``error`` (anything else). Calls an open circuit refused before reaching the adapter are not
sent. Sent in the calling thread with ``send_robust``, only when someone listens (monitoring's
latency histogram): a receiver must be quick.
"""

from __future__ import annotations

from django.dispatch import Signal

broker_update = Signal()
broker_called = Signal()
