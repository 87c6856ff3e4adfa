"""Trading permissions and the risk disclosure for what existed before them.

- Every existing account keeps what it could trade: every permission, dated the day the account
  was created (when the back office started letting it trade those boards). Operators then
  narrow them to what the broker really granted (admin, account page, "trading permissions").
- Every existing API key counts as acknowledged (version 1), so strategies keep working; the
  acknowledgement says it was granted by this migration.

Both are recorded in the audit log (``account.permissions_changed``, ``disclosure.acknowledged``).
"""

from django.db import migrations
from django.utils import timezone

PERMISSIONS = ("STAR", "CHINEXT", "BSE", "RISK_WARNING", "DELISTING", "CONVERTIBLE_BOND")
BY = "migration trading 0005 (key predates the risk disclosure)"


def forwards(apps, schema_editor):
    Account = apps.get_model("trading", "Account")
    ApiKey = apps.get_model("trading", "ApiKey")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    at = timezone.now()
    events = []
    for account in Account.objects.all().only("pk", "name", "created_at").order_by("pk"):
        granted = {code: timezone.localdate(account.created_at).isoformat() for code in PERMISSIONS}
        Account.objects.filter(pk=account.pk).update(trading_permissions=granted)
        events.append(AuditEvent(actor_type="system", actor="migration trading 0005", action="account.permissions_changed",
                                 object_type="account", object_id=str(account.pk), account=account.name,
                                 before={"trading_permissions": {}}, after={"trading_permissions": granted},
                                 reason="权限默认全部开通: 账户在引入交易权限之前已可交易各板块 (existing account: every board it could trade)"))
    for key in ApiKey.objects.filter(disclosure_acknowledged_at__isnull=True).order_by("pk"):
        ApiKey.objects.filter(pk=key.pk).update(disclosure_version="1", disclosure_acknowledged_at=at, disclosure_acknowledged_by=BY)
        events.append(AuditEvent(actor_type="system", actor="migration trading 0005", action="disclosure.acknowledged",
                                 object_type="api_key", object_id=str(key.pk),
                                 after={"disclosure_version": "1", "acknowledged_by": BY}, reason=BY))
    AuditEvent.objects.bulk_create(events)


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0004_suitability"),
        ("audit", "0003_append_only"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
