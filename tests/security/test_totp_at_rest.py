"""Authenticator (TOTP) seeds are encrypted at rest; django-otp keeps working (issue 8, item 13)."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

from tests.staff_helpers import staff_member


def _raw_keys() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM otp_totp_totpdevice ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_the_raw_column_holds_no_seed_and_the_token_still_verifies() -> None:
    member = staff_member("op1", "Operator")
    device = member.device
    device.refresh_from_db()
    seed = device.key
    assert len(seed) == 40 and int(seed, 16) >= 0  # the app still sees the hex seed
    [raw] = _raw_keys()
    assert seed not in raw and seed.upper() not in raw.upper()
    assert raw.startswith("enc1$") and len(raw) <= 80
    assert device.verify_token(member.token())
    assert not device.verify_token("000000") or True  # a wrong code does not crash
    assert "secret=" in device.config_url  # the QR code still carries the seed to the operator


@pytest.mark.django_db
def test_login_with_a_totp_code_works_with_encrypted_seeds(client) -> None:
    member = staff_member("op2", "Operator")
    response = client.post("/admin/login/?next=/admin/", {"username": "op2", "password": member.password,
                                                            "otp_token": member.token()})
    assert response.status_code == 302, response.content[:500]
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_the_data_migration_encrypts_seeds_stored_in_clear() -> None:
    from django.db.migrations.executor import MigrationExecutor
    from django_otp.plugins.otp_totp.models import TOTPDevice

    apps = MigrationExecutor(connection).loader.project_state(("staff", "0003_encrypt_totp_keys")).apps

    member = staff_member("op3", "Operator")
    seed = TOTPDevice.objects.get(pk=member.device.pk).key
    with connection.cursor() as cursor:  # a seed written before this change
        cursor.execute("UPDATE otp_totp_totpdevice SET key = %s WHERE id = %s", [seed, member.device.pk])
    assert _raw_keys() == [seed]
    assert TOTPDevice.objects.get(pk=member.device.pk).key == seed  # old rows stay readable
    migration = importlib.import_module("staff.migrations.0003_encrypt_totp_keys")
    migration.encrypt_seeds(apps, connection.schema_editor())
    [raw] = _raw_keys()
    assert raw.startswith("enc1$") and seed not in raw
    assert TOTPDevice.objects.get(pk=member.device.pk).key == seed
    migration.decrypt_seeds(apps, connection.schema_editor())
    assert _raw_keys() == [seed]


@pytest.mark.django_db
def test_no_migration_is_missing_for_the_swapped_field() -> None:
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_an_oversized_key_is_refused_by_validation() -> None:
    from django.core.exceptions import ValidationError
    from django_otp.plugins.otp_totp.models import TOTPDevice

    field = TOTPDevice._meta.get_field("key")
    with pytest.raises(ValidationError):
        field.run_validators("ab" * 40)
    field.run_validators("ab" * 20)


@pytest.mark.django_db
def test_an_administrator_adds_an_authenticator_in_admin_and_gets_its_qr_code(admin_client) -> None:
    from django.contrib.auth.models import User
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = User.objects.create_user("op4", "op4@example.invalid", "x", is_staff=True)
    seed = "3132333435363738393031323334353637383930"
    response = admin_client.post("/admin/otp_totp/totpdevice/add/", {
        "user": user.pk, "name": "phone", "confirmed": "on", "key": seed, "step": 30, "t0": 0, "digits": 6,
        "tolerance": 1, "drift": 0, "throttling_failure_count": 0,
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    device = TOTPDevice.objects.get(user=user)
    assert device.key == seed and seed not in _raw_keys()[-1]
    config = admin_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/")
    assert config.status_code == 200
    qr = admin_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/")
    assert qr.status_code == 200 and qr["Content-Type"].startswith("image/")
    too_long = admin_client.post("/admin/otp_totp/totpdevice/add/", {
        "user": user.pk, "name": "long", "key": "ab" * 40, "step": 30, "t0": 0, "digits": 6, "tolerance": 1,
        "drift": 0, "throttling_failure_count": 0,
    })
    assert too_long.status_code == 200 and TOTPDevice.objects.filter(name="long").count() == 0
