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

``quotes_published(quotes=[...])``: quotes were stored (``brokers.services.quotes_publish``: the
simulated market and POST /market/quotes; a broker's own market data sends it the same way). Sent
after the storing transaction commits, in the publishing thread, with ``send_robust``, only when
someone listens (``conditions``: it evaluates conditional orders on them). ``quotes`` are the stored
``trading.Quote`` rows. A receiver must be quick and hand heavy work on.
"""

from __future__ import annotations

from django.dispatch import Signal

broker_update = Signal()
broker_called = Signal()
quotes_published = Signal()
