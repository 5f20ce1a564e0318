"""The Helm chart, rendered by the real Helm engine and checked against Kubernetes and syncd.

Rendering uses ``helm-python-sdk`` (import name ``helm_python``): a ctypes binding to a C ABI
over Helm's own Go SDK (v4), shipped inside the wheel. It renders, lints and checks
``values.schema.json`` exactly as ``helm template``/``helm lint`` do, offline, with no helm
binary. Every rendered object is validated by ``kubernetes-validate`` against the OpenAPI
schemas it bundles (strict: unknown fields are errors) for the oldest and newest Kubernetes the
chart supports. The rendered config goes through ``syncd.config.load``, so the chart cannot
drift from the config schema, and the Slinky sidecar snippet is checked against the names the
chart renders.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml

from syncd.config import load
from syncd.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "syncd"
SIDECAR_EXAMPLE = CHART / "examples" / "slinky-sidecar-values.yaml"
RELEASE = "syncd"
NAMESPACE = "slurm"
# Chart.yaml's kubeVersion floor (native sidecars are on by default from 1.29) and the newest
# schemas kubernetes-validate ships.
KUBE_VERSIONS = ("1.29", kubernetes_validate.latest_version())
# Kinds from CRDs, which kubernetes-validate has no schema for; checked by hand below.
CRD_KINDS = {("monitoring.coreos.com/v1", kind)
             for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule")}
RULES_FILE = CHART / "files" / "prometheus-rules.yaml"
DASHBOARD_FILE = CHART / "files" / "grafana-dashboard.json"
MONITORING = {"prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}}
SA_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

Manifest = dict[str, Any]


@cache
def _render_cached(values_json: str, namespace: str) -> tuple[tuple[str, str], ...]:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(
            json.loads(values_json), name=RELEASE, namespace=namespace, is_install=True
        )
    return tuple(sorted(rendered.items()))


def render(values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE) -> list[Manifest]:
    """Every object the chart renders for ``values``, in template order."""
    files = _render_cached(json.dumps(values or {}, sort_keys=True), namespace)
    docs: list[Manifest] = []
    for path, text in files:
        if path.endswith(".yaml"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def one(docs: list[Manifest], kind: str) -> Manifest:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def kinds(docs: list[Manifest]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def validate(doc: Manifest) -> None:
    """Validate one object against the Kubernetes OpenAPI schemas, strictly."""
    if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
        assert doc["metadata"]["name"], doc
        assert doc["spec"], doc
        return
    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} @ {version}: {where}: {exc}")


def configmap_config(docs: list[Manifest]) -> dict[str, Any]:
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"
             and not d["metadata"]["name"].endswith("-dashboard")]
    data = cm["data"]
    assert set(data) == {"syncd.yaml"}
    config: dict[str, Any] = yaml.safe_load(data["syncd.yaml"])
    return config


def load_rendered(docs: list[Manifest]) -> Settings:
    """The config exactly as `syncd run` in the pod reads it, environment overrides included."""
    env = {"SYNCD_DAEMON__LEADER_ELECTION__IDENTITY": "syncd-7d9f-abcde"}
    return load(configmap_config(docs), env)


def container(docs: list[Manifest], name: str = "syncd") -> Manifest:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (found,) = [c for c in pod["containers"] if c["name"] == name]
    assert isinstance(found, dict)
    return found


def read_values_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return schema


def default_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


# --- both modes render, lint and validate ------------------------------------------------------

MODES: dict[str, dict[str, Any]] = {
    "standalone": {},
    "standalone-everything": {
        "serviceMonitor": {"enabled": True},
        **MONITORING,
        "slurm": {
            "etc": {
                "configMaps": ["slurm-config"],
                "secrets": [{"name": "slurm-auth-slurm", "key": "slurm.key"}],
            },
            "munge": {"enabled": True},
        },
        "extraEnv": [
            {
                "name": "SYNCD_EVENTS__MQTT__PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "syncd-mqtt", "key": "password"}},
            }
        ],
        "extraContainers": [{"name": "munged", "image": "munge:0.5"}],
        "extraVolumes": [{"name": "extra", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
        "imagePullSecrets": [{"name": "regcred"}],
        "priorityClassName": "system-cluster-critical",
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "image": {"digest": "sha256:" + "a" * 64},
    },
    "standalone-slinky": {
        "slurm": {"slinky": {"configMap": "slurm-config", "slurmKeySecret": "slurm-auth-slurm"}},
        "config": {"kubernetes": {"name_mapping": {"mode": "pod"}},
                   "policy": {"cordon": "slurm-operator"}},
    },
    "sidecar": {"mode": "sidecar"},
    "sidecar-monitored": {"mode": "sidecar", "serviceMonitor": {"enabled": True}},
    "mirror": {"config": {"policy": {"mirror": {"enabled": True, "taint": True}}}},
    "sidecar-podmonitor": {"mode": "sidecar", "podMonitor": {"enabled": True}, **MONITORING},
    "standalone-podmonitor": {"podMonitor": {"enabled": True, "labels": {"release": "p"}}},
    "sidecar-slinky": {"mode": "sidecar",
                       "config": {"kubernetes": {"name_mapping": {"mode": "pod"}}}},
}


@pytest.mark.parametrize("values", MODES.values(), ids=list(MODES))
def test_every_rendered_object_is_valid_kubernetes(values: dict[str, Any]) -> None:
    docs = render(values)
    assert docs
    for doc in docs:
        assert doc["metadata"].get("namespace", NAMESPACE) == NAMESPACE
        validate(doc)


@pytest.mark.parametrize("values", MODES.values(), ids=list(MODES))
def test_helm_lint_is_clean(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    # Severity 1 is informational ("icon is recommended"); warnings and errors fail.
    serious = [m for m in report["messages"] if m["severity"] >= 2]
    assert not serious, report
    assert not report["errors"], report


def test_standalone_renders_a_deployment_and_everything_it_needs() -> None:
    assert kinds(render()) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]


def test_sidecar_mode_renders_no_workload() -> None:
    assert kinds(render({"mode": "sidecar"})) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]


def test_servicemonitor_selects_the_metrics_service() -> None:
    docs = render({"serviceMonitor": {"enabled": True}})
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"


def test_podmonitor_selects_the_syncd_pods_and_their_port() -> None:
    docs = render({"podMonitor": {"enabled": True}})
    monitor = one(docs, "PodMonitor")
    pod = one(docs, "Deployment")["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {p["name"] for p in container(docs)["ports"]}
    assert endpoint["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]


def test_sidecar_podmonitor_scrapes_the_snippets_port_on_the_slurmctld_pods() -> None:
    monitor = one(render({"mode": "sidecar", "podMonitor": {"enabled": True}}), "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == default_values()["sidecar"]["podSelector"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {p["name"] for p in sidecar_container()["ports"]}


def test_servicemonitor_and_podmonitor_together_are_refused() -> None:
    with pytest.raises(helm.HelmError, match="enable serviceMonitor or podMonitor, not both"):
        render({"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}})


def test_monitoring_objects_are_off_by_default() -> None:
    assert not {"PodMonitor", "PrometheusRule", "ServiceMonitor"} & set(kinds(render()))
    assert [d["metadata"]["name"] for d in render() if d["kind"] == "ConfigMap"] == ["syncd"]


def test_prometheus_rule_holds_the_rules_file_with_the_extra_labels() -> None:
    docs = render({"prometheusRule": {"enabled": True, "labels": {"release": "prom"},
                                      "ruleLabels": {"team": "hpc", "severity": "page"}}})
    rule = one(docs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom"
    expected = yaml.safe_load(RULES_FILE.read_text())["groups"]
    for group in expected:
        for r in group["rules"]:
            r["labels"] = {"team": "hpc", **r["labels"]}  # the rule's own severity wins
    assert rule["spec"]["groups"] == expected
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert len(alerts) == len(set(alerts)) >= 10
    assert "{{ $labels.sink }}" in yaml.safe_dump(rule)  # Prometheus' templates, left alone


def test_dashboard_configmap_holds_the_dashboard_for_grafanas_sidecar() -> None:
    docs = render({"grafanaDashboard": {"enabled": True, "namespace": "monitoring",
                                        "annotations": {"grafana_folder": "Slurm"}}},)
    (cm,) = [d for d in docs if d["metadata"]["name"] == "syncd-dashboard"]
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Slurm"}
    assert json.loads(cm["data"]["syncd.json"]) == json.loads(DASHBOARD_FILE.read_text())


def test_dashboard_panels_query_prometheus_with_the_job_variable() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 15
    assert all('job=~"$job"' in e for e in exprs), exprs
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {"${datasource}"}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


# --- the Deployment ----------------------------------------------------------------------------


def test_deployment_defaults_to_two_replicas_spread_over_nodes() -> None:
    deployment = one(render(), "Deployment")
    assert deployment["spec"]["replicas"] == 2
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_deployment_runs_non_root_read_only_without_capabilities() -> None:
    docs = render()
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    ctx = container(docs)["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert container(docs)["resources"]["requests"]


def test_deployment_probes_livez_and_readyz_on_the_configured_port() -> None:
    docs = render({"port": 9123})
    c = container(docs)
    (port,) = c["ports"]
    assert port["containerPort"] == 9123
    for probe, path in (("startupProbe", "/livez"), ("livenessProbe", "/livez")):
        assert c[probe]["httpGet"] == {"path": path, "port": port["name"]}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert load_rendered(docs).daemon.listen == "0.0.0.0:9123"
    assert one(docs, "Service")["spec"]["ports"][0]["targetPort"] == 9123


def test_deployment_runs_syncd_with_the_rendered_config_and_its_service_account() -> None:
    docs = render()
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    c = container(docs)
    assert c["args"] == ["run", "--config", "/etc/syncd/syncd.yaml"]
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is True
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_volume = volumes[mounts["/etc/syncd"]]
    assert config_volume["configMap"]["name"] == one(docs, "ConfigMap")["metadata"]["name"]


def test_state_dir_is_a_writable_emptydir() -> None:
    docs = render()
    state_dir = load_rendered(docs).daemon.state_dir
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (mount,) = [m for m in container(docs)["volumeMounts"] if m["mountPath"] == state_dir]
    assert not mount.get("readOnly", False)
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume


def test_slurm_etc_and_munge_volumes_are_mounted_when_configured() -> None:
    docs = render(MODES["standalone-everything"])
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    etc = volumes[mounts["/etc/slurm"]["name"]]["projected"]
    assert mounts["/etc/slurm"]["readOnly"] is True
    assert {"configMap": {"name": "slurm-config"}} in etc["sources"]
    assert etc["defaultMode"] & 0o007 == 0, "slurm.key must not be world-readable"
    assert mounts["/run/munge"]["name"] == "munge-socket"
    assert load_rendered(docs).slurm.conf == "/etc/slurm/slurm.conf"
    assert [c["name"] for c in pod["containers"]] == ["syncd", "munged"]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "syncd@sha256:" + "a" * 64
    )


def test_standalone_mounts_slurm_conf_and_the_key_from_named_slinky_objects() -> None:
    docs = render(MODES["standalone-slinky"])
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    etc = volumes[mounts["/etc/slurm"]["name"]]["projected"]
    assert etc["sources"] == [
        {"configMap": {"name": "slurm-config"}},
        {"secret": {"name": "slurm-auth-slurm",
                    "items": [{"key": "slurm.key", "path": "slurm.key"}]}},
    ]
    assert etc["defaultMode"] & 0o007 == 0
    settings = load_rendered(docs)
    assert settings.slurm.conf == "/etc/slurm/slurm.conf"
    assert settings.kubernetes.name_mapping.mode == "pod"
    assert settings.policy.cordon == "slurm-operator"
    # Nothing named, nothing mounted.
    plain = render()
    assert "/etc/slurm" not in {m["mountPath"] for m in container(plain)["volumeMounts"]}


def test_standalone_runs_as_a_uid_slurmctld_lets_write() -> None:
    """slurmctld accepts node updates from root, SlurmUser or an Operator (docs/slinky.md):
    the default is Slinky's SlurmUser, uid/gid 401, and the fsGroup reads slurm.key."""
    pod = one(render(MODES["standalone-slinky"]), "Deployment")["spec"]["template"]["spec"]
    ctx = pod["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) == (401, 401, 401)
    assert SLINKY_POD["securityContext"]["runAsUser"] == ctx["runAsUser"]
    other = {"runAsNonRoot": True, "runAsUser": 990, "runAsGroup": 990, "fsGroup": 990}
    pod = one(render({"podSecurityContext": other}), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 990


@pytest.mark.parametrize("mode", ["standalone", "sidecar"])
def test_the_operator_socket_is_in_the_state_dir_where_kubectl_exec_finds_it(mode: str) -> None:
    docs = render({"mode": mode})
    settings = load_rendered(docs)
    assert settings.daemon.socket_path() == settings.daemon.state_dir + "/operator.sock"
    if mode == "standalone":
        c = container(docs)
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert not mounts[settings.daemon.state_dir].get("readOnly", False)
    else:
        c = sidecar_container()
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["SYNCD_CONFIG"] == c["args"][-1] == "/etc/syncd/syncd.yaml"
    ok = render({"config": {"daemon": {"operator_socket": "/var/lib/syncd/run/op.sock"}}})
    assert load_rendered(ok).daemon.socket_path() == "/var/lib/syncd/run/op.sock"
    with pytest.raises(helm.HelmRenderError, match="must be in the state dir"):
        render({"config": {"daemon": {"operator_socket": "/run/syncd.sock"}}})


def test_a_config_change_rolls_the_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        annotations = one(render(values), "Deployment")["spec"]["template"]["metadata"]
        return str(annotations["annotations"]["checksum/config"])

    assert checksum({}) != checksum({"config": {"policy": {"drain_after": "45s"}}})


# --- RBAC --------------------------------------------------------------------------------------


Rule = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def rules(doc: Manifest) -> list[Rule]:
    """(apiGroups, resources, sorted verbs, resourceNames) of each rule."""
    return [
        (
            tuple(r["apiGroups"]),
            tuple(r["resources"]),
            tuple(sorted(r["verbs"])),
            tuple(r.get("resourceNames", ())),
        )
        for r in doc["rules"]
    ]


@pytest.mark.parametrize("mode", ["standalone", "sidecar"])
def test_rbac_is_least_privilege(mode: str) -> None:
    docs = render({"mode": mode})
    lease = load_rendered(docs).daemon.leader_election
    assert rules(one(docs, "ClusterRole")) == [
        (("",), ("nodes", "pods"), ("get", "list", "watch"), ()),
    ]
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE == lease.lease_namespace
    assert rules(role) == [
        (("coordination.k8s.io",), ("leases",), ("create",), ()),
        (("coordination.k8s.io",), ("leases",), ("get", "patch", "update"), (lease.lease_name,)),
    ]
    for doc in docs:
        for rule in doc.get("rules", []):
            flat = [*rule["apiGroups"], *rule["resources"], *rule["verbs"]]
            assert "*" not in flat
            assert "secrets" not in rule["resources"]


@pytest.mark.parametrize("mode", ["standalone", "sidecar"])
def test_node_patch_rights_only_with_the_mirror(mode: str) -> None:
    """policy.mirror writes syncd's condition (nodes/status) and its taint key (nodes); the
    ClusterRole can patch nodes only when it is enabled, and still reads nothing more."""
    read = (("",), ("nodes", "pods"), ("get", "list", "watch"), ())
    for off in ({}, {"enabled": False}, {"enabled": False, "taint": True}):
        docs = render({"mode": mode, "config": {"policy": {"mirror": off}}})
        assert rules(one(docs, "ClusterRole")) == [read]
    docs = render({"mode": mode, "config": {"policy": {"mirror": {"enabled": True}}}})
    assert rules(one(docs, "ClusterRole")) == [
        read, (("",), ("nodes/status",), ("patch",), ()), (("",), ("nodes",), ("patch",), ())]
    assert load_rendered(docs).policy.mirror.enabled is True
    # The Role is unchanged: the mirror needs nothing in the namespace.
    assert rules(one(docs, "Role")) == rules(one(render({"mode": mode}), "Role"))


@pytest.mark.parametrize("mode", ["standalone", "sidecar"])
def test_bindings_grant_the_roles_to_syncds_service_account_only(mode: str) -> None:
    docs = render({"mode": mode})
    account = one(docs, "ServiceAccount")["metadata"]
    subject = {"kind": "ServiceAccount", "name": account["name"], "namespace": NAMESPACE}
    for binding, role in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        doc = one(docs, binding)
        assert doc["subjects"] == [subject]
        assert doc["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role,
            "name": one(docs, role)["metadata"]["name"],
        }


def test_cluster_scoped_names_differ_between_namespaces() -> None:
    a = one(render(namespace="team-a"), "ClusterRole")["metadata"]["name"]
    b = one(render(namespace="team-b"), "ClusterRole")["metadata"]["name"]
    assert a != b


# --- the config the chart renders is one syncd accepts -----------------------------------------


@pytest.mark.parametrize("mode", ["standalone", "sidecar"])
def test_rendered_config_passes_syncds_loader(mode: str) -> None:
    settings = load_rendered(render({"mode": mode}))
    assert settings.daemon.listen == "0.0.0.0:8080"
    assert settings.daemon.state_dir == "/var/lib/syncd"
    assert settings.daemon.leader_election.enabled is True
    assert settings.daemon.leader_election.lease_namespace == NAMESPACE
    assert settings.daemon.leader_election.lease_name == RELEASE
    assert settings.daemon.leader_election.identity == "syncd-7d9f-abcde"


def test_user_config_is_passed_through() -> None:
    config = {
        "cluster": "gpu-a",
        "policy": {"drain_after": "45s", "batch_size": 250, "drain_taints": ["a/b"]},
        "events": {"spool_max_events": 10_000_000, "redis": {"url": "redis://redis:6379/1"}},
        "slurm": {"conf": "/opt/slurm/etc/slurm.conf", "calls_per_second": 7.5},
        "daemon": {"resync_every": "10m", "leader_election": {"lease_duration": "20s"}},
        "logging": {"format": "text"},
    }
    settings = load_rendered(render({"config": config}))
    assert settings.cluster == "gpu-a"
    assert settings.policy.drain_after == 45.0
    assert settings.policy.batch_size == 250
    assert settings.policy.drain_taints == ("a/b",)
    assert settings.events.spool_max_events == 10_000_000
    assert settings.events.redis.url == "redis://redis:6379/1"
    assert settings.slurm.conf == "/opt/slurm/etc/slurm.conf", "user's slurm.conf wins"
    assert settings.slurm.calls_per_second == 7.5
    assert settings.daemon.resync_every == 600.0
    assert settings.daemon.leader_election.lease_duration == 20.0
    assert settings.daemon.leader_election.lease_namespace == NAMESPACE
    assert settings.logging.format == "text"


def test_lease_name_follows_the_value_in_config_and_role() -> None:
    docs = render({"leaderElection": {"leaseName": "gpu-a-syncd"}})
    assert load_rendered(docs).daemon.leader_election.lease_name == "gpu-a-syncd"
    assert one(docs, "Role")["rules"][1]["resourceNames"] == ["gpu-a-syncd"]


@pytest.mark.parametrize(
    "config",
    [
        {"daemon": {"listen": "0.0.0.0:9000"}},
        {"daemon": {"state_dir": "/data"}},
        {"daemon": {"leader_election": {"lease_namespace": "other"}}},
        {"daemon": {"leader_election": {"lease_name": "other"}}},
    ],
)
def test_chart_owned_config_keys_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmRenderError, match="set by the chart"):
        render({"config": config})


def test_two_replicas_without_leader_election_are_refused() -> None:
    off = {"config": {"daemon": {"leader_election": {"enabled": False}}}}
    with pytest.raises(helm.HelmRenderError, match="two writers"):
        render(off)
    assert load_rendered(render({**off, "replicas": 1})).daemon.leader_election.enabled is False


def test_values_schema_lists_exactly_syncds_config_sections() -> None:
    sections = read_values_schema()["properties"]["config"]["properties"]
    assert set(sections) == {f.name for f in dataclasses.fields(Settings)}


# --- values.schema.json ------------------------------------------------------------------------

BAD_VALUES = {
    "negative replicas": {"replicas": -1},
    "zero replicas": {"replicas": 0},
    "unknown mode": {"mode": "bogus"},
    "unknown top-level key": {"replica": 3},
    "unknown config section": {"config": {"polciy": {}}},
    "privileged port": {"port": 80},
    "string replicas": {"replicas": "2"},
    "bad pull policy": {"image": {"pullPolicy": "Sometimes"}},
    "unknown image key": {"image": {"tags": "1"}},
    "root allowed": {"podSecurityContext": {"runAsNonRoot": False}},
    "non-text pod label": {"sidecar": {"podSelector": {"tier": 1}}},
    "probe threshold zero": {"probes": {"liveness": {"failureThreshold": 0}}},
    "mirror switch not a boolean": {"config": {"policy": {"mirror": {"enabled": "yes"}}}},
    "podmonitor interval without unit": {"podMonitor": {"enabled": True, "interval": "30"}},
    "unknown prometheusRule key": {"prometheusRule": {"enable": True}},
    "non-text alert label": {"prometheusRule": {"ruleLabels": {"team": 7}}},
    "dashboard namespace not a name": {"grafanaDashboard": {"namespace": "Mon_itoring"}},
    "unknown slinky key": {"slurm": {"slinky": {"configmap": "slurm-config"}}},
    "non-text slinky name": {"slurm": {"slinky": {"slurmKeySecret": 7}}},
}


def merged(values: dict[str, Any]) -> dict[str, Any]:
    """values.yaml with ``values`` merged over it, as Helm coalesces them."""

    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(base)
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out

    return merge(default_values(), values)


def schema_errors(values: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(read_values_schema())
    return [e.message for e in validator.iter_errors(merged(values))]


def test_values_schema_is_a_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(read_values_schema())


@pytest.mark.parametrize("values", MODES.values(), ids=list(MODES))
def test_values_schema_accepts_the_defaults_and_documented_values(values: dict[str, Any]) -> None:
    assert schema_errors(values) == []


@pytest.mark.parametrize("values", BAD_VALUES.values(), ids=list(BAD_VALUES))
def test_values_schema_rejects_a_bad_value(values: dict[str, Any]) -> None:
    assert schema_errors(values), "jsonschema accepted it"
    with pytest.raises(helm.HelmValuesError):
        render(values)
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    assert report["errors"], "helm lint accepted it"


# --- the Slinky sidecar snippet ----------------------------------------------------------------


def sidecar_snippet() -> dict[str, Any]:
    snippet: dict[str, Any] = yaml.safe_load(SIDECAR_EXAMPLE.read_text())
    return snippet


def sidecar_container() -> dict[str, Any]:
    (found,) = [
        c
        for c in sidecar_snippet()["controller"]["podSpec"]["initContainers"]
        if c["name"] == "syncd"
    ]
    assert isinstance(found, dict)
    return found


# What the slurm-operator puts in the slurmctld pod that the snippet relies on (volume names
# from internal/builder/common/const.go, pod settings from controllerbuilder/controller_app.go).
SLINKY_POD: dict[str, Any] = {
    "automountServiceAccountToken": False,
    "securityContext": {"runAsNonRoot": True, "runAsUser": 401, "runAsGroup": 401, "fsGroup": 401},
    "containers": [{"name": "slurmctld", "image": "ghcr.io/slinkyproject/slurmctld:25.11"}],
    "volumes": [
        {"name": "slurm-etc", "projected": {"sources": [{"configMap": {"name": "slurm-config"}}]}},
        {"name": "slurm-authsocket", "emptyDir": {}},
    ],
}


def slinky_pod_with_snippet() -> Manifest:
    """The slurmctld pod the operator would build: its base merged with the snippet's podSpec."""
    pod_spec = copy.deepcopy(SLINKY_POD)
    extra = sidecar_snippet()["controller"]["podSpec"]
    for key, value in extra.items():
        if key in ("volumes", "initContainers", "containers"):
            pod_spec[key] = [*pod_spec.get(key, []), *value]
        else:
            pod_spec[key] = value
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "slurm-controller-0", "namespace": NAMESPACE},
        "spec": pod_spec,
    }


def test_sidecar_snippet_uses_slinkys_values_layout() -> None:
    snippet = sidecar_snippet()
    assert list(snippet) == ["controller"]
    assert set(snippet["controller"]) == {"podSpec"}
    assert set(snippet["controller"]["podSpec"]) == {
        "serviceAccountName",
        "initContainers",
        "volumes",
    }


def test_sidecar_snippet_is_a_valid_pod() -> None:
    validate(slinky_pod_with_snippet())


def test_sidecar_is_native_and_has_no_readiness_probe() -> None:
    c = sidecar_container()
    assert c["restartPolicy"] == "Always"
    assert "readinessProbe" not in c
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert c["startupProbe"]["httpGet"]["path"] == "/livez"
    assert c["args"] == ["run", "--config", "/etc/syncd/syncd.yaml"]
    ctx = c["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["runAsNonRoot"] is True


def test_sidecar_snippet_matches_what_the_chart_renders_in_sidecar_mode() -> None:
    docs = render({"mode": "sidecar"})
    settings = load_rendered(docs)
    pod = slinky_pod_with_snippet()["spec"]
    c = sidecar_container()
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert {m["name"] for m in mounts.values()} <= set(volumes), "a mount without a volume"
    config_volume = volumes[mounts["/etc/syncd"]["name"]]
    assert config_volume["configMap"]["name"] == one(docs, "ConfigMap")["metadata"]["name"]
    state = mounts[settings.daemon.state_dir]
    assert "emptyDir" in volumes[state["name"]]
    assert not state.get("readOnly", False)
    port = int(settings.daemon.listen.rpartition(":")[2])
    assert [p["containerPort"] for p in c["ports"]] == [port]
    assert c["livenessProbe"]["httpGet"]["port"] == port
    assert c["startupProbe"]["httpGet"]["port"] == port
    assert one(docs, "Service")["spec"]["ports"][0]["targetPort"] == port
    # Slurm: slurm.conf where the config says, and the auth socket of slurmctld.
    assert settings.slurm.conf.startswith(mounts["/etc/slurm"]["mountPath"] + "/")
    assert mounts["/run/slurmctld"]["name"] == "slurm-authsocket"


def test_sidecar_gets_a_service_account_token_despite_slinkys_automount_false() -> None:
    pod = slinky_pod_with_snippet()["spec"]
    c = sidecar_container()
    if pod.get("automountServiceAccountToken") is True:
        return
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == SA_TOKEN_DIR]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    sources = volume["projected"]["sources"]
    assert any(s.get("serviceAccountToken", {}).get("path") == "token" for s in sources)
    assert any(s.get("configMap", {}).get("name") == "kube-root-ca.crt" for s in sources)
    assert any(
        i["path"] == "namespace" for s in sources for i in s.get("downwardAPI", {}).get("items", [])
    )
    # Only syncd gets the token: slurmctld's containers stay without it.
    others = [x for x in pod["containers"] + pod["initContainers"] if x["name"] != "syncd"]
    for other in others:
        assert all(m["name"] != mount["name"] for m in other.get("volumeMounts", []))


def test_sidecar_metrics_service_selects_the_slurmctld_pods() -> None:
    service = one(render({"mode": "sidecar"}), "Service")
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "slurmctld"}
    assert service["spec"]["publishNotReadyAddresses"] is True


# --- versions ----------------------------------------------------------------------------------


def test_chart_app_version_is_syncds_version_and_the_snippets_tag() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == project["version"]
    assert sidecar_container()["image"].endswith(":" + chart["appVersion"])
