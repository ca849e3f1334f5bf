"""How long the relay waits between two rounds while rows trickle in.

A round (claim, produce, flush, mark) and the consumer's batch behind it cost about the same
whether they carry one event or twenty, so waiting a little between rounds makes each round carry
several events. The wait is also what every event spends in the outbox before it is published.

A fixed wait is wrong at both ends: long enough to be cheap at 20 events/s, it holds every event
back by half of it on average at 400/s, where rounds would fill on their own far sooner. So the
wait is what it takes for ``events`` rows to arrive at the rate the last rounds saw, kept between
``shortest_s`` (the cost per event stays bounded as the rate rises) and ``longest_s`` (at low rates
a round carries what came, no event waits longer).
"""

from __future__ import annotations

# Weight of the newest round in the estimate: a step in the rate is followed within a few rounds.
# What is smoothed is the time between two rows, not the rate: one burst of rows then barely moves
# it (a round of hundreds counts as a short interval, not as a rate hundreds of times higher), and a
# falling rate lengthens the wait at once, the cheap direction.
SMOOTHING = 0.3


class Linger:
    """``after_round(rows, now)`` once per round that published rows; ``seconds`` is the wait before
    the next round starts, counted from this one's start. ``reset()`` after an idle spell: the rate
    seen before it says nothing about the rows that end it."""

    def __init__(self, longest_s: float, shortest_s: float = 0.0, events: int = 0):
        self.longest_s = max(0.0, longest_s)
        self.shortest_s = min(max(0.0, shortest_s), self.longest_s)
        self.events = max(0, events)
        self._interval: float | None = None  # seconds between two rows, smoothed
        self._last_start: float | None = None

    def after_round(self, rows: int, started: float) -> None:
        """A round that started at ``started`` (monotonic seconds) published ``rows``: they arrived
        since the previous round started."""
        if rows > 0 and self._last_start is not None and started > self._last_start:
            seen = (started - self._last_start) / rows
            self._interval = seen if self._interval is None else SMOOTHING * seen + (1 - SMOOTHING) * self._interval
        self._last_start = started

    def reset(self) -> None:
        self._interval = None
        self._last_start = None

    @property
    def rate(self) -> float | None:
        """Rows per second the last rounds saw; None before two rounds in a row had rows."""
        return None if not self._interval else 1 / self._interval

    @property
    def seconds(self) -> float:
        if not self.events or self._interval is None:
            return self.longest_s
        return min(self.longest_s, max(self.shortest_s, self.events * self._interval))
