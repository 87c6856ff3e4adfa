"""Change lists filter only on what they declare.

Django's admin accepts a querystring lookup on any local field of the model
(``?broker_settings__regex=^a``, ``?key_hash__startswith=ab``,
``?password__startswith=pbkdf2``), which lets anyone with view rights recover a
column the page never shows, one character at a time. Every ModelAdmin the
back office's site registers, our own and third-party ones, gets
:class:`StrictLookupsMixin`: a lookup is allowed only on a field its
``list_filter`` or ``date_hierarchy`` declares (with the plain comparisons the
stock filters use), a declared ``SimpleListFilter`` parameter, or Django's own
``limit_choices_to`` popup lookups; never through a secret column. Anything
else is refused by the change list (400 Bad Request), so nothing is filtered.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.filters import SimpleListFilter
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.contrib.admin.widgets import url_params_from_lookup_dict
from django.core.exceptions import FieldDoesNotExist
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest

# Comparisons the stock list filters and our own links use. No pattern lookups
# (regex, contains, startswith...): they read a value out character by character.
SAFE_LOOKUPS = frozenset({"exact", "iexact", "in", "isnull", "isempty", "gt", "gte", "lt", "lte", "range",
                          "year", "month", "day", "date"})
# Columns no querystring may ever reach, whatever an admin declares.
SECRET_FIELD_NAMES = frozenset({"password", "key_hash", "broker_settings", "key", "secret", "token", "otp_secret"})


def _is_secret(field: Any) -> bool:
    from trading.crypto import EncryptedJSONField, EncryptedTextField

    return getattr(field, "name", "") in SECRET_FIELD_NAMES or isinstance(field, (EncryptedJSONField,
                                                                                   EncryptedTextField))


def _declared_paths(model_admin: admin.ModelAdmin, request: HttpRequest | None) -> tuple[set[str], set[str]]:
    """(field paths from list_filter and date_hierarchy, SimpleListFilter parameter names)."""
    items = model_admin.get_list_filter(request) if request is not None else model_admin.list_filter
    paths: set[str] = set()
    parameters: set[str] = set()
    for item in items:
        if isinstance(item, type) and issubclass(item, SimpleListFilter):
            parameters.add(str(item.parameter_name))
        elif isinstance(item, (list, tuple)):
            paths.add(str(item[0]))
        elif isinstance(item, str):
            paths.add(item)
    if model_admin.date_hierarchy:
        paths.add(model_admin.date_hierarchy)
    return paths, parameters


def lookup_is_declared(model_admin: admin.ModelAdmin, lookup: str, request: HttpRequest | None) -> bool:
    """True when ``lookup`` filters a declared list_filter / date_hierarchy field with a safe comparison."""
    paths, parameters = _declared_paths(model_admin, request)
    if lookup in parameters:
        return True
    parts = lookup.split(LOOKUP_SEP)
    for cut in range(len(parts), 0, -1):
        path = LOOKUP_SEP.join(parts[:cut])
        if path not in paths:
            continue
        try:
            fields = get_fields_from_path(model_admin.model, path)
        except (FieldDoesNotExist, NotRelationField):
            return False
        if any(_is_secret(field) for field in fields):
            return False
        rest = parts[cut:]
        last = fields[-1]
        if rest and last.is_relation and last.related_model is not None:
            # RelatedFieldListFilter: account__id__exact (the target field, then a comparison).
            target = getattr(last, "target_field", None)
            names = {"pk", "id", getattr(target, "name", "id")}
            if rest[0] in names:
                rest = rest[1:]
        return len(rest) <= 1 and all(part in SAFE_LOOKUPS for part in rest)
    return False


class StrictLookupsMixin:
    """lookup_allowed: only declared filters (see the module docstring)."""

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        model_admin: admin.ModelAdmin = self  # type: ignore[assignment]  # a mixin: only ever mixed into a ModelAdmin
        # Popups of raw-id widgets filter by a relation's limit_choices_to: allowed as Django does,
        # for exactly that lookup and value.
        for fk_lookup in model_admin.model._meta.related_fkey_lookups:
            if callable(fk_lookup):
                fk_lookup = fk_lookup()
            if (lookup, value) in url_params_from_lookup_dict(fk_lookup).items():
                return True
        if not lookup_is_declared(model_admin, lookup, request):
            return False
        return super().lookup_allowed(lookup, value, request)  # type: ignore[misc,no-any-return]  # a mixin: super() is the ModelAdmin it is mixed into, unknown to mypy


def strict(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """``admin_class`` with StrictLookupsMixin in front (unchanged when it already has it)."""
    if issubclass(admin_class, StrictLookupsMixin):
        return admin_class
    return type(admin_class.__name__, (StrictLookupsMixin, admin_class),
                {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__})
