"""The order desk in admin: queue, order page, and every action going through the services."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from orders.models import Order, OrderStatus
from tests.admin import desk

pytestmark = pytest.mark.django_db(transaction=True)
S = OrderStatus
QUEUE = "/admin/orders/order/?status__exact=PENDING_APPROVAL"


def page(order_id: int) -> str:
    return f"/admin/orders/order/{order_id}/change/"


def url(order_id: int, action: str) -> str:
    return f"/admin/orders/order/{order_id}/{action}/"


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def operator(role_client):
    desk.market()
    return role_client("Operator")


@pytest.fixture
def risk_manager(role_client):
    return role_client("Risk manager")


def test_queue_shows_only_held_orders_with_their_reason(operator) -> None:
    held = desk.held()
    other = desk.resting()
    response = operator.get(QUEUE)
    assert response.status_code == 200
    listed = [o.pk for o in response.context["cl"].result_list]
    assert listed == [held.pk] and other.pk not in listed
    html = response.content.decode()
    assert "待审批委托" in html and "max_order_amount" in html
    assert 'data-status="PENDING_APPROVAL"' in html


def test_queue_queries_do_not_grow_with_the_number_of_orders(operator) -> None:
    desk.held()
    with CaptureQueriesContext(connection) as one:
        operator.get(QUEUE)
    for _ in range(5):
        desk.held()
    with CaptureQueriesContext(connection) as six:
        assert len(operator.get(QUEUE).context["cl"].result_list) == 6
    assert len(six) == len(one), [q["sql"] for q in six]


def test_index_and_header_show_the_queue_count(operator) -> None:
    desk.held()
    desk.held()
    html = operator.get("/admin/").content.decode()
    assert "待审批委托 (2)" in html
    assert "待审批: <strong>2</strong>" in html


def test_list_filters_by_account_status_symbol_strategy_and_date(operator) -> None:
    from tests import factories

    desk.held(strategy="alpha")
    factories.account("acc2")
    factories.instrument("000001.SZ")
    factories.quote("000001.SZ", prev_close="12.00", bid="11.99", ask="12.00")
    desk.held(strategy="beta", account="acc2", symbol="000001.SZ", price="12.00")
    response = operator.get("/admin/orders/order/")
    titles = {str(spec.title) for spec in response.context["cl"].filter_specs}
    assert {"状态", "账户", "策略", "证券", "交易日", "方向"} <= titles, titles
    assert len(operator.get("/admin/orders/order/?strategy=alpha").context["cl"].result_list) == 1
    assert operator.get("/admin/orders/order/?q=600000").status_code == 200


def test_approve_sends_the_order_which_fills_and_the_timeline_tells_who(operator) -> None:
    order = desk.held()
    response = operator.post(url(order.pk, "approve"))
    assert response.status_code == 302 and response["Location"] == page(order.pk)
    order.refresh_from_db()
    assert order.status == S.FILLED and order.filled_quantity == 1000
    assert any("已审批通过" in m for m in texts(response))
    assert AuditEvent.objects.filter(object_type="order", object_id=str(order.pk), action="order.approved",
                                     actor="operator", actor_type="user").exists()
    html = operator.get(page(order.pk)).content.decode()
    assert "时间线" in html and "操作员 operator" in html and "全部成交" in html
    assert "风控结果" in html and "max_order_amount" in html
    assert ">10.01<" in html  # the fill's price in the fills table, at the tick


def test_approve_needs_post(operator) -> None:
    order = desk.held()
    assert operator.get(url(order.pk, "approve")).status_code == 405
    order.refresh_from_db()
    assert order.status == S.PENDING_APPROVAL


def test_a_second_operator_acting_on_the_same_order_gets_a_clean_error(operator, risk_manager) -> None:
    order = desk.held()
    assert operator.post(url(order.pk, "approve")).status_code == 302
    late = risk_manager.post(url(order.pk, "reject"), {"reason": "too big"})
    assert late.status_code == 302
    assert any("其他操作员" in m for m in texts(late)), texts(late)
    order.refresh_from_db()
    assert order.status == S.FILLED


def test_reject_requires_a_reason_on_its_form_page(operator) -> None:
    order = desk.held()
    form = operator.get(url(order.pk, "reject"))
    assert form.status_code == 200 and 'name="reason"' in form.content.decode()
    refused = operator.post(url(order.pk, "reject"), {"reason": "  "})
    assert refused.status_code == 200 and refused.context["form"].errors
    order.refresh_from_db()
    assert order.status == S.PENDING_APPROVAL
    done = operator.post(url(order.pk, "reject"), {"reason": "超出今日计划"})
    assert done.status_code == 302
    order.refresh_from_db()
    assert order.status == S.REJECTED and "超出今日计划" in order.status_reason
    assert order.frozen_amount == 0


def test_approval_recheck_refuses_when_a_reject_verdict_now_stands(operator) -> None:
    order = desk.held()
    desk.rule_becomes_reject()
    operator.post(url(order.pk, "approve"))
    order.refresh_from_db()
    assert order.status == S.REJECTED


def test_override_needs_its_own_permission(operator) -> None:
    order = desk.held()
    desk.rule_becomes_reject()
    assert 'id="override-button"' not in operator.get(page(order.pk)).content.decode()
    response = operator.post(url(order.pk, "override"), {"reason": "I insist"})
    assert response.status_code == 302 and any("权限" in m for m in texts(response))
    order.refresh_from_db()
    assert order.status == S.PENDING_APPROVAL


def test_override_requires_a_reason_and_sends_the_order_despite_a_reject_verdict(operator, risk_manager) -> None:
    order = desk.held()
    desk.rule_becomes_reject()
    assert 'id="override-button"' in risk_manager.get(page(order.pk)).content.decode()
    refused = risk_manager.post(url(order.pk, "override"), {"reason": ""})
    assert refused.status_code == 200 and refused.context["form"].errors
    order.refresh_from_db()
    assert order.status == S.PENDING_APPROVAL
    risk_manager.post(url(order.pk, "override"), {"reason": "客户确认, 经理批准"})
    order.refresh_from_db()
    assert order.status == S.FILLED
    event = AuditEvent.objects.get(object_type="order", object_id=str(order.pk), action="order.risk_overridden")
    assert event.actor == "risk_manager" and event.reason == "客户确认, 经理批准"


def test_cancel_a_resting_order(operator) -> None:
    order = desk.resting()
    assert order.status == S.SUBMITTED
    assert 'name="reason"' in operator.get(url(order.pk, "cancel")).content.decode()
    operator.post(url(order.pk, "cancel"), {"reason": "策略停止"})
    order.refresh_from_db()
    assert order.status == S.CANCELLED


def test_cancel_of_a_finished_order_is_a_clean_error(operator) -> None:
    order = desk.submit(price="10.05", quantity=100)
    order.refresh_from_db()
    assert order.status == S.FILLED
    response = operator.post(url(order.pk, "cancel"), {"reason": ""})
    assert response.status_code == 302 and any("终态" in m for m in texts(response))


def test_modify_replaces_a_resting_order(operator) -> None:
    order = desk.resting()
    form = operator.get(url(order.pk, "modify"))
    assert form.status_code == 200
    assert operator.post(url(order.pk, "modify"), {"price": "", "quantity": ""}).context["form"].errors
    response = operator.post(url(order.pk, "modify"), {"price": "9.95", "quantity": "200"})
    replacement = Order.objects.get(replaces=order)
    assert response.status_code == 302 and response["Location"] == page(replacement.pk)
    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert replacement.quantity == 200 and str(replacement.price) == "9.9500"
    assert replacement.status in (S.SUBMITTED, S.NEW, S.SUBMITTING)


def test_modify_to_a_bad_price_is_refused_with_the_market_rule(operator) -> None:
    order = desk.resting()
    response = operator.post(url(order.pk, "modify"), {"price": "99.00"})
    assert response.status_code == 302 and any("涨跌" in m or "price" in m for m in texts(response))
    order.refresh_from_db()
    assert order.status == S.SUBMITTED


def test_bulk_approve(operator) -> None:
    orders = [desk.held() for _ in range(3)]
    response = operator.post("/admin/orders/order/", {"action": "approve_selected",
                                                      "_selected_action": [o.pk for o in orders]})
    assert response.status_code == 302
    assert {o.status for o in Order.objects.filter(pk__in=[o.pk for o in orders])} == {S.FILLED}
    assert any("3" in m for m in texts(response))


def test_bulk_approve_reports_each_order_that_could_not_be_approved(operator) -> None:
    first, second = desk.held(), desk.held()
    desk.resting()
    operator.post(url(first.pk, "approve"))
    response = operator.post("/admin/orders/order/", {"action": "approve_selected",
                                                      "_selected_action": [first.pk, second.pk]})
    messages = texts(response)
    assert any(f"#{first.pk}" in m for m in messages) and any("1" in m for m in messages)
    second.refresh_from_db()
    assert second.status == S.FILLED


def test_bulk_cancel_confirms_first(operator) -> None:
    orders = [desk.held(), desk.resting()]
    ids = [o.pk for o in orders]
    confirm = operator.post("/admin/orders/order/", {"action": "cancel_selected", "_selected_action": ids})
    assert confirm.status_code == 200 and 'name="post"' in confirm.content.decode()
    assert {o.status for o in Order.objects.filter(pk__in=ids)} == {S.PENDING_APPROVAL, S.SUBMITTED}
    operator.post("/admin/orders/order/", {"action": "cancel_selected", "_selected_action": ids, "post": "yes",
                                           "reason": "收盘前清理"})
    assert {o.status for o in Order.objects.filter(pk__in=ids)} == {S.CANCELLED}


def test_bulk_reject_requires_a_reason(operator) -> None:
    orders = [desk.held(), desk.held()]
    ids = [o.pk for o in orders]
    again = operator.post("/admin/orders/order/", {"action": "reject_selected", "_selected_action": ids,
                                                   "post": "yes", "reason": ""})
    assert again.status_code == 200 and again.context["form"].errors
    operator.post("/admin/orders/order/", {"action": "reject_selected", "_selected_action": ids, "post": "yes",
                                           "reason": "风险过高"})
    assert {o.status for o in Order.objects.filter(pk__in=ids)} == {S.REJECTED}


def test_order_fields_are_read_only_and_orders_cannot_be_added_or_deleted(operator, role_client) -> None:
    order = desk.held()
    admin = role_client("Administrator")
    for client in (operator, admin):
        response = client.get(page(order.pk))
        assert response.status_code == 200
        assert response.context["adminform"].form.fields == {}  # every field read-only
        assert client.get("/admin/orders/order/add/").status_code == 403
        assert client.post(f"/admin/orders/order/{order.pk}/delete/", {"post": "yes"}).status_code == 403
        client.post(page(order.pk), {"status": "FILLED", "quantity": 1})
    order.refresh_from_db()
    assert order.status == S.PENDING_APPROVAL and order.quantity == 1000


def test_compliance_sees_the_order_page_without_any_action(role_client) -> None:
    desk.market()
    order = desk.held()
    compliance = role_client("Compliance")
    html = compliance.get(page(order.pk)).content.decode()
    assert 'id="no-actions"' in html and 'id="approve-button"' not in html
    response = compliance.post(url(order.pk, "approve"))
    assert any("权限" in m for m in texts(response))
    order.refresh_from_db()
    assert order.status == S.PENDING_APPROVAL
    action_form = compliance.get("/admin/orders/order/").context["action_form"]
    assert action_form is None or [name for name, _ in action_form.fields["action"].choices if name] == []
