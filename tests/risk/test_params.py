"""Rule parameters are typed and validated when saved: clear errors naming the parameter."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from risk.models import RiskRule
from risk.rules import REGISTRY, RULE_CLASSES, validate_rule_config
from risk.rules.base import RuleConfigError
from risk.services import risk_rule_save, risk_rule_set
from tests import factories
from trading.errors import Conflict


@pytest.mark.parametrize(
    ("code", "params", "field", "fragment"),
    [
        ("max_order_amount", {}, "max_amount", "required parameter missing"),
        ("max_order_amount", {"max_amount": "-1"}, "max_amount", "greater than 0"),
        ("max_order_amount", {"max_amount": 0.5}, "max_amount", "not the float"),
        ("max_order_amount", {"max_amount": "abc"}, "max_amount", "decimal"),
        ("max_order_amount", {"max_amount": "100.001"}, "max_amount", "decimal places"),
        ("max_order_amount", {"max_amount": "100", "max_amout": "1"}, "max_amout", "unknown parameter"),
        ("max_position_ratio", {"max_ratio": "1.5"}, "max_ratio", "less than or equal to 1"),
        ("max_position_ratio", {"max_ratio": True}, "max_ratio", "must be a number"),
        ("max_daily_orders", {"max_orders": 0}, "max_orders", "greater than 0"),
        ("max_daily_orders", {"max_orders": "many"}, "max_orders", "integer"),
        ("max_symbol_position", {}, "params", "max_shares and/or max_value"),
        ("max_issuer_share_ratio", {"limit_ratio": "0.05", "warn_ratio": "0.06"}, "params", "warn_ratio must not exceed"),
        ("daily_loss_limit", {"max_loss_ratio": "0.05", "target_state": "ACTIVE"}, "target_state", "pattern"),
        ("daily_loss_limit", {}, "params", "max_loss_amount and/or max_loss_ratio"),
        ("cooldown", {"seconds": "-1"}, "seconds", "greater than or equal to 0"),
        ("st_block", {"block_sells": "perhaps"}, "block_sells", "boolean"),
        ("restricted_list", {"anything": 1}, "anything", "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(code, params, field, fragment) -> None:
    with pytest.raises(RuleConfigError) as caught:
        REGISTRY[code].parse_params(params)
    assert caught.value.field == field
    assert code in caught.value.message and fragment in caught.value.message, caught.value.message
    assert caught.value.status_code == 422


def test_parameters_are_stored_normalized_and_as_strings() -> None:
    assert validate_rule_config("max_order_amount", {"max_amount": 100000}) == {"max_amount": "100000"}
    assert validate_rule_config("max_orders_per_second", {}) == {}
    parsed = REGISTRY["max_orders_per_second"].parse_params({})
    assert parsed.limit is None and parsed.warn_ratio == Decimal("0.65")


def test_unknown_code_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_rule_config("no_such_rule", {})
    assert "code" in caught.value.message_dict


def test_every_rule_has_code_title_category_and_generous_parameters_that_validate() -> None:
    for cls in RULE_CLASSES:
        assert cls.code and cls.title and cls.category, cls
        cls.parse_params(cls.generous_params)  # risk_enable_all must be able to save them
        assert cls.__module__ == f"risk.rules.{cls.code}", "one class per rule in risk/rules/<code>.py"


@pytest.mark.django_db
def test_model_clean_and_service_validate_too() -> None:
    rule = RiskRule(code="max_order_amount", params={"max_amount": 1.5})
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    assert "params" in caught.value.message_dict
    with pytest.raises(RuleConfigError):
        risk_rule_save(rule=rule)
    assert not RiskRule.objects.exists()


@pytest.mark.django_db
def test_one_row_per_code_and_scope() -> None:
    account = factories.account("acc1")
    risk_rule_set(code="max_order_amount", params={"max_amount": "1"})
    risk_rule_set(code="max_order_amount", account=account, params={"max_amount": "2"})
    again = risk_rule_set(code="max_order_amount", params={"max_amount": "3"})  # replaces the global row
    assert RiskRule.objects.count() == 2 and again.params == {"max_amount": "3"}
    with pytest.raises(Conflict) as caught:
        risk_rule_save(rule=RiskRule(code="max_order_amount", account=account, params={"max_amount": "4"}))
    assert caught.value.detail() == "规则 max_order_amount [acc1] 已存在 (rule max_order_amount already exists for acc1)"
    with pytest.raises(Conflict) as caught:
        risk_rule_save(rule=RiskRule(code="max_order_amount", params={"max_amount": "5"}))
    assert caught.value.detail() == ("规则 max_order_amount [全局] 已存在 "
                                     "(rule max_order_amount already exists for every account)")


@pytest.mark.django_db
def test_rule_edits_are_recorded_with_history_and_audit() -> None:
    from audit.models import AuditEvent

    rule = risk_rule_set(code="max_order_amount", params={"max_amount": "100"})
    rule.params = {"max_amount": "200"}
    risk_rule_save(rule=rule)
    assert [h.params for h in rule.history.order_by("history_id")] == [{"max_amount": "100"}, {"max_amount": "200"}]
    events = AuditEvent.objects.filter(action="risk.rule_saved", object_id=str(rule.pk)).order_by("id")
    assert events.count() == 2 and events.last().before["params"] == {"max_amount": "100"}
