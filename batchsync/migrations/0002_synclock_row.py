from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def create_lock_row(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("batchsync", "SyncLock").objects.get_or_create(id=1)


class Migration(migrations.Migration):
    dependencies = [("batchsync", "0001_initial")]
    operations = [migrations.RunPython(create_lock_row, migrations.RunPython.noop)]
