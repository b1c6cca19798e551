"""The table behind the tushare source's rate limit shared by every worker (batchsync.sources.tushare_rate)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("batchsync", "0006_syncerror_view_traceback"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE TABLE tushare_rate_limit ("
                " key text PRIMARY KEY,"
                " next_at timestamptz NOT NULL)"
            ),
            reverse_sql="DROP TABLE tushare_rate_limit",
        ),
    ]
