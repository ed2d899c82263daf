"""The sink interface: the engine hands every new Report to each sink, isolated and timed."""

from __future__ import annotations

from ztmon.model.findings import Report


class Sink:
    name = "base"

    async def publish(self, report: Report) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Flush and release resources."""
