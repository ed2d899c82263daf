"""Pure checks: Snapshot -> Iterable[Finding]. No I/O, no clock (the clock is `snapshot.taken_at`)."""
