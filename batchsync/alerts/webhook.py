"""The webhook channel: a JSON POST signed with HMAC-SHA256 (docs/alerts.md, "Verifying the webhook").

Headers: `X-Batchsync-Timestamp` (Unix seconds), `X-Batchsync-Signature`
(`sha256=` + hex HMAC-SHA256 of `<timestamp>.<body>` under BATCHSYNC ALERT_WEBHOOK_SECRET),
`X-Batchsync-Event` (the alert's kind) and `X-Batchsync-Delivery` (the delivery's id, the same
on every retry, for the receiver to drop repeats).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request

from batchsync.exceptions import AlertDeliveryError

SIGNATURE_HEADER = "X-Batchsync-Signature"
TIMESTAMP_HEADER = "X-Batchsync-Timestamp"
# Answers worth another try: the receiver is busy or broken for now.
RETRYABLE_STATUSES = frozenset({408, 425, 429})


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>` under the secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_post(url: str, secret: str, body: bytes, *, event: str, delivery_id: int, timeout: float) -> int:
    """POST the body, signed now; return the HTTP status of a 2xx answer.

    Every socket operation (connect, send, the answer) waits at most `timeout` seconds.
    Raises `AlertDeliveryError`: retryable for a timeout, a connection error, 5xx, 408 and 429.
    """
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "batchsync-alerts",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: webhook_signature(secret, timestamp, body),
            "X-Batchsync-Event": event,
            "X-Batchsync-Delivery": str(delivery_id),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        retryable = error.code >= 500 or error.code in RETRYABLE_STATUSES
        raise AlertDeliveryError(f"HTTP {error.code} {error.reason}", retryable=retryable) from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error or type(error).__name__
        raise AlertDeliveryError(f"webhook: {reason}") from error
