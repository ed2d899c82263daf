"""What every source shares: its last good part and its health, read by the engine for the Report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ztmon.model.inventory import SourcePart

Notify = Callable[[], None]  # "my part changed": the engine schedules a (debounced) cycle


class Source:
    """A source refreshes fully on demand and may watch for changes in between.

    Health fields are written by the source itself (watch loops know when a stream breaks) and by the
    engine around `refresh()`.
    """

    name = "base"
    # Sources without a change feed of their own (procfs) are refreshed when another source reports a
    # change (a container started: its listeners appear now, not at the next resync).
    refresh_on_change = False

    def __init__(self) -> None:
        self.up = False
        self.error = ""
        self.last_success: datetime | None = None
        self.duration_seconds = 0.0
        self._odd: dict[str, int] = {}

    async def refresh(self) -> None:
        """Full resync. Raise on failure: the engine keeps the last good part and marks the source down."""
        raise NotImplementedError

    def part(self) -> SourcePart:
        """The last good state. Must not do I/O: it is read for every cycle."""
        raise NotImplementedError

    async def watch(self, notify: Notify) -> None:
        """Follow changes until cancelled. Sources without a change feed return at once."""
        del notify

    async def close(self) -> None:
        """Release clients and threads."""

    def odd_inputs(self) -> dict[str, int]:
        """Cumulative counts of odd input items skipped, by kind (a truncated /proc line, an unreadable
        inspect reply, ...): each is logged once and counted here, exported as a counter."""
        return self._odd

    def count_odd(self, kind: str, n: int = 1) -> None:
        self._odd[kind] = self._odd.get(kind, 0) + n

    def mark_up(self) -> None:
        self.up = True
        self.error = ""
        self.last_success = datetime.now(UTC)

    def mark_down(self, error: str) -> bool:
        """Record a failure; True when this is a transition (log once, not on every retry)."""
        changed = self.up or self.error != error
        self.up = False
        self.error = error
        return changed
