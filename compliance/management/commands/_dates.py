"""Dates as the report commands read them."""

from datetime import date

from django.core.management.base import CommandError

from trading.i18n import bilingual


def parse_day(text: str, option: str) -> date:
    """``text`` as a date, or a CommandError naming ``option`` and the form it wants."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(bilingual("{option}: dates are YYYY-MM-DD, not {text}", option=option, text=text)) from None
