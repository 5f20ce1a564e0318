"""syncd.kube."""
