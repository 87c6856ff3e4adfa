"""The broker gateway: a small service of ours on the broker's Windows host (docs/brokers/gateway.md).

It hosts an object with easytrader's client API (easytrader's GUI clients, its ``miniqmt`` client)
and serves it over signed HTTP(S) (:mod:`.server`, run with ``python -m brokers.gateway``), with
idempotent submission by our order id kept in an on-disk journal (:mod:`.journal`). The back
office reaches it with :class:`.client.GatewayClient` through the ``gateway`` adapter.

Only the standard library: this package imports nothing of Django or of the back office, so the
Windows host needs ``brokers/__init__.py`` and ``brokers/gateway/`` and the broker's client.
"""
