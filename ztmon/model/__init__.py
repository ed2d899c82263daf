"""Frozen value types only: no I/O, no clock, no third-party imports."""
