import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("searchsync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from indexing.runtime.worker import install as install_cdc  # noqa: E402

install_cdc(app)
