"""Encrypt the authenticator (TOTP) seeds stored in clear (staff/totp.py).

The historical model reads and writes the column as it is, so this migration
sees the stored values: hex seeds become ``enc1$...``; values already
encrypted are left alone. Reversing decrypts them back to hex.
"""

from django.db import migrations


def encrypt_seeds(apps, schema_editor):
    from staff.totp import encrypt_key

    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    for pk, key in TOTPDevice.objects.using(schema_editor.connection.alias).values_list("pk", "key"):
        stored = encrypt_key(key)
        if stored != key:
            TOTPDevice.objects.using(schema_editor.connection.alias).filter(pk=pk).update(key=stored)


def decrypt_seeds(apps, schema_editor):
    from staff.totp import decrypt_key

    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    for pk, key in TOTPDevice.objects.using(schema_editor.connection.alias).values_list("pk", "key"):
        plain = decrypt_key(key)
        if plain != key:
            TOTPDevice.objects.using(schema_editor.connection.alias).filter(pk=pk).update(key=plain)


class Migration(migrations.Migration):
    dependencies = [
        ("staff", "0002_roles"),
        ("otp_totp", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(encrypt_seeds, decrypt_seeds)]
