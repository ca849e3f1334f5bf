"""Settings of ``manage.py`` run by hand in a checkout: the ordinary settings with DEBUG's development
defaults (development key, local hosts), the local devstack's addresses.

Only ``manage.py`` defaults to this module, as cookiecutter-django's does; the deployed entry points
(``config/wsgi.py``, the Celery app) default to ``config.settings``, which refuses to start without
a real secret key and host list unless ``DJANGO_DEBUG=true`` is set, whatever ran in the checkout
before. Deployments that run ``manage.py`` (migrations in docker-compose) set
``DJANGO_SETTINGS_MODULE=config.settings``.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from config.settings import *  # noqa: E402,F403
