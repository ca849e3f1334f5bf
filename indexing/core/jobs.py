"""Enqueue a Celery task by its name.

Services enqueue work for their own ``tasks`` module, and those tasks call the
services back: importing the task object would make an import cycle. Looking it
up in the Celery registry by name keeps the modules layered (tasks on top) and
still honours ``task_always_eager``, since ``.delay`` runs on the registered task."""

from __future__ import annotations

from importlib import import_module

from celery import current_app


def enqueue(task_name: str, *args, **kwargs):
    if task_name not in current_app.tasks:
        # Workers import every tasks module at start; a web process may not have yet.
        import_module(task_name.rsplit(".", 1)[0])
    return current_app.tasks[task_name].delay(*args, **kwargs)
