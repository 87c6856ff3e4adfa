"""Create the four roles (Operator, Risk manager, Compliance, Administrator) as groups.

The permissions of every migrated model are created first (Django would only
create them after the whole migrate run), then staff.roles.roles_sync gives
each group exactly the permissions of its role. The same sync runs again after
every migrate (staff.apps), so models added later join their roles.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_roles(apps, schema_editor):
    from staff.roles import roles_sync

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(apps)


def remove_roles(apps, schema_editor):
    from staff.roles import ROLES

    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("staff", "0001_staff_profile"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("trading", "0002_apikey_rate_limit"),
        ("orders", "0001_initial"),
        ("audit", "0001_initial"),
        ("brokers", "0001_initial"),
        ("risk", "0001_initial"),
        ("otp_totp", "0003_add_timestamps"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
