"""Model labels in the reader's language.

The domain models spell their labels (verbose names, choices, help texts) as
plain Chinese strings (``"资金账户"``), and fields without a label get Django's
English default (``"created at"``).
So that an operator who picks English reads English (and one who keeps the
default reads Chinese), the labels of the project's own models are wrapped
in ``gettext_lazy`` once at start-up; the catalogues in ``locale/`` hold the
translations. Migrations are unaffected: ``makemigrations`` runs without an
active language, where a lazy label equals its plain text.

Once the models wrap their own labels, this shim can go.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.apps import apps
from django.db import models
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy, pgettext_lazy

PROJECT_APPS = ("trading", "orders", "conditions", "audit", "brokers", "risk", "monitoring")
# Third-party apps in admin whose labels are gettext already but have no Chinese catalogue.
THIRD_PARTY_APPS = ("axes", "otp_totp")


PLURAL = "plural"  # the context of plural model names: "委托" is "order" or "orders" in English


def _lazy(value: object, context: str | None = None) -> object:
    if isinstance(value, Promise):
        # Already lazy: our own wrapping (idempotent), or a label another library composes
        # without gettext (django-simple-history's "historical {}"); its text is the msgid.
        with translation.override(None):
            value = str(value)
    if isinstance(value, str) and value:
        return pgettext_lazy(context, value) if context else gettext_lazy(value)
    return value


def project_models() -> Iterator[type[models.Model]]:
    for label in PROJECT_APPS:
        if apps.is_installed(label):
            yield from apps.get_app_config(label).get_models(include_auto_created=False)


def third_party_labels() -> list[str]:
    """The admin labels of THIRD_PARTY_APPS (already lazy; listed so the catalogues carry Chinese)."""
    texts: set[str] = set()
    for label in THIRD_PARTY_APPS:
        if not apps.is_installed(label) and label not in {c.label for c in apps.get_app_configs()}:
            continue
        config = apps.get_app_config(label)
        texts.add(str(config.verbose_name))
        for model in config.get_models():
            texts.update(str(t) for t in (model._meta.verbose_name, model._meta.verbose_name_plural))
            texts.update(str(f.verbose_name) for f in model._meta.fields)
    return sorted(t for t in texts if t)


def model_labels() -> tuple[list[str], list[str]]:
    """Every label text of the project's apps and models, and their plural names (for the catalogues)."""
    texts: set[str] = {str(apps.get_app_config(label).verbose_name) for label in PROJECT_APPS if apps.is_installed(label)}
    plurals: set[str] = set()
    for model in project_models():
        opts = model._meta
        texts.add(str(opts.verbose_name))
        plurals.add(str(opts.verbose_name_plural))
        for field in opts.get_fields():
            if getattr(field, "auto_created", False) and not getattr(field, "concrete", False):
                continue
            for text in (getattr(field, "verbose_name", None), getattr(field, "help_text", None)):
                if text:
                    texts.add(str(text))
            for _value, label in getattr(field, "flatchoices", None) or []:
                texts.add(str(label))
    return sorted(t for t in texts if t), sorted(t for t in plurals if t)


def translate_model_labels() -> None:
    """Wrap the labels of the project's apps and models in gettext_lazy (idempotent); of the
    third-party apps only the app and model names (what the admin's menu shows)."""
    for label in THIRD_PARTY_APPS:
        if apps.is_installed(label) or label in {c.label for c in apps.get_app_configs()}:
            config = apps.get_app_config(label)
            config.verbose_name = _lazy(config.verbose_name)  # type: ignore[assignment]  # django-stubs: verbose names are typed str; a lazy gettext proxy is what Django expects here
            for model in config.get_models():
                opts = model._meta
                if isinstance(opts.verbose_name, str) and not isinstance(opts.verbose_name, Promise):
                    # Django's default plural is lazy ("{}s"): spell it out so it can be translated too.
                    opts.verbose_name_plural = _lazy(str(opts.verbose_name_plural))  # type: ignore[assignment]  # django-stubs: verbose names are typed str; a lazy gettext proxy is what Django expects here
                    opts.verbose_name = _lazy(opts.verbose_name)  # type: ignore[assignment]  # django-stubs: verbose names are typed str; a lazy gettext proxy is what Django expects here
    for label in PROJECT_APPS:
        if apps.is_installed(label):
            config = apps.get_app_config(label)
            config.verbose_name = _lazy(config.verbose_name)  # type: ignore[assignment]  # django-stubs: verbose names are typed str; a lazy gettext proxy is what Django expects here
    for model in project_models():
        opts = model._meta
        opts.verbose_name = _lazy(opts.verbose_name)  # type: ignore[assignment]  # django-stubs: verbose names are typed str; a lazy gettext proxy is what Django expects here
        opts.verbose_name_plural = _lazy(opts.verbose_name_plural, PLURAL)  # type: ignore[assignment]  # django-stubs: verbose names are typed str; a lazy gettext proxy is what Django expects here
        for field in opts.get_fields():
            if not isinstance(field, models.Field):
                continue
            field.verbose_name = _lazy(field.verbose_name)  # type: ignore[assignment]  # django-stubs: verbose names are typed str; a lazy gettext proxy is what Django expects here
            field.help_text = _lazy(field.help_text)  # type: ignore[assignment]  # django-stubs: help_text is typed str; a lazy gettext proxy is what Django expects here
            if field.choices and not callable(field.choices):
                field.choices = [(value, _lazy(label)) for value, label in field.flatchoices]
