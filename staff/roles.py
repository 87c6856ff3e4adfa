"""The four operator roles as Django groups, and the permissions they are made of.

The table here is the single definition of who may do what in admin. A data
migration creates the groups; ``roles_sync`` runs again after every
``migrate`` so that permissions of models added later (a new app, a new risk
model) join the roles they belong to. Change a role here, not in admin: the
next ``migrate`` puts the groups back to this table.

One permission per job: order actions are ``orders.*`` (the order desk, with cancelling a
conditional order, ``conditions.cancel_conditionalorder``; reconciling now and
resolving a discrepancy are ``orders.reconcile_account`` and ``orders.resolve_discrepancy``),
trading states ``trading.set_trading_state`` (account page and global state),
rule edits ``risk.manage_risk_rules`` plus Django's own. The risk app's older
``risk.review_order``, ``risk.override_order`` and ``risk.set_trading_state``
(and the proxy models they belong to) are ``DEAD``: no role holds them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps as global_apps

from trading.i18n import bilingual_lazy

OPERATOR = "Operator"
RISK_MANAGER = "Risk manager"
COMPLIANCE = "Compliance"
ADMINISTRATOR = "Administrator"
ROLES = (OPERATOR, RISK_MANAGER, COMPLIANCE, ADMINISTRATOR)


@dataclass(frozen=True)
class CustomPermission:
    """A permission that is not one of Django's add/change/delete/view."""

    app_label: str
    model: str
    codename: str
    name: str  # "中文 (English)" from the catalogues (lazy): the name is stored in auth_permission

    @property
    def label(self) -> str:
        return f"{self.app_label}.{self.codename}"


CUSTOM_PERMISSIONS = (
    CustomPermission("orders", "order", "approve_order", bilingual_lazy("approve held orders")),
    CustomPermission("orders", "order", "reject_order", bilingual_lazy("reject held orders")),
    CustomPermission("orders", "order", "cancel_order", bilingual_lazy("cancel orders")),
    CustomPermission("orders", "order", "modify_order", bilingual_lazy("modify price/quantity")),
    CustomPermission("orders", "order", "override_order", bilingual_lazy("override a REJECT verdict")),
    CustomPermission("orders", "discrepancy", "reconcile_account", bilingual_lazy("reconcile accounts with their brokers now")),
    CustomPermission("orders", "discrepancy", "resolve_discrepancy", bilingual_lazy("resolve reconciliation discrepancies")),
    CustomPermission("conditions", "conditionalorder", "cancel_conditionalorder", bilingual_lazy("cancel conditional orders")),
    CustomPermission("trading", "account", "set_trading_state", bilingual_lazy("set trading state")),
    CustomPermission("trading", "apikey", "manage_api_keys", bilingual_lazy("manage API keys")),
    CustomPermission("trading", "account", "manage_suitability", bilingual_lazy("manage trading permissions and risk assessments")),
    CustomPermission("risk", "riskrule", "manage_risk_rules", bilingual_lazy("manage risk rules")),
    CustomPermission("audit", "auditevent", "view_audit", bilingual_lazy("view the audit trail")),
    CustomPermission("compliance", "compliancelog", "view_export", bilingual_lazy("export the audit log")),
    CustomPermission("compliance", "compliancelog", "view_replay", bilingual_lazy("replay an account's past state")),
)

# Apps whose rows every role may look at (compliance reads everything).
TRADING_APPS = ("trading", "orders", "conditions", "risk", "brokers", "monitoring")
# Views that hold secrets (TOTP seeds) or nothing a person reads.
NEVER_VIEW = ("otp_totp.view_totpdevice", "otp_static.view_staticdevice", "otp_static.view_statictoken",
              "sessions.view_session", "contenttypes.view_contenttype")
ORDER_DESK = ("orders.approve_order", "orders.reject_order", "orders.cancel_order", "orders.modify_order",
              "conditions.cancel_conditionalorder")
OVERRIDE = ("orders.override_order",)
RECONCILE = ("orders.reconcile_account",)  # safe to ask at any time: the same run as the periodic one
RESOLVE_DISCREPANCY = ("orders.resolve_discrepancy",)
TRADING_STATE = ("trading.set_trading_state",)  # accounts (trading/admin.py) and the global state (risk/admin.py)
RISK_CONFIG = ("risk.manage_risk_rules", "risk.add_riskrule", "risk.change_riskrule", "risk.delete_riskrule",
               "risk.add_restrictedsymbol", "risk.change_restrictedsymbol", "risk.delete_restrictedsymbol")
AUDIT = ("audit.view_audit", "audit.view_auditevent")
# Alerts (monitoring/admin.py): operators acknowledge and resolve them; risk managers route them and
# set the monitors' levels and thresholds; channels (their secrets) are the administrator's alone.
ALERT_DESK = ("monitoring.acknowledge_alert",)
ALERT_CONFIG = ("monitoring.add_routingrule", "monitoring.change_routingrule", "monitoring.delete_routingrule",
                "monitoring.add_monitorsetting", "monitoring.change_monitorsetting",
                "monitoring.delete_monitorsetting")
# The compliance pages (compliance/admin.py): search and timelines need ``compliance.view_compliancelog``,
# export and replay a permission each. All read only, so named view_*: the Compliance role holds every
# view permission and nothing else; no other role but the administrators holds these.
COMPLIANCE_TOOLS = ("compliance.view_export", "compliance.view_replay")
# Suitability records (trading permissions, risk assessments): kept by risk managers; compliance
# reads them (and their audit events) but changes nothing.
SUITABILITY = ("trading.manage_suitability", "trading.add_riskassessment")
# Permissions that exist in the database but that no page checks, granted to no role:
# those of the risk app's proxies ReviewOrder and AccountTradingState, whose admin
# pages were dropped for the order desk (orders.*) and the account page
# (trading.set_trading_state). Migration risk 0001 created them; they stay until a
# migration removes the proxies. Do not grant or check them.
DEAD_MODELS = ("revieworder", "accounttradingstate")
DEAD = ("risk.review_order", "risk.override_order", "risk.set_trading_state",
        *(f"risk.{verb}_{model}" for model in DEAD_MODELS for verb in ("add", "change", "delete", "view")))


def _views(all_labels: Iterable[str], app_labels: Iterable[str]) -> set[str]:
    wanted = set(app_labels)
    return {label for label in all_labels if label.split(".")[0] in wanted and ".view_" in label}


def role_permissions(all_labels: Iterable[str]) -> dict[str, set[str]]:
    """Each role's permissions as ``app_label.codename``, chosen from ``all_labels``
    (the permissions that exist in the database) less the ``DEAD`` ones."""
    labels = set(all_labels) - set(DEAD)
    trading_views = _views(labels, TRADING_APPS)
    operator = trading_views | set(ORDER_DESK) | set(ALERT_DESK) | set(RECONCILE)
    risk_manager = (operator | set(OVERRIDE) | set(RESOLVE_DISCREPANCY) | set(TRADING_STATE) | set(RISK_CONFIG) | set(AUDIT)
                    | set(ALERT_CONFIG) | set(SUITABILITY))
    everything_viewable = {label for label in labels if ".view_" in label} - set(NEVER_VIEW)
    compliance = everything_viewable | {"audit.view_audit"} | set(COMPLIANCE_TOOLS)
    administrator = set(labels)
    roles = {OPERATOR: operator, RISK_MANAGER: risk_manager, COMPLIANCE: compliance, ADMINISTRATOR: administrator}
    return {name: perms & labels for name, perms in roles.items()}


def ensure_custom_permissions(apps: Any = global_apps) -> None:
    """Create the custom permissions (and their content types) if missing; skips models
    that do not exist yet (the next sync after they are migrated picks them up)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    for custom in CUSTOM_PERMISSIONS:
        try:
            apps.get_model(custom.app_label, custom.model)
        except LookupError:
            continue
        content_type, _ = ContentType.objects.get_or_create(app_label=custom.app_label, model=custom.model)
        Permission.objects.update_or_create(content_type=content_type, codename=custom.codename,
                                            defaults={"name": str(custom.name)[:255]})


def roles_sync(apps: Any = global_apps) -> dict[str, int]:
    """Create the four groups and give each exactly the permissions of its role.

    Returns how many permissions each role holds. Idempotent.
    """
    ensure_custom_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    by_label = {f"{app_label}.{codename}": pk for pk, app_label, codename in
                Permission.objects.values_list("pk", "content_type__app_label", "codename")}
    from staff.audit_signals import roles_syncing

    counts = {}
    with roles_syncing():  # the table in this module, applied: its history is the code's, not an audit event
        for name, labels in role_permissions(by_label).items():
            group, _ = Group.objects.get_or_create(name=name)
            group.permissions.set(sorted(by_label[label] for label in labels))
            counts[name] = len(labels)
    return counts


def roles_sync_after_migrate(sender: Any, app_config: Any = None, using: str = "default", **kwargs: Any) -> None:
    """post_migrate: re-apply the roles once, after the last app's permissions exist."""
    configs = list(global_apps.get_app_configs())
    if app_config is None or app_config.label != configs[-1].label:
        return
    if not global_apps.is_installed("django.contrib.auth"):
        return
    roles_sync(global_apps)
