#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys


def main():
    # By hand in a checkout: the devstack's development defaults (config/settings_local.py). The
    # WSGI app and the Celery app default to config.settings, which refuses insecure defaults.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_local")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
