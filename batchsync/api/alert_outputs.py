"""Output serializers of alerts: the API's list and the webhook's `alert` object (one shape)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from batchsync.alert_models import AlertChannel, AlertKind, DeliveryStatus


class AlertDeliveryOutputSerializer(serializers.Serializer[Any]):
    """One alert through one channel."""

    channel = serializers.ChoiceField(
        choices=AlertChannel.choices, help_text=gettext_lazy("email or webhook.")
    )
    target = serializers.CharField(
        allow_blank=True, help_text=gettext_lazy("The addresses, or the webhook URL.")
    )
    status = serializers.ChoiceField(
        choices=DeliveryStatus.choices, help_text=gettext_lazy("pending, sending, sent or failed.")
    )
    attempts = serializers.IntegerField(help_text=gettext_lazy("Attempts so far."))
    last_error = serializers.CharField(
        allow_blank=True, help_text=gettext_lazy("Why the last attempt failed (empty if none).")
    )
    sent_at = serializers.DateTimeField(allow_null=True, help_text=gettext_lazy("When it was delivered."))


class AlertOutputSerializer(serializers.Serializer[Any]):
    """An alert: what happened, to which scope, how often, and whether it is resolved."""

    id = serializers.IntegerField(help_text=gettext_lazy("Alert id."))
    kind = serializers.ChoiceField(choices=AlertKind.choices, help_text=gettext_lazy("What happened."))
    scope = serializers.CharField(
        help_text=gettext_lazy("What groups alerts: schedule:<id>, source:<name>, or test.")
    )
    source = serializers.CharField(allow_blank=True, help_text=gettext_lazy("Data source name."))  # type: ignore[assignment]
    task_id = serializers.CharField(
        allow_null=True,
        help_text=gettext_lazy("Task id of the job it is about, if any (`selectors.alert_list`)."),
    )
    trade_date = serializers.DateField(
        allow_null=True, help_text=gettext_lazy("The trading day a missed deadline expected.")
    )
    message = serializers.CharField(help_text=gettext_lazy("What happened, in the site's language."))
    occurrences = serializers.IntegerField(
        help_text=gettext_lazy("How many events it stands for (repeats are grouped into it).")
    )
    grouped_into = serializers.IntegerField(
        source="grouped_into_id",
        allow_null=True,
        help_text=gettext_lazy("The open alert this event was grouped into (not sent)."),
    )
    resolved_at = serializers.DateTimeField(
        allow_null=True, help_text=gettext_lazy("When a successful run closed it.")
    )
    resolved_by = serializers.IntegerField(
        source="resolved_by_id",
        allow_null=True,
        help_text=gettext_lazy("The recovered alert that closed it."),
    )
    created_at = serializers.DateTimeField(help_text=gettext_lazy("When it was raised."))
    last_seen_at = serializers.DateTimeField(help_text=gettext_lazy("When it last occurred."))
    deliveries = AlertDeliveryOutputSerializer(
        many=True, help_text=gettext_lazy("Each channel's delivery (none for a grouped event).")
    )
