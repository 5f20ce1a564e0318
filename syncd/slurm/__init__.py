"""syncd.slurm."""
