"""Staff users for admin and browser tests: a role, a password and a confirmed TOTP device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PASSWORD = "correct-horse-battery-staple-42"


@dataclass
class StaffMember:
    user: Any
    device: Any
    password: str = PASSWORD

    @property
    def username(self) -> str:
        return str(self.user.username)

    def token(self) -> str:
        """The current one-time password of the user's authenticator."""
        from django_otp.oath import totp

        device = self.device
        device.refresh_from_db()
        return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"


def staff_member(username: str, role: str | None, *, superuser: bool = False, with_device: bool = True,
                 acknowledged: bool = True) -> StaffMember:
    """A staff user; unless ``acknowledged=False`` they acknowledged the risk disclosure already."""
    from django.contrib.auth.models import Group, User
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from staff.models import StaffProfile
    from trading.clock import now
    from trading.suitability import RISK_DISCLOSURE_VERSION

    user = User.objects.create_user(username, f"{username}@example.invalid", PASSWORD, is_staff=True,
                                    is_superuser=superuser)
    if role:
        user.groups.add(Group.objects.get(name=role))
    if acknowledged:
        StaffProfile.objects.create(user=user, disclosure_version=RISK_DISCLOSURE_VERSION, disclosure_acknowledged_at=now())
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True) if with_device else None
    return StaffMember(user, device)


def verified_client(member: StaffMember) -> Any:
    """A test client logged in as ``member`` with the second factor passed."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY

    client = Client()
    client.force_login(member.user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = member.device.persistent_id
    session.save()
    return client
