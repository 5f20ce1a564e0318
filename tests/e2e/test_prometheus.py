"""syncd's alerts and dashboard on a real Prometheus scraping a real daemon.

The daemon runs against a Slurm sandbox, a simulator and a Redis, all of this module's own, so
the scenarios may break them: slurmctld is stopped, Redis is killed. Prometheus (Debian's
package) scrapes every second and evaluates the chart's rules file every second, with every
minute of the rules read as a second (``on_fast_clock``); ``promtool test rules`` checks the
real durations. The scenarios are the runbook's: the breaker opens, Slurm is unreachable, the
outbox backlog grows while its broker is down.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.prom import Prometheus, binary, on_fast_clock
from tests.e2e.stack import Stack, daemon_stack, stop_ctld
from tests.fixtures.brokers import PrivateBroker
from tests.fixtures.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "helm" / "syncd" / "files" / "prometheus-rules.yaml"
RULE_TESTS = ROOT / "tests" / "prometheus" / "rules_test.yaml"
DASHBOARD = ROOT / "helm" / "syncd" / "files" / "grafana-dashboard.json"
NODES = 8
# Grafana's variables, as Grafana would fill them for this Prometheus (1 s scrapes).
GRAFANA = {"$job": "syncd", "$__rate_interval": "10s"}


def test_every_rule_passes_promtool_check_and_its_unit_tests() -> None:
    promtool = binary("promtool")
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                           text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    n = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
    assert f"SUCCESS: {n} rules found" in check.stdout
    tests = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True,
                           text=True, timeout=60, check=False)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    # Every alert has a unit test.
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert alerts == tested


@pytest.fixture(scope="module")
def redis_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    broker = PrivateBroker("redis", tmp_path_factory.mktemp("prom-redis"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_box: PrivateBroker) -> Iterator[Stack]:
    with daemon_stack(tmp_path_factory.mktemp("prom"), nodes=NODES, redis_url=redis_box.url,
                      stream=f"syncd-test-{uuid.uuid4().hex[:8]}:events", overrides={
                          # 2 of 8 nodes may be drained within the window; the third trips it.
                          "policy.breaker.max_drain_percent": 25.0,
                          "events.retry_max": "500ms"}) as s:
        yield s


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory, stack: Stack) -> Iterator[Prometheus]:
    p = Prometheus(tmp_path_factory.mktemp("prometheus"))
    p.start(targets=[f"127.0.0.1:{stack.daemon.port}"],
            rules=on_fast_clock(yaml.safe_load(RULES.read_text())))
    try:
        yield p
    finally:
        p.stop()


async def until(check: Callable[[], Any], *, within: float, what: str) -> Any:
    return await eventually(check, within=within, what=what, every=0.5, blocking=True)


def scrape(stack: Stack, accept: str = "") -> tuple[str, str]:
    req = urllib.request.Request(stack.daemon.url + "/metrics", headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers["Content-Type"], r.read().decode()


def test_metrics_pass_promtool_and_follow_the_conventions(stack: Stack) -> None:
    ctype, text = scrape(stack)
    assert ctype.startswith("text/plain; version=0.0.4")
    lint = subprocess.run([binary("promtool"), "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=60, check=False)
    assert lint.returncode == 0 and lint.stdout + lint.stderr == "", lint.stdout + lint.stderr
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    for name in ("syncd_outbox_delivered_total", "syncd_outbox_failed_attempts_total",
                 "syncd_outbox_dropped_total", "syncd_watch_restarts_total",
                 "syncd_watch_relists_total", "syncd_watch_gone_410_total",
                 "syncd_watch_errors_total", "syncd_kubernetes_skipped_total"):
        assert types.get(name) == "counter", (name, types.get(name))
    assert types["syncd_kubernetes_synced"] == "gauge"
    assert "_created" not in text
    assert re.search(r'^syncd_build_info\{python="[\d.]+",version="[\d.]+\S*"\} 1\.0$', text,
                     re.MULTILINE), text
    assert re.search(r"^process_resident_memory_bytes \d", text, re.MULTILINE)
    assert "gpu00" not in text  # no node names as labels


def test_openmetrics_when_asked(stack: Stack) -> None:
    ctype, text = scrape(stack, "application/openmetrics-text; version=1.0.0, "
                                "text/plain; version=0.0.4; q=0.5")
    assert ctype.startswith("application/openmetrics-text; version=1.0.0")
    assert text.endswith("# EOF\n")
    assert "# TYPE syncd_outbox_delivered counter" in text
    assert "# TYPE syncd_build info" in text
    assert "_created" not in text


async def test_dashboard_queries_return_data_and_rules_evaluate(
    stack: Stack, prom: Prometheus
) -> None:
    await until(lambda: prom.query('up{job="syncd"} == 1'), within=60, what="a first scrape")
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = {}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for var, value in GRAFANA.items():
                expr = expr.replace(var, value)
            exprs[f"{panel['title']} / {target['refId']}"] = expr

    def empty() -> list[str]:
        return [name for name, e in exprs.items() if not prom.query(e)]

    try:
        await until(lambda: not empty(), within=60, what="every dashboard query to return data")
    except AssertionError:
        raise AssertionError(f"no data for: {empty()}") from None
    # Every metric the rules and the dashboard name is one syncd (or Prometheus) exports.
    names = set(prom.api("label/__name__/values"))
    rules = yaml.safe_load(RULES.read_text())
    used = {m for r in (g2 for g in rules["groups"] for g2 in g["rules"])
            for m in re.findall(r"\b((?:syncd|process)_\w+)", r["expr"])}
    used |= {m for e in exprs.values() for m in re.findall(r"\b((?:syncd|process)_\w+)", e)}
    assert used - names == set()
    # Prometheus evaluates every rule on the daemon's real series without an error.
    groups = prom.api("rules")["groups"]
    evaluated = [r for g in groups for r in g["rules"]]
    assert len(evaluated) == sum(len(g["rules"]) for g in rules["groups"])
    assert [(r["name"], r["lastError"]) for r in evaluated if r["health"] != "ok"] == []
    # A healthy daemon raises no alert (a slow reconcile is the busy test machine's, not a fault).
    assert prom.firing() - {"SyncdReconcileSlow"} == set()


@pytest.mark.slow
async def test_breaker_open_fires(stack: Stack, prom: Prometheus) -> None:
    down = ["gpu005", "gpu006", "gpu007", "gpu008"]
    async with stack.sim() as sim:
        for node in down:
            await sim.set_ready(node, False)
        try:
            await until(lambda: "SyncdBreakerOpen" in prom.firing(), within=60,
                        what="SyncdBreakerOpen to fire")
            await until(lambda: "SyncdDrainsWithheld" in prom.firing(), within=60,
                        what="SyncdDrainsWithheld to fire")
        finally:
            for node in down:
                await sim.set_ready(node, True)
    reset = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "syncd", "breaker",
                                    "reset"], env=stack.cli_env, capture_output=True,
                                    text=True, timeout=60, check=False)
    assert reset.returncode == 0, reset.stderr
    await until(lambda: "SyncdBreakerOpen" not in prom.firing(), within=60,
                what="SyncdBreakerOpen to resolve after the reset")


@pytest.mark.slow
async def test_outbox_backlog_growing_fires_while_redis_is_down(
    stack: Stack, prom: Prometheus, redis_box: PrivateBroker
) -> None:
    await until(lambda: not prom.query("syncd_outbox_backlog > 0"), within=60,
                what="an empty backlog")
    await asyncio.to_thread(redis_box.kill)
    try:
        async with stack.sim() as sim:
            n = 0

            # Events keep coming: a GPU pod starts on a node, then ends, then one starts on the
            # next node... Each step changes a node's free GPUs, half a second after the last
            # (a start and an end together could fall into one pass and change nothing).
            async def churned_until_firing() -> bool:
                nonlocal n
                if {"SyncdOutboxBacklogGrowing", "SyncdOutboxSinkDown"} <= await \
                        asyncio.to_thread(prom.firing):
                    return True
                pod = f"burst-{n // 2}"
                if n % 2 == 0:
                    await sim.start_pods([{"name": pod, "node": f"gpu00{1 + n // 2 % 4}",
                                           "gpus": 1, "namespace": "ml"}])
                else:
                    await sim.finish_pod("ml", pod)
                n += 1
                return False
            await eventually(churned_until_firing, within=90, every=0.5,
                             what="SyncdOutboxBacklogGrowing and SyncdOutboxSinkDown firing")
    finally:
        await asyncio.to_thread(redis_box.start)
    await until(lambda: not prom.query('syncd_outbox_backlog{sink="redis"} > 0'), within=60,
                what="the backlog to drain once Redis is back")
    await until(lambda: "SyncdOutboxBacklogGrowing" not in prom.firing(), within=60,
                what="SyncdOutboxBacklogGrowing to resolve")


@pytest.mark.slow
async def test_slurm_unreachable_fires(stack: Stack, prom: Prometheus) -> None:
    await asyncio.to_thread(stop_ctld, stack.box)
    try:
        await until(lambda: "SyncdSlurmUnreachable" in prom.firing(), within=60,
                    what="SyncdSlurmUnreachable to fire")
        assert prom.query('ALERTS{alertname="SyncdSlurmUnreachable", alertstate="firing", '
                          'severity="critical"}')
    finally:
        await asyncio.to_thread(stack.box.ctld_start)
    await until(lambda: "SyncdSlurmUnreachable" not in prom.firing(), within=60,
                what="SyncdSlurmUnreachable to resolve")
