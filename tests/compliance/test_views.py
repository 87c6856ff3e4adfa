"""The compliance pages in admin: who may open them, search filters and paging, an order's
timeline, an account's day, and exports (CSV and Excel) carrying the search's filters."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import Actor, audit_record
from brokers.adapters.scripted import BrokerScript
from orders.models import Order
from orders.services import OrderInput, account_poll, order_submit
from risk.services import risk_rule_set
from tests import factories
from tests.staff_helpers import staff_member, verified_client

# Transactional: the in-process broker workers run when the order's transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = Actor.api_key("views-tests")


@pytest.fixture(autouse=True)
def roles(transactional_db) -> None:
    from staff.roles import roles_sync

    roles_sync()  # the groups a flush between transactional tests removed


@pytest.fixture
def compliance_client(transactional_db):
    return verified_client(staff_member("li.compliance", "Compliance"))


def submit(client_order_id: str, *, symbol: str = "600000.SH", quantity: int = 1000) -> Order:
    body = factories.order_body(client_order_id=client_order_id, symbol=symbol, quantity=quantity)
    return order_submit(OrderInput(**body), actor=ACTOR).order


@pytest.fixture
def trail(script: BrokerScript) -> dict[str, Order]:
    """Two orders in two symbols; the first filled in two parts."""
    factories.quote("000001.SZ", prev_close="10.00")
    risk_rule_set(code="max_order_amount", params={"max_amount": "1000000"}, action="WARN", actor=ACTOR)
    first = submit("c-1")
    first.refresh_from_db()
    script.fill(first.broker_order_id, 400, Decimal("10.00"))
    script.fill(first.broker_order_id, 600, Decimal("9.99"))
    account_poll(account_id=first.account_id)
    second = submit("c-2", symbol="000001.SZ", quantity=500)
    return {"first": first, "second": second}


def ids_on_page(response) -> list[int]:
    return [int(x) for x in re.findall(r"<tr><td>(\d+)</td>", response.content.decode())]


@pytest.mark.parametrize("role,allowed", [("Operator", False), ("Risk manager", False), ("Compliance", True),
                                          ("Administrator", True)])
def test_only_compliance_and_administrators_open_the_search(role: str, allowed: bool) -> None:
    client = verified_client(staff_member(role.lower().replace(" ", "_"), role))
    assert (client.get("/admin/compliance/compliancelog/").status_code == 200) is allowed
    assert (client.get("/admin/compliance/compliancelog/export.csv").status_code == 200) is allowed
    assert (client.get("/admin/compliance/compliancelog/replay/").status_code == 200) is allowed


def test_each_filter_narrows_the_search(compliance_client, trail) -> None:
    first, second = trail["first"], trail["second"]
    url = "/admin/compliance/compliancelog/"
    by_order = ids_on_page(compliance_client.get(url, {"order": first.pk}))
    assert by_order and set(by_order) == set(AuditEvent.objects.filter(object_type="order", object_id=str(first.pk))
                                             .values_list("id", flat=True))
    assert by_order == sorted(by_order, reverse=True)  # newest first
    by_symbol = ids_on_page(compliance_client.get(url, {"symbol": "000001.SZ"}))
    assert set(by_symbol) == set(AuditEvent.objects.filter(object_type="order", object_id=str(second.pk))
                                 .values_list("id", flat=True))
    fills = ids_on_page(compliance_client.get(url, {"action": "order.filled"}))
    assert len(fills) == 2
    every_order_event = ids_on_page(compliance_client.get(url, {"action": "order.", "account": "acc1"}))
    assert set(fills) < set(every_order_event)
    assert ids_on_page(compliance_client.get(url, {"actor": "views-tests", "action": "order.created"})) == sorted(
        AuditEvent.objects.filter(action="order.created").values_list("id", flat=True), reverse=True)
    tomorrow = (timezone.localdate() + timezone.timedelta(days=1)).isoformat()
    assert ids_on_page(compliance_client.get(url, {"since": tomorrow})) == []
    assert ids_on_page(compliance_client.get(url, {"until": tomorrow, "account": "nobody"})) == []
    bad = compliance_client.get(url, {"since": "yesterday"})
    assert bad.status_code == 200 and "YYYY-MM-DD" in bad.content.decode()


def test_a_common_symbol_is_found_by_walking_the_log(compliance_client, trail, monkeypatch) -> None:
    # With more orders than SYMBOL_WALK_FROM the search walks the log instead of probing each order.
    url = "/admin/compliance/compliancelog/"
    probed = ids_on_page(compliance_client.get(url, {"symbol": "600000.SH"}))
    monkeypatch.setattr("compliance.selectors.SYMBOL_WALK_FROM", 1)
    walked = ids_on_page(compliance_client.get(url, {"symbol": "600000.SH"}))
    assert walked == probed and set(walked) == set(
        AuditEvent.objects.filter(object_type="order", object_id=str(trail["first"].pk)).values_list("id", flat=True))
    audit_record(actor=ACTOR, action="test.event", object_type="order", object_id="not-a-number", account="acc1")
    assert ids_on_page(compliance_client.get(url, {"symbol": "600000.SH"})) == walked  # skipped, not a failed cast


def test_pages_go_back_by_key_without_counting(compliance_client) -> None:
    for n in range(250):
        audit_record(actor=ACTOR, action="test.event", object_type="thing", object_id=n, account="acc9")
    url = "/admin/compliance/compliancelog/"
    seen: list[int] = []
    response = compliance_client.get(url, {"account": "acc9"})
    while True:
        seen += ids_on_page(response)
        older = re.search(r'href="(\?[^"]*before=\d+)"', response.content.decode())
        if not older:
            break
        response = compliance_client.get(url + older.group(1).replace("&amp;", "&"))
    assert seen == sorted(AuditEvent.objects.filter(account="acc9").values_list("id", flat=True), reverse=True)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        compliance_client.get(url, {"account": "acc9"})
    audit_reads = [q["sql"] for q in queries.captured_queries if "audit_auditevent" in q["sql"]]
    assert audit_reads and not any("COUNT(" in sql.upper() for sql in audit_reads)


def test_an_order_timeline_has_its_events_verdicts_fills_and_cash_in_order(compliance_client, trail) -> None:
    first = trail["first"]
    page = compliance_client.get(f"/admin/compliance/compliancelog/order/{first.pk}/").content.decode()
    created = page.index("order.created")
    verdict = page.index("max_order_amount")
    freeze = page.index("FREEZE")
    fills = [m.start() for m in re.finditer(r"fill #\d+", page)]
    assert len(fills) == 2
    filled_status = page.index("→ FILLED")
    assert created < verdict < fills[0] < fills[1] and freeze < fills[0] < filled_status
    assert compliance_client.get("/admin/compliance/compliancelog/order/999999/").status_code == 404


def test_an_account_day_shows_its_events_and_figures(compliance_client, trail) -> None:
    today = timezone.localdate().isoformat()
    page = compliance_client.get(f"/admin/compliance/compliancelog/account/acc1/{today}/").content.decode()
    assert "order.created" in page and "cash.deposit" in page
    assert re.search(r"<th>成交</th><td>2<", page)
    assert re.search(r"<th>买入</th><td>9994.00<", page)  # 400 x 10.00 + 600 x 9.99
    compliance_client.post("/staff/language/", {"language": "en"})
    page = compliance_client.get(f"/admin/compliance/compliancelog/account/acc1/{today}/").content.decode()
    assert re.search(r"<th>Fills</th><td>2<", page) and re.search(r"<th>Bought</th><td>9994.00<", page)


def test_the_csv_export_has_the_filtered_rows_and_is_audited(compliance_client, trail) -> None:
    first = trail["first"]
    response = compliance_client.get("/admin/compliance/compliancelog/export.csv", {"order": first.pk})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:5] == ["id", "occurred_at", "actor_type", "actor", "action"]
    expected = AuditEvent.objects.filter(object_type="order", object_id=str(first.pk)).order_by("-id")
    assert [int(r[0]) for r in rows[1:]] == list(expected.values_list("id", flat=True))
    assert {r[6] for r in rows[1:]} == {str(first.pk)}
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor == "li.compliance" and exported.after["filters"] == {"order": str(first.pk)}


def test_the_excel_export_is_a_workbook_of_the_same_rows(compliance_client, trail) -> None:
    response = compliance_client.get("/admin/compliance/compliancelog/export.xlsx", {"action": "order.filled"})
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    book = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert "xl/workbook.xml" in book.namelist()
    sheet = book.read("xl/worksheets/sheet1.xml").decode()
    assert sheet.count("<row>") == 3  # the header and the two fills
    assert sheet.count(">order.filled<") == 2


def test_the_replay_page_checks_the_stored_state(compliance_client, trail) -> None:
    page = compliance_client.get("/admin/compliance/compliancelog/replay/", {"account": "acc1", "check": "1"}).content.decode()
    assert 'id="replay-ok"' in page and "600000.SH" in page
    from trading.models import Account

    Account.objects.filter(name="acc1").update(frozen=0)
    page = compliance_client.get("/admin/compliance/compliancelog/replay/", {"account": "acc1", "check": "1"}).content.decode()
    assert 'id="replay-differences"' in page and "frozen" in page


BILINGUAL_PAIR = re.compile(r"[\u4e00-\u9fff]+ ?/ ?[A-Za-z]")


def test_every_compliance_page_speaks_one_language_at_a_time(compliance_client, trail) -> None:
    """Each page in zh-hans and in en: its own heading in that language, and no "中文 / English" pair."""
    today = timezone.localdate().isoformat()
    base = "/admin/compliance/compliancelog/"
    pages = {  # url -> (a heading in Chinese, the same in English)
        base: ("审计查询", "Audit search"),
        f"{base}?order={trail['first'].pk}": ("事件类型", "Event type"),
        f"{base}order/{trail['first'].pk}/": (f"委托 #{trail['first'].pk} 时间线", f"Order #{trail['first'].pk} timeline"),
        f"{base}account/acc1/{today}/": ("日终资金", "Cash at close"),
        f"{base}replay/?account=acc1": ("未结委托", "Open orders"),
        f"{base}replay/?account=acc1&check=1": ("回放与当前状态一致", "The replay matches the stored state"),
        f"{base}replay/?account=nobody": ("账户不存在", "No account"),
        f"{base}?since=yesterday": ("日期时间格式应为", "expected YYYY-MM-DD HH:MM"),
        f"{base}reports/risk/": ("越权放行的委托", "Overridden orders, and what became of them"),
        f"{base}reports/daily/": ("按策略", "By strategy"),
        f"{base}reports/strategies/": ("策略效果", "Strategy effectiveness"),
        f"{base}reports/compliance/": ("瞬时撤单", "Instant cancels"),
    }
    for language in ("zh-hans", "en"):
        compliance_client.post("/staff/language/", {"language": language})
        for url, (chinese, english) in pages.items():
            response = compliance_client.get(url)
            assert response.status_code == 200, url
            page = response.content.decode()
            assert not BILINGUAL_PAIR.search(page), (language, url, BILINGUAL_PAIR.findall(page))
            if language == "en":
                assert english in page and chinese not in page, (url, english)
            else:
                assert chinese in page and english not in page, (url, chinese)
