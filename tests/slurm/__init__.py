"""Integration tests of syncd.slurm against a real slurmctld (scripts/slurm-sandbox)."""
