"""Every label people read goes through the catalogues: walked from the code, not listed by hand.

A label the admin shows follows the reader's language: it is lazy and reads differently in
zh-hans and en (or, like "ID", is in both catalogues as the same text). A label stored or
shown outside the reader's language (a permission's name is a database row; the API's
documentation) is "中文 (English)" from the catalogues (``trading.i18n.bilingual_lazy``).
A new plain-string label, or one whose translation is missing, fails here with its place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import models
from django.utils import translation
from django.utils.functional import Promise

from tests.admin.test_i18n import LOCALE, read_po

CJK = re.compile(r"[\u4e00-\u9fff]")
ZH = read_po(LOCALE / "zh_Hans" / "LC_MESSAGES" / "django.po")
EN = read_po(LOCALE / "en" / "LC_MESSAGES" / "django.po")


def _rendered(label: object) -> tuple[str, str]:
    with translation.override("zh-hans"):
        chinese = str(label)
    with translation.override("en"):
        english = str(label)
    return chinese, english


def follows_language(label: object) -> str | None:
    """None if ``label`` reads in the reader's language, else what is wrong with it."""
    if not isinstance(label, Promise):
        return "a plain string, not a lazy translation"
    chinese, english = _rendered(label)
    if chinese != english:
        if not CJK.search(chinese):
            return f"no Chinese: {chinese!r}"
        if CJK.search(english):
            return f"Chinese in English: {english!r}"
        return None
    with translation.override(None):
        msgid = str(label)
    if not CJK.search(msgid) and ZH.get(msgid) == msgid:
        return None  # the same in both languages, on purpose ("ID", "API", "T+0")
    return f"untranslated: {chinese!r}"


def is_bilingual(label: object) -> str | None:
    """None if ``label`` is a lazy "中文 (English)" from the catalogues, else what is wrong with it."""
    if not isinstance(label, Promise):
        return "a plain string, not trading.i18n.bilingual_lazy"
    chinese, english = _rendered(label)
    if chinese != english:
        return "depends on the active language"
    match = re.fullmatch(r"(.+) \((.+)\)", chinese, re.DOTALL)
    if not match or not CJK.search(match.group(1)) or match.group(1) == match.group(2):
        return f"no Chinese in the catalogue: {chinese!r}"
    return None


def _model_labels() -> Iterator[tuple[str, object]]:
    from django.apps import apps

    from staff.i18n import PROJECT_APPS, project_models

    for app_label in PROJECT_APPS:
        yield f"app {app_label}", apps.get_app_config(app_label).verbose_name
    for model in [*project_models(), *apps.get_app_config("staff").get_models()]:
        opts = model._meta
        yield f"{opts.label} verbose_name", opts.verbose_name
        yield f"{opts.label} verbose_name_plural", opts.verbose_name_plural
        for field in opts.get_fields():
            if not isinstance(field, models.Field) or (field.auto_created and field.primary_key):
                continue  # Django's "ID"
            where = f"{opts.label}.{field.name}"
            yield f"{where} verbose_name", field.verbose_name
            if field.help_text:
                yield f"{where} help_text", field.help_text
            if field.choices == settings.LANGUAGES:
                continue  # each language is named in itself, as in Django's own language menus
            if field.choices and not callable(field.choices):
                for value, label in field.flatchoices:
                    yield f"{where} choice {value}", label


def _admin_labels() -> Iterator[tuple[str, object]]:
    """The column titles, action names and form labels of the project's admin pages."""
    from staff.i18n import PROJECT_APPS

    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in (*PROJECT_APPS, "staff", "auth"):
            continue
        where = type(model_admin).__name__
        for name in model_admin.list_display:
            attribute = getattr(model_admin, name, None) if isinstance(name, str) else name
            if callable(attribute) and hasattr(attribute, "short_description"):
                yield f"{where}.{name} column", attribute.short_description
        for action in model_admin.actions or ():
            function = getattr(model_admin, action) if isinstance(action, str) else action
            yield f"{where} action {getattr(function, '__name__', action)}", function.short_description
        form = getattr(model_admin, "form", None)
        for name, field in getattr(form, "declared_fields", {}).items():
            yield f"{where} form field {name}", field.label
            if field.help_text:
                yield f"{where} form field {name} help_text", field.help_text


def _plugin_labels() -> Iterator[tuple[str, object]]:
    from brokers.registry import adapter_class, broker_kinds
    from risk.rules import RULE_CLASSES

    for cls in RULE_CLASSES:
        yield f"risk rule {cls.code} title", cls.title
    for kind in broker_kinds():
        yield f"broker {kind} label", adapter_class(kind).label


def test_every_label_people_read_follows_their_language() -> None:
    labels = [*_model_labels(), *_admin_labels(), *_plugin_labels()]
    assert len(labels) > 500  # the walk reaches the models, the admin pages and the plug-ins
    wrong = [f"{where}: {problem}" for where, label in labels if (problem := follows_language(label))]
    assert not wrong, "wrap them (gettext_lazy, or the models' Chinese via staff.i18n) and run `make messages`:\n" + "\n".join(wrong)


def _stored_labels() -> Iterator[tuple[str, object]]:
    from staff.i18n import project_models
    from staff.roles import CUSTOM_PERMISSIONS

    for model in project_models():
        for codename, name in model._meta.permissions:
            yield f"{model._meta.label} permission {codename}", name
    for custom in CUSTOM_PERMISSIONS:
        yield f"permission {custom.label}", custom.name


def test_permission_names_are_bilingual_from_the_catalogues() -> None:
    labels = list(_stored_labels())
    assert len(labels) >= 12
    wrong = [f"{where}: {problem}" for where, label in labels if (problem := is_bilingual(label))]
    assert not wrong, "use trading.i18n.bilingual_lazy and run `make messages`:\n" + "\n".join(wrong)


@pytest.mark.django_db
def test_stored_permission_names_come_from_the_catalogue_unchanged() -> None:
    """The catalogue gives back the names migrations and earlier syncs wrote: nothing to migrate."""
    from staff.roles import roles_sync

    roles_sync()
    names = {(app_label, codename): name for app_label, codename, name in
             Permission.objects.values_list("content_type__app_label", "codename", "name")}
    assert names["orders", "approve_order"] == "审批通过委托 (approve held orders)"
    assert names["trading", "set_trading_state"] == "设置交易状态 暂停/只减仓/恢复 (set trading state)"
    assert names["risk", "review_order"] == "可审批或拒绝待审核委托 (approve or reject held orders)"


def test_api_documentation_labels_are_bilingual() -> None:
    from orders.schemas import BatchItemOut, OrderIn
    from trading.api import ACCOUNT_NAME
    from trading.urls import api

    labels = [("api title", api.title), ("api description", api.description), ("account path", ACCOUNT_NAME.description)]
    labels += [(f"OrderIn.{name}", field.description) for name, field in OrderIn.model_fields.items() if field.description]
    labels += [(f"BatchItemOut.{name}", field.description) for name, field in BatchItemOut.model_fields.items()
               if field.description]
    wrong = [f"{where}: {problem}" for where, label in labels if (problem := is_bilingual(label))]
    assert not wrong, wrong


def test_the_checks_catch_a_plain_or_untranslated_label() -> None:
    from django.utils.translation import gettext_lazy

    from trading.i18n import bilingual_lazy

    assert follows_language("价格笼子") == "a plain string, not a lazy translation"
    assert follows_language(gettext_lazy("a label nobody translated")) is not None
    assert follows_language(gettext_lazy("price cage")) is None
    assert is_bilingual(bilingual_lazy("a label nobody translated")) is not None
    assert is_bilingual(bilingual_lazy("approve held orders")) is None


def test_catalogue_files_have_no_fuzzy_entries() -> None:
    """msgmerge guesses a translation for a new msgid from a similar one and marks it fuzzy;
    compilemessages leaves fuzzy entries out, so the guess is neither used nor reviewed."""
    for language in ("zh_Hans", "en"):
        text = (LOCALE / language / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
        fuzzy = [block.split("\n")[-2:] for block in text.split("\n\n") if re.search(r"^#,.*\bfuzzy\b", block, re.M)]
        assert not fuzzy, f"{language}: review and unflag {fuzzy[:5]}"



# ---------------------------------------------------------------------- the pages, in English and in Chinese


@pytest.mark.django_db
def test_risk_desk_labels_follow_the_operators_language(role_client) -> None:
    from brokers.models import PaperAccount
    from risk.models import RiskRule

    RiskRule.objects.create(code="price_cage", params={}, note="cage")
    PaperAccount.objects.create(account_name="paper-1")
    manager = role_client("Risk manager")
    chinese = manager.get("/admin/risk/riskrule/").content.decode()
    assert "价格笼子" in chinese and "范围" in chinese and "启用所选规则" in chinese
    chinese_form = manager.get("/admin/risk/riskrule/add/").content.decode()
    assert "留空 = 全局规则" in chinese_form and "max_amount: Decimal = 必填" in chinese_form

    manager.post("/staff/language/", {"language": "en"})
    listing = manager.get("/admin/risk/riskrule/").content.decode()
    assert "price cage" in listing and "Applies to" in listing and "Enable selected rules" in listing
    assert "价格笼子" not in listing and "启用所选规则" not in listing and "范围" not in listing
    form = manager.get("/admin/risk/riskrule/add/").content.decode()
    assert "Empty: a global rule (every account)" in form and "Money and ratios as strings, never floats" in form
    assert "maximum orders plus cancels per second (programme trading)" in form  # the codes' catalogue
    assert "max_amount: Decimal = required" in form
    assert "留空" not in form and "金额与比例" not in form and "必填" not in form
    restricted = manager.get("/admin/risk/restrictedsymbol/add/").content.decode()
    assert "Empty: open-ended" in restricted and "Empty: every account" in restricted
    paper = manager.get("/admin/brokers/paperaccount/").content.decode()
    assert "Available" in paper and "可用资金" not in paper


@pytest.mark.django_db
def test_permission_names_read_in_both_languages_on_the_role_page(admin_member_client) -> None:
    from django.contrib.auth.models import Group

    operator = Group.objects.get(name="Operator")
    admin_member_client.post("/staff/language/", {"language": "en"})
    html = admin_member_client.get(f"/admin/auth/group/{operator.pk}/change/").content.decode()
    assert "审批通过委托 (approve held orders)" in html
