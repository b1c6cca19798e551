"""Django admin for batchsync: see and steer jobs. Every write goes through `services`."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy

# The admin's "View site" opens the progress dashboard; the header names the project.
admin.site.site_url = "/sync/"
admin.site.site_header = gettext_lazy("batchsync administration")
admin.site.site_title = gettext_lazy("batchsync admin")

# Importing the modules registers their admins.
from batchsync.admin import alerts, findings, jobs, readonly, schedules  # noqa: E402
from batchsync.admin.forms import SyncJobStartForm  # noqa: E402

__all__ = ["SyncJobStartForm", "alerts", "findings", "jobs", "readonly", "schedules"]
