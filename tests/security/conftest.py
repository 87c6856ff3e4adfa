"""The security tests use the admin tests' logged-in staff fixtures."""

from tests.admin.conftest import admin_member_client, role_client  # noqa: F401
