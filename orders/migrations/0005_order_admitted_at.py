from django.db import migrations, models
from django.db.models import F, Q


def mark_admitted(apps, schema_editor):
    """Every existing order went through admission, except replacements still waiting (NEW with an original)."""
    Order = apps.get_model("orders", "Order")
    Order.objects.exclude(Q(status="NEW") & Q(replaces__isnull=False)).update(admitted_at=F("created_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0004_outbox_owed_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="admitted_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="准入时间"),
        ),
        migrations.RunPython(mark_admitted, migrations.RunPython.noop),
    ]
