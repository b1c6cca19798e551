from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

REAPER = "batchsync.tasks.sync_jobs_recover_stalled"


def add_reaper_schedule(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    schedule = apps.get_model("django_q", "Schedule")
    schedule.objects.update_or_create(
        name="batchsync reaper",
        defaults={"func": REAPER, "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove_reaper_schedule(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("django_q", "Schedule").objects.filter(name="batchsync reaper").delete()


class Migration(migrations.Migration):
    dependencies = [("batchsync", "0002_synclock_row"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(add_reaper_schedule, remove_reaper_schedule)]
