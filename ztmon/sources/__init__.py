"""Sources: one file each; each fills its part of the Snapshot and keeps its last good state."""
