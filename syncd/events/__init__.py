"""syncd.events."""
