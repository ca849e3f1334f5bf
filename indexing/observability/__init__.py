"""Freshness, lag, metrics, the overview and alerts."""
