"""Signals conditional orders send. Nothing imports monitoring: it connects here.

``conditions_evaluated(seconds=..., result=...)``: the conditional orders of one quote were
evaluated (``conditions.services.conditions_evaluate_quotes``): ``seconds`` from the quote's turn
to its end, the firing of its children through order intake included; ``result`` is ``idle``
(the quote reached no parent's threshold: no query or one), ``evaluated`` (parents were asked,
none acted) or ``fired`` (a parent released, tracked, was refused or ended). Sent in the
evaluating thread with ``send_robust``, only when someone listens (monitoring's histogram
``trading_conditions_evaluation_seconds``): a receiver must be quick.
"""

from __future__ import annotations

from django.dispatch import Signal

conditions_evaluated = Signal()
