"""syncd.engine."""
