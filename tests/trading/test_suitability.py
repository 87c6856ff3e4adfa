"""Investor suitability: trading permissions refused at intake on every board, the risk-level rule
(warn or refuse), and the risk disclosure gate of API keys and staff."""

from __future__ import annotations

from datetime import timedelta

import pytest

from audit.models import AuditEvent
from audit.services import Actor
from orders.models import OrderStatus
from orders.services import OrderInput, order_submit
from risk.models import RiskEvent
from risk.services import risk_rule_set
from risk.verdicts import RiskAction
from tests import factories
from trading.errors import InvalidOrder
from trading.models import Account, Instrument
from trading.services import account_permissions_set, risk_assessment_record
from trading.suitability import ALL_PERMISSIONS, RISK_DISCLOSURE_VERSION, instrument_risk_level

ACTOR = Actor.system("test")

# (symbol, prev_close, price, quantity, instrument overrides, the permission it needs)
BOARDS = [
    ("688981.SH", "80.00", "80.00", 200, {}, "STAR"),
    ("300750.SZ", "200.00", "200.00", 100, {}, "CHINEXT"),
    ("430047.BJ", "20.00", "20.00", 100, {}, "BSE"),
    ("600000.SH", "10.00", "10.00", 100, {"is_st": True}, "RISK_WARNING"),
    ("000001.SZ", "10.00", "10.00", 100, {"delisting": True, "is_st": True}, "DELISTING"),
    ("113050.SH", "110.000", "110.000", 10, {}, "CONVERTIBLE_BOND"),
]


def _quoted(symbol: str, prev_close: str, overrides: dict) -> None:
    from trading.selectors import instrument_cache_clear

    factories.quote(symbol, prev_close=prev_close)  # resets the instrument to the reference data: overrides after
    factories.instrument(symbol, **overrides)
    instrument_cache_clear()


def _buy(account: str, symbol: str, price: str, quantity: int, side: str = "BUY", client_order_id: str | None = None):
    return order_submit(OrderInput(account=account, symbol=symbol, side=side, order_type="LIMIT", quantity=quantity,
                                   price=price, client_order_id=client_order_id), actor=ACTOR)


@pytest.mark.parametrize(("symbol", "prev_close", "price", "quantity", "overrides", "permission"), BOARDS,
                         ids=[b[-1] for b in BOARDS])
def test_a_buy_on_a_board_without_its_permission_is_refused_naming_field_and_rule(
        api, symbol, prev_close, price, quantity, overrides, permission):
    _quoted(symbol, prev_close, overrides)
    others = [code for code in ALL_PERMISSIONS if code != permission]
    factories.account("main_only", permissions=others)
    raw = factories.api_key("k-main", accounts=["main_only"])
    response = api.post("/orders", factories.order_body(account="main_only", symbol=symbol, price=price, quantity=quantity),
                        key=raw)
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "invalid_order"
    [item] = body["detail"]
    assert (item["field"], item["rule"]) == ("symbol", "trading_permission")
    assert permission in item["msg"] and symbol in item["msg"]
    assert not Account.objects.get(name="main_only").orders.exists()


@pytest.mark.parametrize(("symbol", "prev_close", "price", "quantity", "overrides", "permission"), BOARDS,
                         ids=[b[-1] for b in BOARDS])
def test_the_same_buy_passes_once_the_permission_is_granted(db, clock, symbol, prev_close, price, quantity, overrides,
                                                            permission):
    _quoted(symbol, prev_close, overrides)
    account = factories.account("granted", permissions=[])
    with pytest.raises(InvalidOrder):
        _buy("granted", symbol, price, quantity)
    account_permissions_set(account_id=account.pk, permissions={permission: "2024-03-01"}, actor=ACTOR, reason="broker granted")
    result = _buy("granted", symbol, price, quantity)
    assert result.created and result.order.status != OrderStatus.REJECTED


def test_main_boards_and_funds_need_no_permission_and_sells_are_never_refused_for_one(db, clock):
    _quoted("600000.SH", "10.00", {})
    _quoted("510300.SH", "4.000", {})
    _quoted("688981.SH", "80.00", {})
    factories.account("plain", permissions=[])
    assert _buy("plain", "600000.SH", "10.00", 100).created
    assert _buy("plain", "510300.SH", "4.000", 100).created
    # A sell of STAR shares the account does not hold is refused for the holding, not the permission.
    with pytest.raises(InvalidOrder) as refused:
        _buy("plain", "688981.SH", "80.00", 200, side="SELL")
    assert [p.rule for p in refused.value.problems] == ["sellable_quantity"]


def test_new_accounts_get_main_boards_and_what_the_command_line_grants(db, clock):
    from io import StringIO

    from django.core.management import call_command

    call_command("create_account", "cli1", "--cash", "1000", stdout=StringIO())
    call_command("create_account", "cli2", "--cash", "1000", "--grant", "star,chinext", stdout=StringIO())
    assert Account.objects.get(name="cli1").trading_permissions == {}
    assert sorted(Account.objects.get(name="cli2").trading_permissions) == ["CHINEXT", "STAR"]
    created = AuditEvent.objects.get(action="account.created", account="cli2")
    assert sorted(created.after["trading_permissions"]) == ["CHINEXT", "STAR"]


def test_a_permission_change_is_audited_with_before_and_after(db, clock):
    account = factories.account("audited", permissions=["STAR"])
    account_permissions_set(account_id=account.pk, permissions={"STAR": False, "BSE": "2025-01-02"}, actor=Actor.user("anna"),
                            reason="broker statement")
    event = AuditEvent.objects.filter(action="account.permissions_changed", account="audited").get()
    assert list(event.before["trading_permissions"]) == ["STAR"]
    assert event.after["trading_permissions"] == {"BSE": "2025-01-02"}
    assert (event.actor, event.reason) == ("anna", "broker statement")
    with pytest.raises(InvalidOrder):
        account_permissions_set(account_id=account.pk, permissions={"OPTIONS": True}, actor=ACTOR)


# --------------------------------------------------------------------------- risk levels


def test_instrument_risk_levels_by_board_and_st_unless_set():
    from trading.market_rules import ReferenceInstrument

    def ref(board, **kw):
        return ReferenceInstrument(exchange="SH", code="600000", name="x", board=board, **kw)

    assert instrument_risk_level(ref("MAIN")) == "R3"
    assert instrument_risk_level(ref("STAR")) == "R4"
    assert instrument_risk_level(ref("MAIN", is_st=True)) == "R5"
    assert instrument_risk_level(Instrument(exchange="SH", code="600000", board="MAIN", risk_level="R2")) == "R2"


@pytest.mark.parametrize("action", [RiskAction.WARN, RiskAction.REJECT])
def test_an_order_above_the_owners_tolerance_warns_or_is_refused_as_configured(db, clock, action):
    _quoted("688981.SH", "80.00", {})
    factories.account("acc1")
    risk_rule_set(code="suitability", account=None, params={}, action=action, enabled=True)
    today = clock().date()
    risk_assessment_record(owner="acc1", level="C3", assessed_on=today, expires_on=today + timedelta(days=730), actor=ACTOR)
    order = _buy("acc1", "688981.SH", "80.00", 200).order  # STAR: R4 > C3
    [verdict] = [v for v in order.risk_verdicts if v["rule"] == "suitability"]
    assert verdict["passed"] is False and verdict["values"]["risk_level"] == "R4"
    assert RiskEvent.objects.filter(order=order, rule="suitability").exists()
    if action == RiskAction.WARN:
        assert order.status != OrderStatus.REJECTED
    else:
        assert order.status == OrderStatus.REJECTED
    # a main-board stock (R3) suits C3
    _quoted("600000.SH", "10.00", {})
    assert _buy("acc1", "600000.SH", "10.00", 100).order.status != OrderStatus.REJECTED


def test_an_owner_never_assessed_fails_unless_the_rule_does_not_require_an_assessment(db, clock):
    _quoted("600000.SH", "10.00", {})
    factories.account("acc1")
    risk_rule_set(code="suitability", account=None, params={}, action=RiskAction.REJECT, enabled=True)
    refused = _buy("acc1", "600000.SH", "10.00", 100, client_order_id="n-1").order
    assert refused.status == OrderStatus.REJECTED
    assert [v["values"]["reason"] for v in refused.risk_verdicts if v["rule"] == "suitability"] == ["no_assessment"]
    risk_rule_set(code="suitability", account=None, params={"require_assessment": False}, action=RiskAction.REJECT,
                  enabled=True)
    assert _buy("acc1", "600000.SH", "10.00", 100, client_order_id="n-2").order.status != OrderStatus.REJECTED


def test_an_assessment_applies_to_every_account_of_its_owner_and_is_audited(db, clock):
    a = factories.account("a1", owner="wang")
    b = factories.account("b1", owner="wang")
    other = factories.account("c1")
    today = clock().date()
    risk_assessment_record(owner="wang", level="C4", assessed_on=today, expires_on=today + timedelta(days=365), score=61,
                           questionnaire={"version": "2024", "answers": [1, 3, 2]}, actor=Actor.user("compliance1"))
    for account in (a, b):
        account.refresh_from_db()
        assert (account.risk_tolerance, account.risk_tolerance_expires_on) == ("C4", today + timedelta(days=365))
    other.refresh_from_db()
    assert other.risk_tolerance == ""
    assert AuditEvent.objects.filter(action="risk_assessment.recorded", actor="compliance1").count() == 1
    changed = AuditEvent.objects.filter(action="account.risk_tolerance_changed").order_by("account")
    assert [(e.account, e.before["risk_tolerance"], e.after["risk_tolerance"]) for e in changed] == [("a1", "", "C4"), ("b1", "", "C4")]


# --------------------------------------------------------------------------- the disclosure


def test_a_key_whose_owner_has_not_acknowledged_the_disclosure_gets_403_until_it_does(api, clock):
    factories.instrument("600000.SH")
    factories.quote("600000.SH", prev_close="10.05")
    raw = factories.api_key("fresh", accounts=["acc1"], acknowledged=False)
    refused = api.post("/orders", factories.order_body(price="10.00"), key=raw)
    assert refused.status_code == 403 and refused.json()["code"] == "disclosure_required"
    assert api.get("/accounts/acc1/balance", key=raw).status_code == 403
    read = api.get("/disclosure", key=raw)
    assert read.status_code == 200 and read.json()["acknowledged"] is False and read.json()["version"] == RISK_DISCLOSURE_VERSION
    wrong = api.post("/disclosure", {"version": "0", "acknowledged_by": "Li Lei"}, key=raw)
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["field"] == "version"
    done = api.post("/disclosure", {"version": RISK_DISCLOSURE_VERSION, "acknowledged_by": "Li Lei"}, key=raw)
    assert done.status_code == 200 and done.json()["acknowledged"] is True
    event = AuditEvent.objects.get(action="disclosure.acknowledged", object_type="api_key", actor="fresh")
    assert event.after["acknowledged_by"] == "Li Lei" and event.after["address"] == "127.0.0.1"
    assert api.post("/orders", factories.order_body(price="10.00"), key=raw).status_code == 201


def test_keys_made_by_the_commands_work_at_once_when_the_owner_accepts_there(db, clock):
    from io import StringIO

    from django.core.management import call_command

    from trading.auth import api_client_for

    factories.account("acc1")
    out = StringIO()
    call_command("create_api_key", "cmd-key", "--accounts", "acc1", "--accept-disclosure", "Han Meimei", stdout=out)
    assert api_client_for(out.getvalue().strip().splitlines()[-1]).disclosure_acknowledged
    event = AuditEvent.objects.get(action="disclosure.acknowledged")
    assert event.after["acknowledged_by"] == "Han Meimei" and event.actor.startswith("manage.py create_api_key")
    out = StringIO()
    call_command("create_api_key", "cmd-key2", "--accounts", "acc1", stdout=out)
    assert not api_client_for(out.getvalue().strip().splitlines()[-1]).disclosure_acknowledged


def test_demo_setup_keys_are_acknowledged_and_recorded(db, clock, tmp_path, monkeypatch):
    from io import StringIO

    from django.core.management import call_command

    from trading.auth import api_client_for

    monkeypatch.setenv("DEMO_FILES_DIR", str(tmp_path))
    call_command("demo_setup", stdout=StringIO())
    raw = (tmp_path / "demo_api_key.txt").read_text().strip()
    assert api_client_for(raw).disclosure_acknowledged
    assert AuditEvent.objects.filter(action="disclosure.acknowledged").count() == 2
    assert Account.objects.get(name="demo").trading_permissions == {}


def test_the_migration_grants_existing_accounts_every_board_and_acknowledges_existing_keys(transactional_db):
    from importlib import import_module

    from django.apps import apps as global_apps

    from trading.models import ApiKey

    factories.account("old")
    factories.api_key("old-key", accounts=["old"], acknowledged=False)
    Account.objects.filter(name="old").update(trading_permissions={})
    import_module("trading.migrations.0005_suitability_existing").forwards(global_apps, None)
    assert sorted(Account.objects.get(name="old").trading_permissions) == sorted(ALL_PERMISSIONS)
    key = ApiKey.objects.get(name="old-key")
    assert key.disclosure_version == "1" and key.disclosure_acknowledged_at is not None
    assert AuditEvent.objects.filter(action="disclosure.acknowledged", object_id=str(key.pk)).exists()



def test_reference_data_may_flag_delisting_and_set_a_risk_level(db, tmp_path):
    from trading.reference import instruments_load
    from trading.suitability import required_permissions

    path = tmp_path / "instruments.csv"
    path.write_text("symbol,name,board,is_st,delisting,risk_level\n"
                    "600001.SH,退市甲,MAIN,true,true,\n"
                    "600002.SH,乙,MAIN,false,false,r2\n", encoding="utf-8")
    instruments_load(path=path)
    delisting = Instrument.objects.get(code="600001")
    assert delisting.delisting and required_permissions(delisting) == ("DELISTING",)
    assert instrument_risk_level(delisting) == "R5"
    assert instrument_risk_level(Instrument.objects.get(code="600002")) == "R2"
    path.write_text("symbol,name,board,is_st,delisting,risk_level\n600003.SH,丙,MAIN,false,false,R9\n", encoding="utf-8")
    with pytest.raises(ValueError, match="risk_level"):
        instruments_load(path=path)
