from django.apps import AppConfig


class BatchsyncConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "batchsync"
