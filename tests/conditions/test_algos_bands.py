"""The per-symbol thresholds cache on the quote path: every symbol's band in one grouped read when it
is due, nothing read for a quote inside its band, and a symbol changed here read again alone."""

from __future__ import annotations

from conditions import services
from conditions.services import conditions_evaluate_quotes, quote_view
from orders.models import Order
from tests import factories
from tests.conditions.conftest import create


def view(symbol: str, last: str):
    return quote_view(factories.quote(symbol, last=last, prev_close="10.00", bid=last, ask=last))


def test_one_grouped_read_serves_every_symbol_then_quotes_inside_the_band_read_nothing(market, settings,
                                                                                       django_assert_num_queries) -> None:
    settings.CONDITIONS_BAND_TTL_SECONDS = 3600
    factories.instrument("600036.SH")
    create()  # 600000.SH: buy at or above 10.50
    create(symbol="600036.SH", client_order_id="c-2")
    quiet, other, near = view("600000.SH", "10.20"), view("600036.SH", "10.20"), view("600000.SH", "10.49")
    services._bands_forget()
    with django_assert_num_queries(1):  # the grouped read of both symbols' bands
        assert conditions_evaluate_quotes([quiet, other]) == []
    with django_assert_num_queries(0):
        assert conditions_evaluate_quotes([quiet, other, near]) == []


def test_a_symbol_changed_in_this_process_is_read_again_alone_and_fires(market, settings) -> None:
    settings.CONDITIONS_BAND_TTL_SECONDS = 3600
    services._bands_forget()
    assert conditions_evaluate_quotes([view("600000.SH", "10.20")]) == []  # read: no parent anywhere
    parent = create()  # forgets 600000.SH's band in this process
    fired = conditions_evaluate_quotes([view("600000.SH", "10.50")])
    assert [o.parent_id for o in fired] == [parent.pk] and Order.objects.count() == 1
