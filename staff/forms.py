"""Forms of the operators' pages: the two-factor login and the action forms."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.utils.translation import gettext_lazy as _

from staff.security import two_factor_required
from trading.models import Account, TradingState


class StaffLoginForm(AdminAuthenticationForm):
    """Username, password and the six digits of the operator's authenticator app.

    A wrong code counts as a failed login for the lockout (django-axes), the same
    as a wrong password; the device itself also throttles repeated failures.
    """

    otp_token = forms.CharField(
        label=_("One-time password"),
        required=False,
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]*",
                                      "placeholder": "123456"}),
        help_text=_("The 6 digits shown by your authenticator app."),
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "otp_required": _("Enter the one-time password from your authenticator app."),
        "otp_invalid": _("The one-time password is wrong or has expired."),
        "otp_no_device": _("No authenticator is set up for this user; ask an administrator to enrol one."),
        "otp_throttled": _("Too many wrong one-time passwords; wait a moment and try again."),
    }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        user = self.get_user()
        if user is None or not two_factor_required(user):
            return cleaned
        from django_otp.plugins.otp_totp.models import TOTPDevice

        device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
        if device is None:
            raise forms.ValidationError(self.error_messages["otp_no_device"], code="otp_no_device")
        token = (cleaned.get("otp_token") or "").strip().replace(" ", "")
        if not token:
            raise forms.ValidationError(self.error_messages["otp_required"], code="otp_required")
        allowed, _extra = device.verify_is_allowed()
        if not allowed:
            self._count_failure()
            raise forms.ValidationError(self.error_messages["otp_throttled"], code="otp_throttled")
        if not device.verify_token(token):
            self._count_failure()
            raise forms.ValidationError(self.error_messages["otp_invalid"], code="otp_invalid")
        user.otp_device = device  # type: ignore[attr-defined]  # django_otp's login hook records it in the session
        return cleaned

    def _count_failure(self) -> None:
        user_login_failed.send(sender=__name__, credentials={"username": self.cleaned_data.get("username")},
                               request=self.request)


class ReasonForm(forms.Form):
    """Confirmation page of an action; the reason is required when ``reason_required``."""

    reason = forms.CharField(label=_("Reason"), max_length=500, required=False,
                             widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))

    def __init__(self, *args: Any, reason_required: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = reason_required
        self.fields["reason"].error_messages["required"] = _("A reason is required.")
        if reason_required:
            self.fields["reason"].help_text = _("Required. It is written to the audit trail.")
        else:
            self.fields["reason"].help_text = _("Optional. It is written to the audit trail.")

    def clean_reason(self) -> str:
        reason = (self.cleaned_data.get("reason") or "").strip()
        if self.fields["reason"].required and not reason:
            raise forms.ValidationError(_("A reason is required."))
        return reason


class OrderModifyForm(forms.Form):
    """New price and/or quantity of a working order (cancel-and-replace)."""

    price = forms.DecimalField(label=_("New price"), required=False, max_digits=16, decimal_places=4,
                               min_value=Decimal("0.001"))
    quantity = forms.IntegerField(label=_("New total quantity"), required=False, min_value=1)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("price") is None and cleaned.get("quantity") is None:
            raise forms.ValidationError(_("Give a new price, a new quantity or both."))
        return cleaned


class TradingStateForm(ReasonForm):
    state = forms.ChoiceField(label=_("Trading state"), choices=TradingState.choices)
    cancel_open_orders = forms.BooleanField(label=_("Also cancel open orders"), required=False,
                                            help_text=_("Orders on their way to the broker are left to it."))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["reason_required"] = True
        super().__init__(*args, **kwargs)
        choices = [(value, _(str(label))) for value, label in TradingState.choices]
        self.fields["state"].choices = choices  # type: ignore[attr-defined]  # django-stubs: Field has no choices; this field is a ChoiceField
        self.order_fields(["state", "cancel_open_orders", "reason"])


SCOPE_TRADE = "trade"
SCOPE_READ_ONLY = "read_only"


class ApiKeyCreateForm(forms.Form):
    """What a new key may do; the key itself is made by trading.auth.api_key_create."""

    name = forms.SlugField(label=_("Name"), max_length=64, help_text=_("The strategy or script that uses the key."))
    accounts = forms.ModelMultipleChoiceField(label=_("Accounts"), queryset=Account.objects.order_by("name"),
                                              widget=forms.CheckboxSelectMultiple)
    scope = forms.ChoiceField(label=_("Scope"), choices=[(SCOPE_TRADE, _("May trade")), (SCOPE_READ_ONLY, _("Read only"))],
                              initial=SCOPE_READ_ONLY, widget=forms.RadioSelect)
    market_data = forms.BooleanField(label=_("May publish market data (paper market)"), required=False)
    rate_limit_per_second = forms.IntegerField(label=_("Requests per second"), min_value=0, initial=100,
                                               help_text=_("0 means no limit."))
    disclosure_acknowledged_by = forms.CharField(
        label=_("Risk disclosure acknowledged by"), max_length=128, required=False,
        help_text=_("The key's owner, who has read and acknowledged the risk disclosure with you (recorded in the audit "
                    "log). Empty: the key answers 403 until its owner acknowledges it through the API."))


class TradingPermissionsForm(ReasonForm):
    """The trading permissions the broker granted an account, each with the date granted (empty:
    not granted), and the account's owner (whose risk-tolerance assessment applies)."""

    owner = forms.CharField(label=_("Owner"), max_length=128, required=False,
                            help_text=_("The investor whose risk assessment applies. Empty: the account name."))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from trading.suitability import TradingPermission

        kwargs["reason_required"] = True
        super().__init__(*args, **kwargs)
        for code, label in TradingPermission.choices:
            self.fields[f"perm_{code}"] = forms.DateField(label=label, required=False,
                                                          help_text=_("Date granted. Empty: not granted."),
                                                          widget=forms.DateInput(attrs={"type": "date"}))
        self.order_fields(["owner", *(f"perm_{code}" for code in TradingPermission.values), "reason"])

    @classmethod
    def initial_for(cls, account: Any) -> dict[str, Any]:
        return {"owner": account.owner, **{f"perm_{code}": day for code, day in (account.trading_permissions or {}).items()}}

    def permissions(self) -> dict[str, Any]:
        from trading.suitability import TradingPermission

        return {code: self.cleaned_data.get(f"perm_{code}") for code in TradingPermission.values}
