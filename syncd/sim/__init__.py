"""syncd.sim."""
