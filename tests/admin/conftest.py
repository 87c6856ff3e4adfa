"""Fixtures of the admin tests: staff members of each role, logged in with the second factor."""

from __future__ import annotations

import pytest

from tests.staff_helpers import staff_member, verified_client


@pytest.fixture
def admin_member_client(db):
    """A client of a member of the Administrator role."""
    return verified_client(staff_member("boss", "Administrator"))


@pytest.fixture
def role_client(db):
    """role_client(role) -> a verified client of a new member of ``role``."""
    made: dict[str, object] = {}

    def make(role: str):
        if role not in made:
            made[role] = verified_client(staff_member(role.lower().replace(" ", "_"), role))
        return made[role]

    return make
