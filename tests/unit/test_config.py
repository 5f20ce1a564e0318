"""The config loader, the example file, and ``syncd check-config``."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncd.config import ConfigError, load, load_file, parse_duration
from syncd.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "syncd.example.yaml"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            out.update(_flatten(getattr(value, f.name), f"{prefix}{f.name}."))
        return out
    if isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
        return {prefix[:-1]: [dataclasses.asdict(v) for v in value]}
    return {prefix[:-1]: list(value) if isinstance(value, tuple) else value}


def test_example_documents_every_key_with_its_default() -> None:
    defaults = _flatten(Settings())
    example = _flatten(load_file(EXAMPLE, env={}))
    assert example == defaults
    raw_keys = set(_flatten_raw(yaml.safe_load(EXAMPLE.read_text())))
    missing = {k for k in defaults if k not in raw_keys}
    assert not missing, f"keys not written out in the example: {sorted(missing)}"


def _flatten_raw(raw: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(raw, dict):
        out: dict[str, Any] = {}
        for k, v in raw.items():
            out.update(_flatten_raw(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: raw}


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"policy": {"drain_aftr": "10s"}},
         "policy.drain_aftr: unknown key (did you mean 'drain_after'?)"),
        ({"policy": {"resume_after": "-5s"}}, "policy.resume_after:"),
        ({"policy": {"drain_after": "soon"}}, "policy.drain_after:"),
        ({"policy": {"gpu_resources": [{"name": "x", "feature_template": "gpu avail"}]}},
         "policy.gpu_resources[0].feature_template: must contain {n}"),
        ({"policy": {"gpu_resources": [{"name": "x", "feature_template": "a,b_{n}"}]}},
         "policy.gpu_resources[0].feature_template: produces"),
        ({"policy": {"breaker": {"enabled": "yes please"}}},
         "policy.breaker.enabled: expected true"),
        ({"policy": {"breaker": {"max_drain_percent": 150}}}, "policy.breaker.max_drain_percent"),
        ({"policy": {"batch_size": 0}}, "policy.batch_size: must be 1 or more"),
        ({"policy": {"managed_nodes": "gpu["}}, "policy.managed_nodes: not a regular expression"),
        ({"slurm": {"backend": "slurmrestd"}}, "slurm.backend: must be one of"),
        ({"slurm": {"backend": "rest"}}, "slurm.rest.url: required with backend rest"),
        ({"slurm": {"rest": {"api_version": "v0.0.38"}}}, "slurm.rest.api_version: must be"),
        ({"slurm": {"rest": {"url": "ftp://x"}}}, "slurm.rest.url: must start with"),
        ({"slurm": {"read_format": "yaml"}}, "slurm.read_format: must be one of"),
        ({"daemon": {"listen": "8080"}}, "daemon.listen: must be host:port"),
        ({"events": {"redis": {"url": "http://x"}}}, "events.redis.url"),
        ({"events": {"mqtt": {"stream": "json"}}}, "mqtt.stream: must be events or batches"),
        ({"events": {"mqtt": {"batch_bytes": 10}}}, "mqtt.batch_bytes: must be 1024 or more"),
        ({"kubernetes": {"name_mapping": {"mode": "label"}}}, "kubernetes.name_mapping.key"),
        ({"kubernetes": {"slurm_pod_selector": "app in (slurmd login)"}},
         "kubernetes.slurm_pod_selector: not a label selector the API server accepts"),
        ({"kubernetes": {"slurm_pod_selector": "-app=slurmd"}},
         "kubernetes.slurm_pod_selector: not a label selector the API server accepts: invalid "
         "label key '-app'"),
        ({"logging": 7}, "logging: expected a mapping"),
        ({"bogus_section": {}}, "bogus_section: unknown key"),
    ],
)
def test_every_problem_names_its_key(raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(raw, {})
    assert any(needle in p for p in err.value.problems), err.value.problems


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        load({"policy": {"drain_aftr": 1, "resume_after": "x", "flap": {"windw": 1}}}, {})
    assert len(err.value.problems) == 3


def test_environment_overrides_file_values() -> None:
    s = load({"policy": {"drain_after": "30s"}},
             {"SYNCD_POLICY__DRAIN_AFTER": "5s", "SYNCD_DAEMON__DRY_RUN": "true",
              "SYNCD_POLICY__BREAKER__MAX_DRAIN_GPUS": "64", "HOME": "/root"})
    assert s.policy.drain_after == 5.0
    assert s.daemon.dry_run is True
    assert s.policy.breaker.max_drain_gpus == 64


def test_a_misspelled_environment_override_is_an_error_too() -> None:
    with pytest.raises(ConfigError, match=r"policy\.drain_aftr: unknown key"):
        load({}, {"SYNCD_POLICY__DRAIN_AFTR": "5s"})


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("5m", 300.0), ("250ms", 0.25), ("1h", 3600.0), (7, 7.0)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def _check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", "check-config", str(path)],
        capture_output=True, text=True, check=False, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_check_config_accepts_the_example() -> None:
    r = _check_config(EXAMPLE)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("policy:\n  drain_aftr: 10s\n", "policy.drain_aftr"),
        ("policy:\n  drain_after: -10s\n", "policy.drain_after"),
        ("policy:\n  gpu_resources:\n    - name: nvidia.com/gpu\n"
         "      feature_template: 'gpu avail {n}'\n",
         "policy.gpu_resources[0].feature_template"),
        ("policy: [unclosed\n", "not valid YAML"),
        ("kubernetes:\n  slurm_pod_selector: 'app=slurmd,'\n", "kubernetes.slurm_pod_selector"),
    ],
)
def test_check_config_exits_2_naming_the_key(tmp_path: Path, body: str, key: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    r = _check_config(f)
    assert r.returncode == 2
    assert key in r.stderr
    assert "Traceback" not in r.stderr
