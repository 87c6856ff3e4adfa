"""``/metrics`` and ``/readyz``, included at the root by trading/urls.py (by name: nothing below
monitoring imports it)."""

from django.urls import path

from monitoring import probes

urlpatterns = [
    path("metrics", probes.metrics, name="metrics"),
    path("readyz", probes.readyz, name="readyz"),
]
