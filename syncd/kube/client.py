"""Building the kubernetes-asyncio ApiClient from settings: a kubeconfig, or in-cluster.

An empty ``kubeconfig`` means in-cluster config when running in a pod (the ServiceAccount token
and CA, https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/), else the usual
``$KUBECONFIG``/``~/.kube/config`` lookup. When none of them is there, or the kubeconfig is
unusable, :class:`KubeConfigError` says so in one line that names the file and what to set.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from kubernetes_asyncio import client, config
from kubernetes_asyncio.config import ConfigException

from syncd.settings.kube import KubeSettings


class KubeConfigError(Exception):
    """No usable Kubernetes client configuration; the message says what to set."""


def _default_kubeconfig() -> str:
    """The first of ``$KUBECONFIG`` (a colon-separated list), else ``~/.kube/config``."""
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return listed[0] if listed else str(Path("~/.kube/config").expanduser())


async def make_api_client(settings: KubeSettings) -> client.ApiClient:
    """An ApiClient for the configured cluster; close it with ``await api.close()``."""
    if not settings.kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return client.ApiClient(configuration=configuration)
    path = settings.kubeconfig or _default_kubeconfig()
    if not await asyncio.to_thread(Path(path).is_file):
        raise KubeConfigError(
            f"no kubeconfig at {path}, and this is not a pod (no KUBERNETES_SERVICE_HOST): set "
            "kubernetes.kubeconfig (or $KUBECONFIG) to a kubeconfig file, or run syncd in "
            "the cluster")
    try:
        api: client.ApiClient = await config.new_client_from_config(
            config_file=path, context=settings.context or None, persist_config=False)
    except ConfigException as exc:
        raise KubeConfigError(
            f"{path} is not a usable kubeconfig ({' '.join(str(exc).split())}): fix it, or "
            "choose a context with kubernetes.context") from None
    return api

