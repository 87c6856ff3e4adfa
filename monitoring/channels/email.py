"""Email through Django's SMTP backend."""

from __future__ import annotations

import smtplib
from typing import Any

from monitoring.channels.base import ChannelFailure, ChannelPlugin, Message, register


@register
class EmailChannel(ChannelPlugin):
    """options: ``host``, ``port``, ``use_tls``, ``use_ssl``, ``from`` (sender), ``to`` (default
    recipients); secrets: ``username``, ``password``. Recipients: email addresses."""

    kind = "email"

    def send(self, message: Message) -> str:
        from django.core.mail import EmailMessage
        from django.core.mail.backends.smtp import EmailBackend

        to = list(message.recipients) or _split(self.options.get("to", ""))
        if not to:
            raise ChannelFailure("no recipient address", retry=False)
        backend = EmailBackend(
            host=self.options.get("host", "localhost"), port=int(self.options.get("port", 25)),
            username=self.secrets.get("username") or "", password=self.secrets.get("password") or "",
            use_tls=bool(self.options.get("use_tls")), use_ssl=bool(self.options.get("use_ssl")),
            timeout=self.timeout, fail_silently=False,
        )
        email = EmailMessage(subject=message.subject, body=message.body,
                             from_email=self.options.get("from") or "alerts@localhost", to=to,
                             headers={"X-Alert-Reference": message.reference, "X-Alert-Level": message.level})
        try:
            backend.send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            raise ChannelFailure(f"recipients refused: {', '.join(exc.recipients)}", retry=False) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelFailure(f"SMTP login refused ({exc.smtp_code})", retry=False) from None
        except smtplib.SMTPResponseException as exc:
            # 4xx: try again later; 5xx: this message will not be taken as it is
            raise ChannelFailure(f"SMTP answered {exc.smtp_code}", retry=400 <= exc.smtp_code < 500) from None
        except TimeoutError:
            raise ChannelFailure(f"SMTP server gave no answer within {self.timeout:g} s", maybe_sent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelFailure(f"SMTP: {exc.__class__.__name__}: {exc}") from None
        return message.reference


def _split(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value or "").split(",") if part.strip()]
