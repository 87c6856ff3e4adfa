"""The operator's day in a real browser (headless Chromium): log in with a one-time password, find a
held order in the queue, approve it and watch it fill; compliance looks but cannot act; an override
needs a reason. Screenshots of the queue and the order page go to artifacts/screenshots/.
"""

from __future__ import annotations

import re

import pytest

from orders.models import OrderStatus
from tests.admin import desk
from tests.browser.conftest import log_in, screenshot
from tests.staff_helpers import staff_member

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def held_orders():
    desk.market()
    first = desk.held(strategy="alpha")
    second = desk.held(quantity=2000, price="10.03", strategy="beta")
    desk.resting()
    return first, second


def test_operator_logs_in_with_totp_approves_a_held_order_and_sees_it_filled(page, held_orders) -> None:
    first, _ = held_orders
    operator = staff_member("zhang.wei", "Operator")
    log_in(page, operator)
    badge = page.locator("a.tbo-queue")
    assert "2" in badge.inner_text()
    screenshot(page, "01_index")

    badge.click()
    page.wait_for_url(re.compile(r".*status__exact=PENDING_APPROVAL.*"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert page.locator("#result_list").get_by_text("max_order_amount", exact=False).count() >= 1
    screenshot(page, "02_order_queue")

    page.locator("#result_list tbody tr").filter(has_text="alpha").locator("th a").first.click()
    page.wait_for_selector("#order-timeline")
    assert page.locator("#risk-verdicts").get_by_text("max_order_amount").count() == 1
    screenshot(page, "03_order_page_held")

    page.click("#approve-button")
    page.wait_for_selector(".messagelist .success")
    assert "已审批通过" in page.locator(".messagelist").inner_text()
    status = page.locator("#order-actions [data-status]").get_attribute("data-status")
    assert status == OrderStatus.FILLED
    timeline = page.locator("#order-timeline").inner_text()
    assert "zhang.wei" in timeline and "全部成交" in timeline
    fills = page.locator("#order-fills tbody tr")
    assert fills.count() == 1 and "10.01" in fills.inner_text() and "10.0100" not in fills.inner_text()
    screenshot(page, "04_order_page_filled")

    first.refresh_from_db()
    assert first.status == OrderStatus.FILLED and first.filled_quantity == 1000


def test_compliance_can_read_but_not_approve(page, held_orders) -> None:
    first, _ = held_orders
    log_in(page, staff_member("li.na", "Compliance"))
    page.goto(f"/admin/orders/order/{first.pk}/change/")
    page.wait_for_selector("#order-timeline")
    assert page.locator("#approve-button").count() == 0
    assert page.locator("#no-actions").is_visible()
    screenshot(page, "05_order_page_compliance")

    page.goto("/admin/orders/order/?status__exact=PENDING_APPROVAL")
    options = page.locator("select[name=action] option").all_inner_texts() if page.locator("select[name=action]").count() else []
    assert not any("审批" in option for option in options)
    # the audit trail is open to compliance
    page.goto("/admin/audit/auditevent/")
    assert page.locator("#result_list tbody tr").count() > 0
    screenshot(page, "06_audit_trail")
    first.refresh_from_db()
    assert first.status == OrderStatus.PENDING_APPROVAL


def test_override_requires_a_reason(page, held_orders) -> None:
    first, _ = held_orders
    desk.rule_becomes_reject()
    log_in(page, staff_member("wang.fang", "Risk manager"))
    page.goto(f"/admin/orders/order/{first.pk}/change/")
    page.click("#override-button")
    page.wait_for_selector("textarea[name=reason]")
    page.locator("textarea[name=reason]").evaluate("el => el.removeAttribute('required')")  # let the server judge
    page.click("input[type=submit].default")
    page.wait_for_selector(".errorlist")
    assert "必须填写原因" in page.locator(".errorlist").inner_text()
    screenshot(page, "07_override_reason_required")
    first.refresh_from_db()
    assert first.status == OrderStatus.PENDING_APPROVAL

    page.fill("textarea[name=reason]", "客户书面确认, 风控经理批准")
    page.click("input[type=submit].default")
    page.wait_for_selector(".messagelist .success")
    assert page.locator("#order-actions [data-status]").get_attribute("data-status") == OrderStatus.FILLED
    assert "客户书面确认" in page.locator("#order-timeline").inner_text()
    first.refresh_from_db()
    assert first.status == OrderStatus.FILLED


def test_language_switch_in_the_header(page, held_orders) -> None:
    log_in(page, staff_member("chen.jie", "Operator"))
    page.click(".tbo-lang button[value=en]")
    page.wait_for_load_state()
    assert "pending approval" in page.locator("#user-tools").inner_text().lower()
    page.goto("/admin/orders/order/?status__exact=PENDING_APPROVAL")
    screenshot(page, "08_order_queue_en")
    page.click(".tbo-lang button[value=zh-hans]")
    page.wait_for_load_state()
    assert "待审批" in page.locator("#user-tools").inner_text()


def test_risk_manager_halts_an_account_and_an_administrator_issues_a_key(page, held_orders) -> None:
    from trading.models import Account, ApiKey

    account = Account.objects.get(name="acc1")
    log_in(page, staff_member("zhao.min", "Risk manager"))
    page.goto(f"/admin/trading/account/{account.pk}/change/")
    page.wait_for_selector("#account-balance")
    screenshot(page, "09_account_page")
    page.click("#state-halt")
    page.fill("textarea[name=reason]", "交易所系统异常, 暂停下单")
    screenshot(page, "10_halt_confirmation")
    page.click("input[type=submit].default")
    page.wait_for_selector(".messagelist .success")
    assert page.locator("#account-actions [data-status]").get_attribute("data-status") == "HALTED"
    account.refresh_from_db()
    assert account.trading_state == "HALTED"

    page.context.clear_cookies()
    log_in(page, staff_member("sun.li", "Administrator"))
    page.goto("/admin/trading/apikey/add/")
    page.fill("#id_name", "momentum-1")
    page.check(f"input[name=accounts][value='{account.pk}']")
    page.check("input[name=scope][value=trade]")
    page.click("input[type=submit].default")
    raw = page.locator("#raw-key").inner_text().strip()
    assert raw.startswith("tbo_")
    screenshot(page, "11_api_key_issued")
    assert ApiKey.objects.get(name="momentum-1").key_hash != raw
    page.goto("/admin/trading/apikey/")
    assert raw not in page.content()
    screenshot(page, "12_api_keys")
