"""The operators' pages: conditional orders by state, one parent's trigger history and released
children, and cancelling, allowed to the order desk's roles only."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from conditions.models import ConditionalOrder
from tests.conditions.conftest import create, publish
from tests.staff_helpers import staff_member, verified_client


@pytest.fixture
def role_client(market):
    def make(role: str):
        return verified_client(staff_member(role.lower().replace(" ", "_"), role))

    return make


def test_the_list_filters_by_state_and_the_page_shows_history_and_the_released_order(market, role_client) -> None:
    fired = create(client_order_id="c-fired")
    waiting = create(client_order_id="c-waiting", params={"direction": "AT_OR_ABOVE", "level": "10.90"})
    publish(last="10.50")
    client = role_client("Operator")
    listed = client.get("/admin/conditions/conditionalorder/", {"state__exact": "ACTIVE"})
    assert listed.status_code == 200
    assert f"/admin/conditions/conditionalorder/{waiting.pk}/change/" in listed.content.decode()
    assert f"/admin/conditions/conditionalorder/{fired.pk}/change/" not in listed.content.decode()
    page = client.get(f"/admin/conditions/conditionalorder/{fired.pk}/change/").content.decode()
    child = fired.history.get(event="FIRED").child_id
    assert "FIRED" in page and f"/admin/orders/order/{child}/change/" in page


@pytest.mark.parametrize(("role", "allowed"), [("Operator", True), ("Risk manager", True), ("Compliance", False)])
def test_cancelling_from_admin_goes_through_the_service_for_the_desk_only(market, role_client, role, allowed) -> None:
    parent = create()
    client = role_client(role)
    response = client.post("/admin/conditions/conditionalorder/", {"action": "cancel_selected", "_selected_action": [parent.pk]})
    assert response.status_code in (200, 302)
    parent = ConditionalOrder.objects.get(pk=parent.pk)
    assert (parent.state == "CANCELLED") is allowed
    if allowed:
        event = AuditEvent.objects.get(object_type="conditional_order", object_id=str(parent.pk), action="conditional.state_changed")
        assert event.actor_type == "user" and event.after["state"] == "CANCELLED"
