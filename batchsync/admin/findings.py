"""The data checks' findings in the admin: a read-only list, filtered by check, severity, job and day."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy

from batchsync.admin.readonly import _ReadOnlyAdmin
from batchsync.check_models import DayFinding
from batchsync.checks import CHECK_DESCRIPTIONS, example_text


@admin.register(DayFinding)
class DayFindingAdmin(_ReadOnlyAdmin):
    list_display = ("trade_date", "check_name", "severity", "count", "job", "first_example")
    list_filter = ("severity", "check_name")
    list_select_related = ("job",)
    search_fields = ("job__task_id", "check_name")
    date_hierarchy = "trade_date"
    fields = (
        "trade_date",
        "check_name",
        "description",
        "severity",
        "count",
        "job",
        "day",
        "examples_shown",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description=gettext_lazy("example"))
    def first_example(self, finding: DayFinding) -> str:
        return example_text(finding.check_name, finding.examples[0]) if finding.examples else ""

    @admin.display(description=gettext_lazy("what the check asks"))
    def description(self, finding: DayFinding) -> str:
        return str(CHECK_DESCRIPTIONS.get(finding.check_name, ""))

    @admin.display(description=gettext_lazy("examples"))
    def examples_shown(self, finding: DayFinding) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(finding.examples, indent=2, ensure_ascii=False))
