"""A logging filter that keeps keys, passwords and URL credentials out of every log line."""

from __future__ import annotations

import logging
import re

from trading.debug import mask_url_credentials

_API_KEY = re.compile(r"\btbo_[0-9a-f]+_[A-Za-z0-9_\-]+")
_AUTHORIZATION = re.compile(r"(?i)\b(Bearer|Token|Basic|Digest)\s+[A-Za-z0-9._~+/=\-]{8,}")


def redact(text: str) -> str:
    """``text`` without API keys, Authorization header values or URL passwords."""
    text = _API_KEY.sub("tbo_<redacted>", text)
    text = _AUTHORIZATION.sub(lambda m: f"{m.group(1)} <redacted>", text)
    return mask_url_credentials(text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message with :func:`redact` (the record goes on, redacted)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
