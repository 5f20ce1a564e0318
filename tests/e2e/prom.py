"""A real Prometheus server of the test's own (Debian's ``prometheus`` package): a free loopback
port, its own data directory, short scrape and evaluation intervals. Never the machine's."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.brokers import free_port
from tests.fixtures.tools import missing
from tests.fixtures.waiting import eventually_sync

_RANGE = re.compile(r"\[(\d+)([a-z]+)\]")


def binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists()
                                   else None)
    if found is None:
        missing(name, "Debian's prometheus package; scripts/bootstrap installs it")
    return found


def on_fast_clock(rules: dict[str, Any]) -> dict[str, Any]:
    """The same rules with every minute read as a second (``for: 2m`` -> ``2s``, ``[10m]`` ->
    ``[10s]``), so a scenario fires in seconds what production fires in minutes."""

    def scale(amount: str, unit: str) -> str:
        assert unit == "m", f"the rules use minutes only; scale {amount}{unit} by hand"
        return f"{amount}s"

    out: dict[str, Any] = json.loads(json.dumps(rules))
    for group in out["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                m = re.fullmatch(r"(\d+)([a-z]+)", str(rule["for"]))
                assert m, rule["for"]
                rule["for"] = scale(*m.groups())
            rule["expr"] = _RANGE.sub(lambda m: f"[{scale(*m.groups())}]", rule["expr"])
    return out


@dataclass
class Prometheus:
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, targets: list[str], rules: dict[str, Any]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "rules.yaml").write_text(yaml.safe_dump(rules))
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(self.workdir / "rules.yaml")],
            "scrape_configs": [{"job_name": "syncd", "static_configs": [{"targets": targets}]}],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        out = open(self.workdir / "prometheus.log", "ab")  # noqa: SIM115 (the child's)
        self.proc = subprocess.Popen([
            binary("prometheus"), f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h",
        ], stdout=out, stderr=out, start_new_session=True)
        out.close()
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited {proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    return bool(r.status == 200)
            except (urllib.error.URLError, OSError):
                return False
        eventually_sync(ready, within=60, every=0.2, what="prometheus ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-20:]) if path.exists() \
            else "(no log)"

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def firing(self) -> set[str]:
        """Names of the alerts firing now (pending ones are not)."""
        return {a["labels"]["alertname"] for a in self.api("alerts")["alerts"]
                if a["state"] == "firing"}
