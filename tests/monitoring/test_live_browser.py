"""The dashboard and the order desk in headless Chromium, served by daphne (tests/monitoring/conftest.py):
orders placed over the REST API appear and change state without a reload. Screenshots go to
artifacts/screenshots/live_*.png.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from audit.services import Actor
from orders.models import OrderStatus
from tests import factories
from tests.admin import desk
from tests.browser.conftest import browser, log_in, screenshot  # noqa: F401 - the browser fixture
from tests.staff_helpers import staff_member

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator_page(browser, asgi_server):  # noqa: F811 - the browser fixture imported above
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN", base_url=asgi_server.origin)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    context.on("response", lambda response: errors.append(f"{response.status} {response.url}") if response.status >= 400 else None)
    yield page, errors
    context.close()


def _post_order(server, key: str, **fields) -> dict:
    body = {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT", "price": "10.05",
            "quantity": 1000, **fields}
    status, answer = server.request("POST", "/api/v1/orders", body, {"Authorization": f"Bearer {key}"})
    assert status == 201, answer
    return answer


def test_orders_placed_over_the_api_stream_onto_the_dashboard_and_the_order_desk(asgi_server, operator_page):
    from orders.review import order_approve
    from orders.services import outbox_relay_once

    page, errors = operator_page
    desk.market()  # acc1, 600000.SH at 10.00/10.01, orders over 5,000 CNY held for review
    key = factories.api_key("strategy", accounts=["acc1"])
    log_in(page, staff_member("zhang.wei", "Operator"))

    page.goto("/monitoring/dashboard/")
    page.wait_for_selector("#live-status[data-state=live]")
    page.evaluate("window.__notReloaded = true")
    assert page.locator("#orders tbody tr").count() == 0
    screenshot(page, "live_01_dashboard_empty")

    held = _post_order(asgi_server, key, client_order_id="held-1")
    row = page.locator(f"#orders tr[data-order-id='{held['id']}']")
    row.wait_for()
    assert row.get_attribute("data-status") == OrderStatus.PENDING_APPROVAL
    assert "待审批" in row.inner_text()
    page.locator("#risk-events li", has_text="max_order_amount").first.wait_for()

    small = _post_order(asgi_server, key, client_order_id="small-1", price="10.01", quantity=100)
    page.locator(f"#orders tr[data-order-id='{small['id']}'][data-status=NEW]").wait_for()
    outbox_relay_once()  # the relay and a worker, here: the order goes to the paper broker and fills
    page.locator(f"#orders tr[data-order-id='{small['id']}'][data-status=FILLED]").wait_for()
    page.locator("#positions tr[data-symbol='600000.SH']").wait_for()
    assert "100" in page.locator("#positions tr[data-symbol='600000.SH']").inner_text()
    expect(page.locator("#total-cash")).not_to_have_text("1,000,000.00")  # the buy's cash went out
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "live_02_dashboard_orders_streamed")

    # the order desk: the held-orders queue
    desk_page = page.context.new_page()
    desk_page.goto("/admin/orders/order/?status__exact=PENDING_APPROVAL")
    desk_page.locator("body[data-live-state=live]").wait_for()
    desk_page.evaluate("window.__notReloaded = true")
    assert desk_page.locator("#result_list tbody tr").count() == 1
    second = _post_order(asgi_server, key, client_order_id="held-2", quantity=2000, strategy="beta")
    new_row = desk_page.locator(f"#result_list tr:has(input.action-select[value='{second['id']}'])")
    new_row.wait_for()
    assert new_row.locator("[data-status]").get_attribute("data-status") == OrderStatus.PENDING_APPROVAL
    assert desk_page.locator("#result_list tbody tr").count() == 2
    screenshot(desk_page, "live_03_desk_new_held_order")

    order_approve(order_id=held["id"], actor=Actor.user("li.si"))  # another operator, elsewhere
    first_row = desk_page.locator(f"#result_list tr:has(input.action-select[value='{held['id']}'])")
    expect(first_row.locator("[data-status]")).to_have_attribute("data-status", OrderStatus.FILLED)
    assert "全部成交" in first_row.inner_text()
    assert desk_page.evaluate("window.__notReloaded") is True
    screenshot(desk_page, "live_04_desk_state_changed")

    page.bring_to_front()
    page.locator(f"#orders tr[data-order-id='{held['id']}'][data-status=FILLED]").wait_for()
    page.locator(f"#orders tr[data-order-id='{second['id']}']").wait_for()
    screenshot(page, "live_05_dashboard_after_approval")
    assert not [e for e in errors if "favicon" not in e], errors


def test_the_dashboard_speaks_english_and_refuses_a_role_without_order_view(asgi_server, operator_page):
    page, _ = operator_page
    desk.market()
    member = staff_member("amy", "Operator")
    log_in(page, member)
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": asgi_server.origin}])
    page.goto("/monitoring/dashboard/")
    page.wait_for_selector("#live-status[data-state=live]")
    assert "Today's orders" in page.locator("#live-dashboard").inner_text()
    assert "Intraday P&L" in page.locator("#live-dashboard").inner_text()
    screenshot(page, "live_06_dashboard_en")


def test_staff_without_a_role_that_views_orders_get_no_dashboard(asgi_server, operator_page):
    page, _ = operator_page
    log_in(page, staff_member("no.role", None))
    assert page.goto("/monitoring/dashboard/").status == 403
    assert page.goto("/monitoring/snapshot/").status == 403
