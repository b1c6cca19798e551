"""The e-mail channel: through Django's mail settings (EMAIL_HOST ...), to BATCHSYNC ALERT_EMAILS."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from batchsync.exceptions import AlertDeliveryError


def email_send(subject: str, body: str, recipients: Sequence[str], *, timeout: float) -> None:
    """Send one mail; every socket operation waits at most `timeout` seconds.

    Raises `AlertDeliveryError`: retryable for a connection, timeout or temporary (4xx) SMTP
    error, not for a permanent (5xx) refusal.
    """
    connection = get_connection(fail_silently=False, timeout=timeout)
    message = EmailMessage(
        subject, body, settings.DEFAULT_FROM_EMAIL, list(recipients), connection=connection
    )
    try:
        message.send()
    except smtplib.SMTPResponseException as error:
        raise AlertDeliveryError(
            f"SMTP {error.smtp_code}: {_text(error.smtp_error)}", retryable=error.smtp_code < 500
        ) from error
    except smtplib.SMTPRecipientsRefused as error:
        raise AlertDeliveryError(
            f"SMTP refused the recipients: {error.recipients}", retryable=False
        ) from error
    except (smtplib.SMTPException, OSError) as error:
        raise AlertDeliveryError(f"SMTP: {error or type(error).__name__}") from error


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
