from decimal import Decimal, InvalidOperation

from django.db import migrations, models


def realized_from_audit(apps, schema_editor):
    """Existing sell fills: the realised P&L their ``order.filled`` audit event recorded."""
    AuditEvent = apps.get_model("audit", "AuditEvent")
    Fill = apps.get_model("orders", "Fill")
    events = (AuditEvent.objects.filter(action="order.filled", object_type="order")
              .values_list("after", flat=True).iterator(chunk_size=2000))
    for after in events:
        after = after or {}
        try:
            realized = Decimal(str((after.get("position") or {}).get("realized_pnl", "0")))
        except InvalidOperation:
            continue
        if realized and isinstance(after.get("fill"), int):
            Fill.objects.filter(pk=after["fill"]).update(realized_pnl=realized)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0004_compliance_indexes"),
        ("orders", "0006_discrepancy"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="reference_price",
            field=models.DecimalField(blank=True, decimal_places=4, max_digits=16, null=True, verbose_name="委托时参考价"),
        ),
        migrations.AddField(
            model_name="fill",
            name="realized_pnl",
            field=models.DecimalField(decimal_places=2, default=Decimal("0"), max_digits=20, verbose_name="已实现盈亏"),
        ),
        migrations.RunPython(realized_from_audit, migrations.RunPython.noop),
    ]
