"""Sending alerts: claim each pending delivery, try its channel with a capped backoff, record the outcome.

A delivery is claimed by one sender at a time (pending -> sending, a conditional UPDATE), so
the cluster task queued on commit and `batch_sync alerts check` never send it twice. A sender
that died while sending leaves the delivery `sending`; once longer than a delivery may take
(`alert_delivery_bound_seconds`) has passed, the next check takes it again. Every attempt is
counted and its error kept; a failing channel fails only its delivery, never a job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from django.db.models import Q
from django.utils import timezone

from batchsync.alert_models import AlertChannel, AlertDelivery, DeliveryStatus
from batchsync.alerts.email import email_send
from batchsync.alerts.payload import alert_payload, alert_subject, alert_text
from batchsync.alerts.webhook import webhook_post
from batchsync.backoff import doubling, retrying
from batchsync.conf import get_settings
from batchsync.exceptions import AlertDeliveryError
from batchsync.logs import log_event

logger = logging.getLogger("batchsync.alerts")


def alert_deliveries_due(now: dt.datetime) -> list[int]:
    """Deliveries to send: pending ones, and `sending` ones whose sender is long gone."""
    stale = now - dt.timedelta(seconds=get_settings().alert_delivery_bound_seconds)
    due = AlertDelivery.objects.filter(
        Q(status=DeliveryStatus.PENDING) | Q(status=DeliveryStatus.SENDING, claimed_at__lt=stale)
    )
    return list(due.order_by("created_at", "id").values_list("pk", flat=True))


def alert_delivery_claim(delivery_id: int, now: dt.datetime) -> bool:
    """Take the delivery for this sender; False when another sender has it or it is done."""
    stale = now - dt.timedelta(seconds=get_settings().alert_delivery_bound_seconds)
    claimable = Q(status=DeliveryStatus.PENDING) | Q(status=DeliveryStatus.SENDING, claimed_at__lt=stale)
    taken = AlertDelivery.objects.filter(claimable, pk=delivery_id).update(
        status=DeliveryStatus.SENDING, claimed_at=now
    )
    return taken == 1


def alert_delivery_send(delivery_id: int) -> AlertDelivery | None:
    """Send one delivery if this sender can claim it; None when another sender has it."""
    if not alert_delivery_claim(delivery_id, timezone.now()):
        return None
    delivery = AlertDelivery.objects.select_related("alert").get(pk=delivery_id)
    config = get_settings()

    def attempt(number: int) -> None:
        AlertDelivery.objects.filter(pk=delivery_id).update(attempts=delivery.attempts + number)
        _channel_send(delivery)

    def wait(error: BaseException, attempts: int) -> float:
        assert isinstance(error, AlertDeliveryError)
        AlertDelivery.objects.filter(pk=delivery_id).update(last_error=error.message[:2000])
        log_event(
            logger,
            "alert_attempt_failed",
            level=logging.WARNING,
            alert=delivery.alert_id,
            channel=delivery.channel,
            attempt=delivery.attempts + attempts,
            error=error.message,
        )
        if not error.retryable or attempts > config.alert_retries:
            raise error
        return doubling(config.alert_retry_backoff_seconds, attempts, config.alert_retry_backoff_max_seconds)

    try:
        retrying(attempt, retry_on=(AlertDeliveryError,), wait=wait)
    except AlertDeliveryError as error:
        _delivery_end(delivery, DeliveryStatus.FAILED, error.message)
    except Exception as error:  # a bug or a broken setting: the delivery fails, nothing else
        log_event(logger, "alert_bug", level=logging.ERROR, exc_info=True, alert=delivery.alert_id)
        _delivery_end(delivery, DeliveryStatus.FAILED, repr(error))
    else:
        _delivery_end(delivery, DeliveryStatus.SENT, "")
    delivery.refresh_from_db()
    return delivery


def _delivery_end(delivery: AlertDelivery, status: DeliveryStatus, error: str) -> None:
    """Record the delivery's outcome (a sent one keeps its last failed attempt's error)."""
    update: dict[str, object] = {"status": status}
    if status == DeliveryStatus.SENT:
        update["sent_at"] = timezone.now()
    else:
        update["last_error"] = error[:2000]
    AlertDelivery.objects.filter(pk=delivery.pk).update(**update)
    level = logging.INFO if status == DeliveryStatus.SENT else logging.ERROR
    event = "alert_sent" if status == DeliveryStatus.SENT else "alert_failed"
    log_event(
        logger, event, level=level, alert=delivery.alert_id, channel=delivery.channel, error=error or "-"
    )


def _channel_send(delivery: AlertDelivery) -> None:
    """One attempt through the delivery's channel, with the settings of now."""
    config = get_settings()
    payload = alert_payload(delivery.alert_id)
    if delivery.channel == AlertChannel.EMAIL:
        if not config.alert_emails:
            raise AlertDeliveryError("BATCHSYNC ALERT_EMAILS is no longer set", retryable=False)
        email_send(
            alert_subject(payload),
            alert_text(payload),
            config.alert_emails,
            timeout=config.alert_timeout_seconds,
        )
        return
    if not config.alert_webhook_url:
        raise AlertDeliveryError("BATCHSYNC ALERT_WEBHOOK_URL is no longer set", retryable=False)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    webhook_post(
        config.alert_webhook_url,
        config.alert_webhook_secret,
        body,
        event=delivery.alert.kind,
        delivery_id=delivery.pk,
        timeout=config.alert_timeout_seconds,
    )


def alert_deliver(alert_id: int) -> list[AlertDelivery]:
    """Send the alert's pending deliveries (the cluster task queued on commit)."""
    ids = AlertDelivery.objects.filter(alert_id=alert_id).values_list("pk", flat=True)
    return [sent for pk in list(ids) if (sent := alert_delivery_send(pk)) is not None]


def alert_deliveries_send_due() -> list[AlertDelivery]:
    """Send every delivery that is due (`batch_sync alerts check`, every minute on the cluster)."""
    return [
        sent for pk in alert_deliveries_due(timezone.now()) if (sent := alert_delivery_send(pk)) is not None
    ]
