"""The commit rule with several batches in flight.

Batches are registered in the order they were polled and resolved in any order
(their bulks may overlap). Offsets are released for commit strictly in poll
order: a batch's offsets are released only once it and every batch polled
before it are resolved. A failed batch holds back every batch polled after it;
the consumer then rewinds to the failed batch (and everything after it) and
processes them again. Replays are harmless: writes carry external versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from indexing.blueprints.contracts import Incoming


@dataclass
class _Entry:
    seq: int
    messages: list[Incoming]
    resolved: bool = False
    failed: bool = False


@dataclass
class CommitOrder:
    _entries: list[_Entry] = field(default_factory=list)
    _next_seq: int = 0

    def register(self, messages: list[Incoming]) -> int:
        """Record a freshly polled batch; returns its sequence number."""
        seq = self._next_seq
        self._next_seq += 1
        self._entries.append(_Entry(seq, messages))
        return seq

    def resolve(self, seq: int) -> None:
        self._entry(seq).resolved = True

    def fail(self, seq: int) -> None:
        self._entry(seq).failed = True

    def releasable(self) -> list[Incoming]:
        """Messages of the resolved prefix, removed from the book; commit their offsets now."""
        out: list[Incoming] = []
        while self._entries and self._entries[0].resolved and not self._entries[0].failed:
            out.extend(self._entries.pop(0).messages)
        return out

    def blocked_by_failure(self) -> bool:
        return any(e.failed for e in self._entries)

    def discard_all(self) -> list[Incoming]:
        """Forget every batch still in the book (after a failure, before rewinding); their messages."""
        out = [m for e in self._entries for m in e.messages]
        self._entries.clear()
        return out

    def holds(self, seq: int) -> bool:
        return any(e.seq == seq for e in self._entries)

    def in_flight(self) -> int:
        return len(self._entries)

    def _entry(self, seq: int) -> _Entry:
        for e in self._entries:
            if e.seq == seq:
                return e
        raise KeyError(f"batch {seq} is not in flight")
