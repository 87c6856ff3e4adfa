"""Staff login: password plus a TOTP one-time password, lockout after repeated failures, demo exemption."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from tests.staff_helpers import PASSWORD, staff_member

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


def login(client: Client, username: str, password: str = PASSWORD, token: str = ""):
    return client.post(LOGIN, {"username": username, "password": password, "otp_token": token, "next": "/admin/"})


def test_login_page_asks_for_the_one_time_password_in_chinese_by_default() -> None:
    response = Client().get(LOGIN)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="otp_token"' in html
    assert "一次性密码" in html and "登录" in html
    assert response["Content-Language"] == "zh-hans"


def test_password_and_current_totp_log_in() -> None:
    member = staff_member("op1", "Operator")
    client = Client()
    response = login(client, "op1", token=member.token())
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("token", ["", "000000", "12345"])
def test_password_alone_or_a_wrong_code_is_refused(token: str) -> None:
    member = staff_member("op1", "Operator")
    if token == "000000" and member.token() == "000000":
        token = "111111"
    client = Client()
    response = login(client, "op1", token=token)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert client.get("/admin/").status_code == 302  # still not in


def test_user_without_an_authenticator_cannot_log_in() -> None:
    staff_member("nodevice", "Operator", with_device=False)
    response = login(Client(), "nodevice", token="123456")
    assert response.status_code == 200
    assert "管理员" in response.content.decode()  # "ask an administrator to enrol one"


def test_a_session_without_the_second_factor_is_sent_to_login() -> None:
    member = staff_member("op1", "Operator")
    client = Client()
    client.force_login(member.user)  # password only: no OTP device in the session
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_repeated_wrong_passwords_lock_the_user_out_even_with_the_right_password() -> None:
    member = staff_member("op1", "Operator")
    for _ in range(4):
        assert login(Client(), "op1", password="wrong", token="123456").status_code == 200
    locked = login(Client(), "op1", password="wrong", token="123456")
    assert locked.status_code == 429
    assert "锁定" in locked.content.decode()
    assert login(Client(), "op1", token=member.token()).status_code == 429


def test_repeated_wrong_one_time_passwords_count_towards_the_lockout() -> None:
    member = staff_member("op1", "Operator")
    wrong = "999999" if member.token() != "999999" else "888888"
    statuses = [login(Client(), "op1", token=wrong).status_code for _ in range(6)]
    assert statuses[-1] == 429, statuses
    assert login(Client(), "op1", token=member.token()).status_code == 429


@override_settings(DEMO_MODE=True)
def test_demo_mode_lets_only_the_demo_admin_in_without_a_one_time_password() -> None:
    staff_member("admin", None, superuser=True, with_device=False)
    staff_member("op1", "Operator", with_device=False)
    client = Client()
    assert login(client, "admin").status_code == 302
    assert client.get("/admin/").status_code == 200
    assert login(Client(), "op1").status_code == 200  # refused: not the demo admin


def test_without_demo_mode_the_admin_user_needs_the_one_time_password_too() -> None:
    staff_member("admin", None, superuser=True, with_device=False)
    response = login(Client(), "admin")
    assert response.status_code == 200 and response.context["form"].errors
