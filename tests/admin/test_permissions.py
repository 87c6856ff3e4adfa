"""The whole permission matrix: every role x every admin action, and every API operation.

Each cell really performs the action (a button POST, a bulk action, a page
view) and then looks at the effect in the database or the status code, so a
cell is "allowed" only when the action took effect. The expected tables are
written out; any difference fails, an unexpected allow first of all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from orders.models import Order, OrderStatus
from staff.roles import ADMINISTRATOR, COMPLIANCE, OPERATOR, RISK_MANAGER
from tests import factories
from tests.admin import desk
from tests.staff_helpers import staff_member, verified_client
from trading.models import Account, ApiKey, Instrument, TradingState

pytestmark = pytest.mark.django_db

NO_ROLE = "(staff, no role)"
ROLES = (NO_ROLE, OPERATOR, RISK_MANAGER, COMPLIANCE, ADMINISTRATOR)
Y, N = True, False

# action                           no role  Operator  Risk mgr  Compliance  Administrator
EXPECTED_ADMIN: dict[str, tuple[bool, ...]] = {
    "open the admin":               (Y,      Y,        Y,        Y,          Y),
    "view orders":                  (N,      Y,        Y,        Y,          Y),
    "view an order":                (N,      Y,        Y,        Y,          Y),
    "approve an order":             (N,      Y,        Y,        N,          Y),
    "reject an order":              (N,      Y,        Y,        N,          Y),
    "override risk control":        (N,      N,        Y,        N,          Y),
    "cancel an order":              (N,      Y,        Y,        N,          Y),
    "modify an order":              (N,      Y,        Y,        N,          Y),
    "bulk approve":                 (N,      Y,        Y,        N,          Y),
    "bulk reject":                  (N,      Y,        Y,        N,          Y),
    "bulk override":                (N,      N,        Y,        N,          Y),
    "bulk cancel":                  (N,      Y,        Y,        N,          Y),
    "change an order's fields":     (N,      N,        N,        N,          N),
    "delete an order":              (N,      N,        N,        N,          N),
    "view fills":                   (N,      Y,        Y,        Y,          Y),
    "view accounts":                (N,      Y,        Y,        Y,          Y),
    "view positions":               (N,      Y,        Y,        Y,          Y),
    "view the cash ledger":         (N,      Y,        Y,        Y,          Y),
    "change an account's cash":     (N,      N,        N,        N,          N),
    "halt an account":              (N,      N,        Y,        N,          Y),
    "bulk set trading state":       (N,      N,        Y,        N,          Y),
    "edit trading permissions":     (N,      N,        Y,        N,          Y),
    "view risk assessments":        (N,      Y,        Y,        Y,          Y),
    "record a risk assessment":     (N,      N,        Y,        N,          Y),
    "view instruments":             (N,      Y,        Y,        Y,          Y),
    "change an instrument":         (N,      N,        N,        N,          N),
    "view API keys":                (N,      Y,        Y,        Y,          Y),
    "issue an API key":             (N,      N,        N,        N,          Y),
    "change an API key":            (N,      N,        N,        N,          Y),
    "revoke an API key":            (N,      N,        N,        N,          Y),
    "delete an API key":            (N,      N,        N,        N,          N),
    "view discrepancies":           (N,      Y,        Y,        Y,          Y),
    "resolve a discrepancy":        (N,      N,        Y,        N,          Y),
    "reconcile an account":         (N,      Y,        Y,        N,          Y),
    "change a discrepancy":         (N,      N,        N,        N,          N),
    "view the audit trail":         (N,      N,        Y,        Y,          Y),
    "change an audit event":        (N,      N,        N,        N,          N),
    "view risk rules":              (N,      Y,        Y,        Y,          Y),
    "view a risk rule's history":   (N,      Y,        Y,        Y,          Y),
    "add a risk rule":              (N,      N,        Y,        N,          Y),
    "change a risk rule":           (N,      N,        Y,        N,          Y),
    "delete a risk rule":           (N,      N,        Y,        N,          Y),
    "bulk disable risk rules":      (N,      N,        Y,        N,          Y),
    "revert a risk rule (history)": (N,      N,        Y,        N,          Y),
    "view restricted symbols":      (N,      Y,        Y,        Y,          Y),
    "add a restricted symbol":      (N,      N,        Y,        N,          Y),
    "view risk events":             (N,      Y,        Y,        Y,          Y),
    "add a risk event":             (N,      N,        N,        N,          N),
    "view the global state":        (N,      Y,        Y,        Y,          Y),
    "set the global state":         (N,      N,        Y,        N,          Y),
    "removed risk review queue":    (N,      N,        N,        N,          N),
    "removed risk account states":  (N,      N,        N,        N,          N),
    "view users":                   (N,      N,        N,        Y,          Y),
    "add a user":                   (N,      N,        N,        N,          Y),
    "view authenticator secrets":   (N,      N,        N,        N,          Y),
}


@dataclass
class World:
    account: Account
    client: Any
    user: Any

    def held(self) -> Order:
        return desk.held()

    def status(self, order: Order) -> str:
        order.refresh_from_db()
        return order.status


def _ok(response: Any) -> bool:
    return response.status_code == 200


def _changed(order: Order, world: World) -> bool:
    return world.status(order) != OrderStatus.PENDING_APPROVAL


def _button(action: str, data: dict[str, str] | None = None) -> Callable[[World], bool]:
    def run(world: World) -> bool:
        order = world.held()
        world.client.post(f"/admin/orders/order/{order.pk}/{action}/", data or {})
        return _changed(order, world)
    return run


def _bulk(action: str, data: dict[str, str] | None = None) -> Callable[[World], bool]:
    def run(world: World) -> bool:
        order = world.held()
        world.client.post("/admin/orders/order/", {"action": action, "_selected_action": [order.pk], "post": "yes",
                                                   **(data or {})})
        return _changed(order, world)
    return run


def _override_button(world: World) -> bool:
    order = world.held()
    desk.rule_becomes_reject()
    world.client.post(f"/admin/orders/order/{order.pk}/override/", {"reason": "matrix"})
    return _changed(order, world)


def _override_bulk(world: World) -> bool:
    order = world.held()
    desk.rule_becomes_reject()
    world.client.post("/admin/orders/order/", {"action": "override_selected", "_selected_action": [order.pk],
                                               "post": "yes", "reason": "matrix"})
    return _changed(order, world)


def _modify(world: World) -> bool:
    order = world.held()
    world.client.post(f"/admin/orders/order/{order.pk}/modify/", {"price": "10.04", "quantity": "1000"})
    return Order.objects.filter(replaces=order).exists()


def _change_order(world: World) -> bool:
    order = world.held()
    world.client.post(f"/admin/orders/order/{order.pk}/change/", {"quantity": "1", "status": "FILLED"})
    order.refresh_from_db()
    return order.quantity != 1000 or order.status != OrderStatus.PENDING_APPROVAL


def _delete_order(world: World) -> bool:
    order = world.held()
    world.client.post(f"/admin/orders/order/{order.pk}/delete/", {"post": "yes"})
    return not Order.objects.filter(pk=order.pk).exists()


def _change_cash(world: World) -> bool:
    world.client.post(f"/admin/trading/account/{world.account.pk}/change/", {"cash": "1", "name": "acc1"})
    world.account.refresh_from_db()
    return str(world.account.cash) != "1000000.00"


def _halt(world: World) -> bool:
    world.client.post(f"/admin/trading/account/{world.account.pk}/trading-state/halt/",
                      {"state": "HALTED", "reason": "matrix"})
    world.account.refresh_from_db()
    return world.account.trading_state == TradingState.HALTED


def _bulk_state(world: World) -> bool:
    world.client.post("/admin/trading/account/", {"action": "set_trading_state_selected", "post": "yes",
                                                  "_selected_action": [world.account.pk], "state": "REDUCING",
                                                  "reason": "matrix"})
    world.account.refresh_from_db()
    return world.account.trading_state == TradingState.REDUCING


def _change_instrument(world: World) -> bool:
    instrument = Instrument.objects.get(code="600000")
    world.client.post(f"/admin/trading/instrument/{instrument.pk}/change/", {"name": "HACKED", "code": "600000",
                                                                             "exchange": "SH", "board": "MAIN"})
    instrument.refresh_from_db()
    return instrument.name == "HACKED"


def _key(world: World) -> ApiKey:
    factories.api_key("matrix-key", accounts=["acc1"])
    return ApiKey.objects.get(name="matrix-key")


def _issue_key(world: World) -> bool:
    world.client.post("/admin/trading/apikey/add/", {"name": "new-key", "accounts": [world.account.pk],
                                                     "scope": "trade", "rate_limit_per_second": "10"})
    return ApiKey.objects.filter(name="new-key").exists()


def _change_key(world: World) -> bool:
    key = _key(world)
    world.client.post(f"/admin/trading/apikey/{key.pk}/change/", {"accounts": [world.account.pk], "can_trade": "on",
                                                                   "rate_limit_per_second": "7"})
    key.refresh_from_db()
    return key.rate_limit_per_second == 7


def _revoke_key(world: World) -> bool:
    key = _key(world)
    world.client.post("/admin/trading/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk],
                                                 "post": "yes", "reason": "matrix"})
    key.refresh_from_db()
    return not key.is_active


def _delete_key(world: World) -> bool:
    key = _key(world)
    world.client.post(f"/admin/trading/apikey/{key.pk}/delete/", {"post": "yes"})
    return not ApiKey.objects.filter(pk=key.pk).exists()


def _change_audit(world: World) -> bool:
    from audit.models import AuditEvent

    event = AuditEvent.objects.order_by("id").first()
    assert event is not None
    world.client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"reason": "rewritten"})
    world.client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"})
    after = AuditEvent.objects.filter(pk=event.pk).first()
    return after is None or after.reason == "rewritten"


def _discrepancy(world: World) -> Any:
    from orders.models import Discrepancy
    from trading.clock import now

    return Discrepancy.objects.create(account=world.account, kind="CASH", object_ref="cash", ours="1000000.00",
                                      theirs="1000001.00", first_seen_at=now(), last_seen_at=now())


def _resolve_discrepancy(world: World) -> bool:
    row = _discrepancy(world)
    world.client.post("/admin/orders/discrepancy/", {"action": "resolve_selected", "_selected_action": [row.pk],
                                                     "post": "yes", "reason": "matrix"})
    row.refresh_from_db()
    return row.status == "RESOLVED"


def _change_discrepancy(world: World) -> bool:
    row = _discrepancy(world)
    world.client.post(f"/admin/orders/discrepancy/{row.pk}/change/", {"status": "RESOLVED", "resolution": "matrix"})
    world.client.post(f"/admin/orders/discrepancy/{row.pk}/delete/", {"post": "yes"})
    return not type(row).objects.filter(pk=row.pk, status="OPEN").exists()


def _reconcile_account(world: World) -> bool:
    """The paper broker's books differ by 1 CNY: a reconciliation that ran records it."""
    from django.db.models import F

    from brokers.models import PaperAccount
    from orders.models import Discrepancy

    PaperAccount.objects.filter(account_name="acc1").update(cash=F("cash") + 1)
    world.client.post("/admin/trading/account/", {"action": "reconcile_selected", "_selected_action": [world.account.pk]})
    return Discrepancy.objects.filter(account=world.account, object_ref="cash").exists()


def _get(path: str) -> Callable[[World], bool]:
    return lambda world: _ok(world.client.get(path))


def _view_order(world: World) -> bool:
    return _ok(world.client.get(f"/admin/orders/order/{world.held().pk}/change/"))


RULE_FORM = {"code": "max_order_amount", "account": "", "enabled": "on", "action": "REVIEW",
             "params": '{"max_amount": "5000"}', "note": ""}


def _rule() -> Any:
    """The global max_order_amount rule desk.market() made (action REVIEW, limit 5000)."""
    from risk.models import RiskRule

    return RiskRule.objects.get(code="max_order_amount", account__isnull=True)


def _add_rule(world: World) -> bool:
    from risk.models import RiskRule

    world.client.post("/admin/risk/riskrule/add/", {**RULE_FORM, "code": "max_daily_amount",
                                                    "params": '{"max_amount": "900000"}'})
    return RiskRule.objects.filter(code="max_daily_amount").exists()


def _change_rule(world: World) -> bool:
    rule = _rule()
    world.client.post(f"/admin/risk/riskrule/{rule.pk}/change/", {**RULE_FORM, "note": "matrix"})
    rule.refresh_from_db()
    return rule.note == "matrix"


def _delete_rule(world: World) -> bool:
    from risk.models import RiskRule

    rule = _rule()
    world.client.post(f"/admin/risk/riskrule/{rule.pk}/delete/", {"post": "yes"})
    return not RiskRule.objects.filter(pk=rule.pk).exists()


def _disable_rules(world: World) -> bool:
    rule = _rule()
    world.client.post("/admin/risk/riskrule/", {"action": "disable_rules", "_selected_action": [rule.pk]})
    rule.refresh_from_db()
    return not rule.enabled


def _revert_rule(world: World) -> bool:
    """POST to a version's page of django-simple-history: it saves, so it needs change permission."""
    rule = _rule()
    version = rule.history.latest("history_date")
    world.client.post(f"/admin/risk/riskrule/{rule.pk}/history/{version.history_id}/", {**RULE_FORM, "note": "matrix"})
    rule.refresh_from_db()
    return rule.note == "matrix"


def _add_restriction(world: World) -> bool:
    from risk.models import RestrictedSymbol

    instrument = Instrument.objects.get(code="600000")
    world.client.post("/admin/risk/restrictedsymbol/add/", {"instrument": instrument.pk, "account": "", "side": "BOTH",
                                                           "reason": "matrix", "valid_from": "", "valid_to": ""})
    return RestrictedSymbol.objects.filter(reason="matrix").exists()


def _add_risk_event(world: World) -> bool:
    from risk.models import RiskEvent

    world.client.post("/admin/risk/riskevent/add/", {"rule": "matrix", "level": "info", "message": "matrix"})
    return RiskEvent.objects.filter(rule="matrix").exists()


def _set_global_state(world: World) -> bool:
    from risk.models import RiskControl

    control, _ = RiskControl.objects.get_or_create(pk=RiskControl.SINGLETON_ID)
    world.client.post("/admin/risk/riskcontrol/", {"action": "set_global_trading_state", "post": "yes",
                                                   "_selected_action": [control.pk], "state": "HALTED",
                                                   "reason": "matrix"})
    control.refresh_from_db()
    return control.trading_state == TradingState.HALTED


def _edit_permissions(world: World) -> bool:
    world.client.post(f"/admin/trading/account/{world.account.pk}/permissions/",
                      {"owner": "", "perm_BSE": "2025-06-30", "reason": "matrix"})
    world.account.refresh_from_db()
    return "BSE" in world.account.trading_permissions and len(world.account.trading_permissions) == 1


def _record_assessment(world: World) -> bool:
    from trading.models import RiskAssessment

    world.client.post("/admin/trading/riskassessment/add/", {"owner": "matrix", "level": "C3", "score": "50",
                                                             "questionnaire": "{}", "assessed_on": "2026-01-05",
                                                             "expires_on": "2027-01-04"})
    return RiskAssessment.objects.filter(owner="matrix").exists()


ACTIONS: dict[str, Callable[[World], bool]] = {
    "open the admin": _get("/admin/"),
    "view orders": _get("/admin/orders/order/"),
    "view an order": _view_order,
    "approve an order": _button("approve"),
    "reject an order": _button("reject", {"reason": "matrix"}),
    "override risk control": _override_button,
    "cancel an order": _button("cancel", {"reason": "matrix"}),
    "modify an order": _modify,
    "bulk approve": _bulk("approve_selected"),
    "bulk reject": _bulk("reject_selected", {"reason": "matrix"}),
    "bulk override": _override_bulk,
    "bulk cancel": _bulk("cancel_selected", {"reason": "matrix"}),
    "change an order's fields": _change_order,
    "delete an order": _delete_order,
    "view fills": _get("/admin/orders/fill/"),
    "view accounts": _get("/admin/trading/account/"),
    "view positions": _get("/admin/trading/position/"),
    "view the cash ledger": _get("/admin/trading/cashledgerentry/"),
    "change an account's cash": _change_cash,
    "halt an account": _halt,
    "bulk set trading state": _bulk_state,
    "edit trading permissions": _edit_permissions,
    "view risk assessments": _get("/admin/trading/riskassessment/"),
    "record a risk assessment": _record_assessment,
    "view instruments": _get("/admin/trading/instrument/"),
    "change an instrument": _change_instrument,
    "view API keys": _get("/admin/trading/apikey/"),
    "issue an API key": _issue_key,
    "change an API key": _change_key,
    "revoke an API key": _revoke_key,
    "delete an API key": _delete_key,
    "view discrepancies": _get("/admin/orders/discrepancy/"),
    "resolve a discrepancy": _resolve_discrepancy,
    "reconcile an account": _reconcile_account,
    "change a discrepancy": _change_discrepancy,
    "view the audit trail": _get("/admin/audit/auditevent/"),
    "change an audit event": _change_audit,
    "view risk rules": _get("/admin/risk/riskrule/"),
    "view a risk rule's history": lambda world: _ok(world.client.get(f"/admin/risk/riskrule/{_rule().pk}/history/")),
    "add a risk rule": _add_rule,
    "change a risk rule": _change_rule,
    "delete a risk rule": _delete_rule,
    "bulk disable risk rules": _disable_rules,
    "revert a risk rule (history)": _revert_rule,
    "view restricted symbols": _get("/admin/risk/restrictedsymbol/"),
    "add a restricted symbol": _add_restriction,
    "view risk events": _get("/admin/risk/riskevent/"),
    "add a risk event": _add_risk_event,
    "view the global state": _get("/admin/risk/riskcontrol/"),
    "set the global state": _set_global_state,
    # Held orders are reviewed on the order desk, account states set on the account page.
    "removed risk review queue": _get("/admin/risk/revieworder/"),
    "removed risk account states": _get("/admin/risk/accounttradingstate/"),
    "view users": _get("/admin/auth/user/"),
    "add a user": _get("/admin/auth/user/add/"),
    "view authenticator secrets": _get("/admin/otp_totp/totpdevice/"),
}


def test_the_tables_cover_every_action() -> None:
    assert set(EXPECTED_ADMIN) == set(ACTIONS)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_admin_permission_matrix(role: str, action: str) -> None:
    desk.market()
    member = staff_member("member", None if role == NO_ROLE else role)
    world = World(account=Account.objects.get(name="acc1"), client=verified_client(member), user=member.user)
    allowed = ACTIONS[action](world)
    expected = EXPECTED_ADMIN[action][ROLES.index(role)]
    if allowed and not expected:
        pytest.fail(f"UNEXPECTED ALLOW: {role} could {action!r}")
    assert allowed == expected, f"{role} should be able to {action!r} but could not"


def test_each_role_holds_exactly_its_permissions_in_the_database() -> None:
    """The groups in the database equal staff.roles' definition (migration + post-migrate sync)."""
    from django.contrib.auth.models import Group, Permission

    from staff.roles import role_permissions

    existing = [f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")]
    for role, expected in role_permissions(existing).items():
        group = Group.objects.get(name=role)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert held == expected, role
    compliance = Group.objects.get(name=COMPLIANCE).permissions.values_list("codename", flat=True)
    assert all(code.startswith("view_") for code in compliance), "compliance must change nothing"
    assert "view_totpdevice" not in compliance


def test_no_role_holds_a_dead_permission_and_no_code_checks_one() -> None:
    """risk.review_order / override_order / set_trading_state (and the proxies' own permissions) still
    exist in the database, but the orders.* and trading.* ones are the only ones granted and checked."""
    from pathlib import Path

    from django.contrib.auth.models import Group, Permission

    from staff.roles import DEAD

    existing = {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")}
    assert {"risk.review_order", "risk.override_order", "risk.set_trading_state"} <= existing  # created by migrations
    for group in Group.objects.prefetch_related("permissions__content_type"):
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert not held & set(DEAD), (group.name, sorted(held & set(DEAD)))
    root = Path(__file__).resolve().parents[2]
    for app in ("trading", "orders", "brokers", "risk", "audit", "monitoring", "staff"):
        for source in (root / app).rglob("*.py"):
            if "migrations" in source.parts or source == root / "staff" / "roles.py":
                continue
            text = source.read_text(encoding="utf-8")
            for label in DEAD:
                assert f'"{label}"' not in text and f"'{label}'" not in text, f"{source}: checks dead {label}"


RULE_PERMISSIONS = ("view_riskrule", "add_riskrule", "change_riskrule", "delete_riskrule")


@pytest.mark.parametrize(("codenames", "may_manage"), [
    (RULE_PERMISSIONS, False),  # Django's own permissions are not enough
    (("view_riskrule", "manage_risk_rules"), False),  # nor is the custom one alone
    ((*RULE_PERMISSIONS, "manage_risk_rules"), True),
])
def test_risk_rules_need_manage_risk_rules_on_top_of_djangos_permissions(codenames: tuple[str, ...],
                                                                         may_manage: bool) -> None:
    from django.contrib.auth.models import Permission

    desk.market()
    member = staff_member("member", None)
    member.user.user_permissions.add(*Permission.objects.filter(content_type__app_label="risk", codename__in=codenames))
    world = World(account=Account.objects.get(name="acc1"), client=verified_client(member), user=member.user)
    assert _ok(world.client.get("/admin/risk/riskrule/"))
    assert _ok(world.client.get("/admin/risk/riskrule/add/")) == may_manage
    for name in ("change a risk rule", "bulk disable risk rules", "revert a risk rule (history)", "add a risk rule",
                 "delete a risk rule"):
        assert ACTIONS[name](world) == may_manage, name


# ---------------------------------------------------------------------- API operations


def _order_body(**extra: Any) -> str:
    body = {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT", "price": "9.90",
            "quantity": 100, **extra}
    return json.dumps(body)


API_OPERATIONS: dict[str, Callable[[Any, dict[str, str], Order], Any]] = {
    "submit an order": lambda c, h, o: c.post("/api/v1/orders", _order_body(), content_type="application/json", **h),
    "submit a batch": lambda c, h, o: c.post("/api/v1/orders/batch", json.dumps({"orders": [json.loads(_order_body())]}),
                                             content_type="application/json", **h),
    "list orders": lambda c, h, o: c.get("/api/v1/orders", **h),
    "get an order": lambda c, h, o: c.get(f"/api/v1/orders/{o.pk}", **h),
    "get fills": lambda c, h, o: c.get(f"/api/v1/orders/{o.pk}/fills", **h),
    "cancel an order": lambda c, h, o: c.post(f"/api/v1/orders/{o.pk}/cancel", **h),
    "modify an order": lambda c, h, o: c.patch(f"/api/v1/orders/{o.pk}", json.dumps({"price": "10.04"}),
                                               content_type="application/json", **h),
    "balance": lambda c, h, o: c.get("/api/v1/accounts/acc1/balance", **h),
    "positions": lambda c, h, o: c.get("/api/v1/accounts/acc1/positions", **h),
    "trades": lambda c, h, o: c.get("/api/v1/accounts/acc1/trades", **h),
    "risk check": lambda c, h, o: c.post("/api/v1/risk/check", _order_body(), content_type="application/json", **h),
    "publish quotes": lambda c, h, o: c.post("/api/v1/market/quotes", json.dumps({"quotes": [
        {"symbol": "600000.SH", "last": "10.00", "prev_close": "10.05", "bid": "9.99", "ask": "10.00"}]}),
        content_type="application/json", **h),
}

TRADE, READ_ONLY, FEEDER = "trading key", "read-only key", "market-data key"
CALLERS = (TRADE, READ_ONLY, FEEDER) + ROLES
# operation             trading  read-only  market-data  | staff sessions of every role (never: strategies
#                                                        |  are API clients, not users)
EXPECTED_API: dict[str, tuple[bool, ...]] = {
    "submit an order":  (Y, N, N) + (N,) * len(ROLES),
    "submit a batch":   (Y, N, N) + (N,) * len(ROLES),
    "list orders":      (Y, Y, Y) + (N,) * len(ROLES),
    "get an order":     (Y, Y, Y) + (N,) * len(ROLES),
    "get fills":        (Y, Y, Y) + (N,) * len(ROLES),
    "cancel an order":  (Y, N, N) + (N,) * len(ROLES),
    "modify an order":  (Y, N, N) + (N,) * len(ROLES),
    "balance":          (Y, Y, Y) + (N,) * len(ROLES),
    "positions":        (Y, Y, Y) + (N,) * len(ROLES),
    "trades":           (Y, Y, Y) + (N,) * len(ROLES),
    "risk check":       (Y, Y, Y) + (N,) * len(ROLES),
    "publish quotes":   (N, N, Y) + (N,) * len(ROLES),
}


def test_api_tables_cover_every_operation() -> None:
    assert set(EXPECTED_API) == set(API_OPERATIONS)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("operation", list(API_OPERATIONS))
def test_api_permission_matrix(caller: str, operation: str) -> None:
    from django.test import Client

    desk.market()
    order = desk.held()
    if caller in (TRADE, READ_ONLY, FEEDER):
        raw = factories.api_key("caller", accounts=["acc1"], can_trade=caller == TRADE, market_data=caller == FEEDER)
        client, headers = Client(), {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    else:
        client = verified_client(staff_member("member", None if caller == NO_ROLE else caller, superuser=False))
        headers = {}
    response = API_OPERATIONS[operation](client, headers, order)
    allowed = response.status_code not in (401, 403)
    if operation == "submit a batch" and response.status_code == 200:
        allowed = all(item.get("status_code") not in (401, 403) for item in response.json().get("results", []))
    expected = EXPECTED_API[operation][CALLERS.index(caller)]
    if allowed and not expected:
        pytest.fail(f"UNEXPECTED ALLOW: {caller} could {operation!r} ({response.status_code})")
    assert allowed == expected, f"{caller} should be able to {operation!r}: {response.status_code} {response.content[:200]!r}"
