"""`daily_bar.ts_code` compares bytewise (COLLATE "C").

Every row a COPY loads is compared with its neighbours in the primary key index: under the
server's locale (C.UTF-8, en_US.UTF-8, ICU) each comparison goes through strcoll, bytewise it is
a memcmp. The codes are ASCII, so the order is the same. Postgres rebuilds the primary key
index here, under an exclusive lock on `daily_bar`: seconds per million rows.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("batchsync", "0003_reaper_schedule"),
    ]

    operations = [
        migrations.AlterField(
            model_name="dailybar",
            name="ts_code",
            field=models.CharField(db_collation="C", max_length=12),
        ),
    ]
