"""slurmd pods shaped the way SchedMD Slinky's NodeSet controller makes them.

SlinkyProject/slurm-operator (internal/controller/nodeset/utils/utils.go, api/v1beta1/
well_known.go, internal/builder/labels/labels.go; summarised in docs/slinky.md):

- labels ``app.kubernetes.io/name: slurmd``, ``app.kubernetes.io/instance: <nodeset>``,
  ``app.kubernetes.io/component: worker``, ``slinky.slurm.net/cluster: <controller>``, and
  ``nodeset.slinky.slurm.net/{pod-name, pod-hostname, scaling-mode}`` (``pod-index`` in
  StatefulSet mode). ``pod-hostname`` is the Slurm node name.
- StatefulSet mode (the default): pod ``<nodeset>-<ordinal>`` (zero-padded to
  ``ordinalPadding``); ``spec.hostname`` is the pod template's hostname plus the ordinal when
  the template sets one (``gpu`` -> ``gpu001``), else the pod name.
- DaemonSet mode: one pod per node, named ``<nodeset>-<random>`` (generateName),
  ``spec.hostname`` the node's short name (up to the first dot) or the node's
  ``nodeset.slinky.slurm.net/hostname-override`` annotation.
- The controller leaves ``spec.nodeName`` empty; the scheduler binds the pod. A pod that is
  not bound yet is Pending without ``nodeName``.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping, Sequence
from typing import Any

from kubesim.cluster import pod_data

PREFIX = "nodeset.slinky.slurm.net/"
HOSTNAME_LABEL = PREFIX + "pod-hostname"
MODES = ("StatefulSet", "DaemonSet")


def daemonset_hostname(node: str, override: str = "") -> str:
    """GetDaemonSetPodHostname: the override, else the node name up to its first dot."""
    return override or node.split(".", 1)[0]


def _labels(nodeset: str, cluster: str, mode: str, pod: str, hostname: str,
            index: str) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": "slurmd",
        "app.kubernetes.io/instance": nodeset,
        "app.kubernetes.io/component": "worker",
        "slinky.slurm.net/cluster": cluster,
        PREFIX + "pod-name": pod,
        HOSTNAME_LABEL: hostname,
        PREFIX + "scaling-mode": mode,
    }
    if index:
        labels[PREFIX + "pod-index"] = index
    return labels


def nodeset_pod(*, nodeset: str, namespace: str, cluster: str, mode: str, node: str | None,
                ordinal: int = 0, padding: int = 0, override: str = "", gpus: int = 0,
                resource: str = "nvidia.com/gpu", hostname: str = "") -> dict[str, Any]:
    """One NodeSet pod, bound to ``node`` (Running) or unscheduled (``None``: Pending)."""
    if mode not in MODES:
        raise ValueError(f"scaling mode must be one of {', '.join(MODES)}")
    if mode == "StatefulSet":
        index = f"{ordinal:0{padding}d}"
        name = f"{nodeset}-{index}"
        hostname = f"{hostname}{index}" if hostname else name
    else:
        if node is None:
            raise ValueError("a DaemonSet pod is made for one node")
        index = ""
        alphabet = string.ascii_lowercase + string.digits
        name = f"{nodeset}-" + "".join(secrets.choice(alphabet) for _ in range(5))
        hostname = daemonset_hostname(node, override)
    data = pod_data({"name": name, "node": node or "-", "namespace": namespace, "gpus": gpus,
                     "resource": resource,
                     "labels": _labels(nodeset, cluster, mode, name, hostname, index)})
    meta, spec = data["metadata"], data["spec"]
    meta["ownerReferences"] = [{"apiVersion": "slinky.slurm.net/v1beta1", "kind": "NodeSet",
                                "name": nodeset, "uid": meta["uid"], "controller": True,
                                "blockOwnerDeletion": True}]
    spec["hostname"] = hostname
    spec["restartPolicy"] = "Always"
    spec["containers"][0]["name"] = "slurmd"
    spec["containers"][0]["image"] = "ghcr.io/slinkyproject/slurmd:26.05-ubuntu26.04"
    data["status"]["containerStatuses"][0]["name"] = "slurmd"
    if node is None:
        del spec["nodeName"]
        data["status"] = {"phase": "Pending", "qosClass": data["status"].get("qosClass", ""),
                          "conditions": [{"type": "PodScheduled", "status": "False",
                                          "reason": "Unschedulable"}]}
    return data


def nodeset_pods(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pods of one NodeSet from a scenario request (see SimClient.nodeset)."""
    nodes: Sequence[str | None] = body.get("nodes") or ()
    overrides: Mapping[str, str] = body.get("hostname_overrides") or {}
    start = int(body.get("start", 0))
    return [nodeset_pod(nodeset=str(body.get("name", "slinky")),
                        namespace=str(body.get("namespace", "slurm")),
                        cluster=str(body.get("cluster", "slurm")),
                        mode=str(body.get("mode", "StatefulSet")), node=node,
                        ordinal=start + i, padding=int(body.get("padding", 0)),
                        override=overrides.get(node or "", ""), gpus=int(body.get("gpus", 0)),
                        resource=str(body.get("resource", "nvidia.com/gpu")),
                        hostname=str(body.get("hostname", "")))
            for i, node in enumerate(nodes)]
