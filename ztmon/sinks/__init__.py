"""Sinks: one file each; each renders or ships the last Report."""
