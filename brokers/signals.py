"""Signals the broker adapters send. ``brokers`` imports no higher layer, so a higher layer that
must act on a broker's news (``orders``: poll the account) connects a receiver here.

``broker_update(account_name=...)``: an adapter learnt from a push of its broker (miniQMT's
callbacks) that orders or trades of the account changed. It is sent from the broker client's own
callback thread, outside any transaction: a receiver must be quick, must not call the broker,
and must hand the work on (``orders/receivers.py`` enqueues the account's poll). Adapters send it
with ``send_robust``, so a failing receiver never breaks the broker client's callbacks.
"""

from __future__ import annotations

from django.dispatch import Signal

broker_update = Signal()
