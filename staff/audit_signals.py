"""Staff sign-ins and role changes in the audit log, from Django's own signals.

- ``staff.logged_in`` / ``staff.logged_out`` / ``staff.login_failed`` (a wrong password or a
  wrong one-time password: ``staff.forms.StaffLoginForm`` sends the signal for both), each with the
  client address; a failed login names the user name tried, never the password.
- ``staff.roles_changed``: a user's groups (the roles, ``staff.roles``) changed, from either side
  of the relation, with the roles before and after.
- ``staff.role_permissions_changed``: a group's permissions changed other than by ``roles_sync``
  (which puts the groups back to the table in ``staff.roles`` after every migrate: the table's
  history is the code's).
- ``staff.user_changed``: a user created, or their staff, superuser or active flag changed.

The acting operator comes from the request django-simple-history's middleware keeps for the
thread (``HistoricalRecords.context``); without one (a shell, a command) the system acts.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_save, pre_save

from audit.services import Actor, audit_record

_SYNCING = contextvars.ContextVar("staff_roles_syncing", default=False)
USER_FLAGS = ("is_staff", "is_superuser", "is_active")


@contextmanager
def roles_syncing() -> Iterator[None]:
    """Within it, group permission changes are the roles table being applied: not recorded."""
    token = _SYNCING.set(True)
    try:
        yield
    finally:
        _SYNCING.reset(token)


def _address(request: Any) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown") if request is not None else ""


def _current_request() -> Any:
    from simple_history.models import HistoricalRecords

    return getattr(HistoricalRecords.context, "request", None)


def _acting() -> tuple[Actor, str]:
    request = _current_request()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Actor.user(user.get_username()), _address(request)
    return Actor.system(), _address(request)


def logged_in(sender: Any, request: Any = None, user: Any = None, **_: Any) -> None:
    audit_record(actor=Actor.user(user.get_username()), action="staff.logged_in", object_type="staff", object_id=user.pk,
                 after={"address": _address(request)})


def logged_out(sender: Any, request: Any = None, user: Any = None, **_: Any) -> None:
    if user is None:
        return
    audit_record(actor=Actor.user(user.get_username()), action="staff.logged_out", object_type="staff", object_id=user.pk,
                 after={"address": _address(request)})


def login_failed(sender: Any, credentials: Any = None, request: Any = None, **_: Any) -> None:
    username = str((credentials or {}).get("username") or "")[:128]
    audit_record(actor=Actor.user(username or "(none)"), action="staff.login_failed", object_type="staff",
                 object_id=username, after={"address": _address(request), "username": username})


def _group_names(user: Any) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def user_groups_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **_: Any) -> None:
    User = get_user_model()
    if action in ("pre_add", "pre_remove", "pre_clear"):
        users = [instance] if not reverse else list(User.objects.filter(pk__in=pk_set or ()))
        if reverse and action == "pre_clear":
            users = list(instance.user_set.all())
        for user in users:
            user.__dict__.setdefault("_audit_groups_before", _group_names(user))
        if reverse:
            instance.__dict__["_audit_users"] = users
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    users = [instance] if not reverse else instance.__dict__.pop("_audit_users", [])
    actor, address = _acting()
    for user in users:
        before = user.__dict__.pop("_audit_groups_before", None)
        after = _group_names(user)
        if before == after:
            continue
        audit_record(actor=actor, action="staff.roles_changed", object_type="staff", object_id=user.pk,
                     before={"username": user.get_username(), "roles": before},
                     after={"username": user.get_username(), "roles": after, "address": address})


def group_permissions_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **_: Any) -> None:
    if _SYNCING.get() or reverse or action not in ("post_add", "post_remove", "post_clear"):
        return
    from django.contrib.auth.models import Permission

    names = sorted(f"{app}.{code}" for app, code in Permission.objects.filter(pk__in=pk_set or ())
                   .values_list("content_type__app_label", "codename"))
    actor, address = _acting()
    audit_record(actor=actor, action="staff.role_permissions_changed", object_type="role", object_id=instance.pk,
                 after={"role": instance.name, "change": action.removeprefix("post_"), "permissions": names,
                        "address": address})


def user_flags_before(sender: Any, instance: Any, update_fields: Any = None, **_: Any) -> None:
    if instance.pk is None or (update_fields is not None and not set(update_fields) & set(USER_FLAGS)):
        return
    instance.__dict__["_audit_flags_before"] = (type(instance).objects.filter(pk=instance.pk).values(*USER_FLAGS).first())


def user_flags_after(sender: Any, instance: Any, created: bool, update_fields: Any = None, **_: Any) -> None:
    before = instance.__dict__.pop("_audit_flags_before", None)
    after = {flag: getattr(instance, flag) for flag in USER_FLAGS}
    if not created and (before is None or before == after):
        return
    actor, address = _acting()
    audit_record(actor=actor, action="staff.user_changed", object_type="staff", object_id=instance.pk,
                 before={"username": instance.get_username(), **before} if before else None,
                 after={"username": instance.get_username(), **after, "address": address,
                        **({"created": True} if created else {})})


def connect() -> None:
    User = get_user_model()
    user_logged_in.connect(logged_in, dispatch_uid="staff.audit.logged_in")
    user_logged_out.connect(logged_out, dispatch_uid="staff.audit.logged_out")
    user_login_failed.connect(login_failed, dispatch_uid="staff.audit.login_failed")
    m2m_changed.connect(user_groups_changed, sender=User.groups.through, dispatch_uid="staff.audit.user_groups")
    m2m_changed.connect(group_permissions_changed, sender=Group.permissions.through, dispatch_uid="staff.audit.group_perms")
    pre_save.connect(user_flags_before, sender=User, dispatch_uid="staff.audit.user_flags_before")
    post_save.connect(user_flags_after, sender=User, dispatch_uid="staff.audit.user_flags_after")
