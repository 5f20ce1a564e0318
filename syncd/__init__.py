"""syncd: keeps Slurm's view of nodes and GPUs in step with Kubernetes."""

__version__ = "0.1.0"
