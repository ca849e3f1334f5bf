"""What one reconciliation found, per drift class: counts and a sample of ids."""

from __future__ import annotations

from dataclasses import dataclass, field

from indexing.models import Reconciliation


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Reconciliation.DRIFT_CLASSES, 0))
    samples: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in Reconciliation.DRIFT_CLASSES})

    def add(self, drift_class: str, ids: list[str]) -> None:
        self.counts[drift_class] += len(ids)
        room = Reconciliation.SAMPLE_SIZE - len(self.samples[drift_class])
        if room > 0:
            self.samples[drift_class].extend(ids[:room])
