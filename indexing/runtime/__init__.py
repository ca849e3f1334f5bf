"""Processes: the worker bootstep, the pipeline runner and the thread supervisor."""
