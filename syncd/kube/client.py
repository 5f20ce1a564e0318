"""Building the kubernetes-asyncio ApiClient from settings: a kubeconfig, or in-cluster.

An empty ``kubeconfig`` means in-cluster config when running in a pod (the ServiceAccount token
and CA, https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/), else the usual
``$KUBECONFIG``/``~/.kube/config`` lookup.
"""

from __future__ import annotations

import os

from kubernetes_asyncio import client, config

from syncd.settings.kube import KubeSettings


async def make_api_client(settings: KubeSettings) -> client.ApiClient:
    """An ApiClient for the configured cluster; close it with ``await api.close()``."""
    if not settings.kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return client.ApiClient(configuration=configuration)
    api: client.ApiClient = await config.new_client_from_config(
        config_file=settings.kubeconfig or None, context=settings.context or None,
        persist_config=False)
    return api

