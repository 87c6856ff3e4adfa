"""In a real browser, the CSP blocks nothing the admin and the API docs need (issue 8, item 16)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import browser, log_in, page  # noqa: F401
from tests.staff_helpers import staff_member

pytestmark = pytest.mark.django_db(transaction=True)


def _watch(page) -> list[str]:  # noqa: F811
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: problems.append("external " + r.url)
            if not r.url.startswith(("http://localhost", "http://127.0.0.1", "data:")) else None)
    return problems


def test_swagger_ui_renders_under_the_csp_from_our_static_files(page) -> None:  # noqa: F811
    problems = _watch(page)
    page.goto("/api/v1/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)
    assert page.locator(".swagger-ui .opblock").count() > 5
    assert problems == []


def test_the_admin_runs_under_the_csp(page) -> None:  # noqa: F811
    member = staff_member("cspop", "Operator")
    problems = _watch(page)
    log_in(page, member)
    page.goto("/admin/orders/order/")
    page.wait_for_selector("#changelist")
    assert problems == []
