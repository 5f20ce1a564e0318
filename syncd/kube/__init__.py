"""Kubernetes adapter: list-then-watch of nodes and pods into a slim :class:`KubeView`."""

from syncd.kube.client import make_api_client
from syncd.kube.watcher import Watcher
from syncd.kube.watching import WatchStats

__all__ = ["WatchStats", "Watcher", "make_api_client"]
