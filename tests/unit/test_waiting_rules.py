"""The suite's waiting rules are a test: one polling helper, no clocks in asserts, no sleeps
standing in for a condition.

Tests run on a busy 2-core machine, where any duration can stretch: a test waits for a state
with tests/fixtures/waiting.py ``eventually`` (or ``eventually_sync``), never with a loop of its
own, never by sleeping and then asserting, and never asserts how long something took.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WAITING = Path("tests/fixtures/waiting.py")

#: Loops that sleep but wait for nothing, with the reason each may stay.
NOT_POLLING = {
    ("tests/events/helpers.py", "MqttCollector._run"):
        "a subscriber's reconnect loop: it runs until cancelled and checks no condition",
    ("tests/e2e/test_mirror.py", "test_an_operators_drain_is_mirrored_and_flapping_never_loops"):
        "drives 60 s of drain/resume flips at a pace; it waits for nothing",
}
#: Names that only ever hold a measured duration.
DURATION_NAMES = {"took", "elapsed", "duration", "spent"}
CLOCKS = {"monotonic", "perf_counter", "monotonic_ns", "perf_counter_ns", "time", "time_ns"}


def _is_sleep(node: ast.AST) -> bool:
    if isinstance(node, ast.Await):
        node = node.value
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return (isinstance(f, ast.Attribute) and f.attr == "sleep") or (
        isinstance(f, ast.Name) and f.id == "sleep")


def _ends_in_sleep(stmt: ast.stmt) -> bool:
    """A sleep, or a loop whose every pass ends in one (a paced loop)."""
    if isinstance(stmt, ast.Expr):
        return _is_sleep(stmt.value)
    if isinstance(stmt, ast.For | ast.AsyncFor | ast.While) and stmt.body:
        return _ends_in_sleep(stmt.body[-1])
    return False


def _is_clock(node: ast.AST) -> bool:
    """``time.monotonic()``, ``loop.time()``, ``perf_counter()``, ... (a read of a real clock)."""
    if not isinstance(node, ast.Call) or node.args:
        return False
    f = node.func
    return (isinstance(f, ast.Attribute) and f.attr in CLOCKS) or (
        isinstance(f, ast.Name) and f.id in CLOCKS - {"time"})


class _Scan(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.scope: list[str] = []
        self.timed: list[set[str]] = [set()]
        self.found: list[str] = []

    def _where(self, node: ast.stmt | ast.expr) -> str:
        return f"{self.path}:{node.lineno}"

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.timed.append(set())
        self.generic_visit(node)
        self.timed.pop()
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_While(self, node: ast.While) -> None:
        if any(_is_sleep(n) for n in ast.walk(node)):
            key = (self.path, ".".join(self.scope))
            if key not in NOT_POLLING:
                self.found.append(f"{self._where(node)}: a polling loop of its own in "
                                  f"{key[1] or 'the module'}: use eventually()")
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(_is_clock(n) or (isinstance(n, ast.Name) and n.id in self.timed[-1])
               for n in ast.walk(node.value)):
            for target in node.targets:
                self.timed[-1].update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        self.generic_visit(node)

    def visit_Assert(self, node: ast.Assert) -> None:
        for n in ast.walk(node.test):
            if _is_clock(n) or (isinstance(n, ast.Name) and (
                    n.id in self.timed[-1] or n.id in DURATION_NAMES)):
                self.found.append(f"{self._where(node)}: an assert on a measured duration")
                break
        self.generic_visit(node)

    def generic_visit(self, node: ast.AST) -> None:
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list):
                for first, second in itertools.pairwise(stmts):
                    if _ends_in_sleep(first) and isinstance(second, ast.Assert):
                        self.found.append(f"{self._where(first)}: a sleep followed by an "
                                          "assert: wait for the condition with eventually()")
        super().generic_visit(node)


#: A module on fake time (looptime) sleeps to move the clock, and its durations are exact: there
#: "sleep 29 s, assert nothing drained yet" is the precise statement, not a guess at a delay.
FAKE_TIME = "pytestmark = pytest.mark.looptime"


def violations(source: str, path: str) -> list[str]:
    scan = _Scan(path)
    scan.visit(ast.parse(source))
    if FAKE_TIME in source:
        return [f for f in scan.found if "polling loop" in f]
    return scan.found


def sources() -> Iterator[Path]:
    for path in sorted((ROOT / "tests").rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel != WAITING and rel != Path(__file__).resolve().relative_to(ROOT):
            yield rel


def test_no_polling_loops_duration_asserts_or_sleeping_asserts_in_tests() -> None:
    found = [v for rel in sources() for v in violations((ROOT / rel).read_text(), str(rel))]
    assert found == [], "\n".join(found)


def test_the_exceptions_still_exist() -> None:
    """An allow-list entry whose loop is gone would silently allow the next one."""
    for path, qualname in NOT_POLLING:
        tree = ast.parse((ROOT / path).read_text())
        names = {f"{c.name}.{f.name}" for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
                 for f in c.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}
        names |= {f.name for f in tree.body
                  if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}
        assert qualname in names, (path, qualname)


def test_the_scan_finds_each_kind_of_violation() -> None:
    source = '''
import asyncio, time

async def poll(ready):
    while not ready():
        await asyncio.sleep(0.1)

def measured():
    t0 = time.monotonic()
    work()
    took = time.monotonic() - t0
    assert took < 3

def unpacked():
    lines, elapsed = watch()
    assert elapsed < 1

async def slept(outbox):
    await asyncio.sleep(1.0)
    assert outbox.empty()

def inline(start):
    assert time.perf_counter() - start < 2

async def paced(outbox):
    for batch in range(3):
        outbox.publish(batch)
        await asyncio.sleep(1.0)
    assert outbox.backlog() == 3

async def fine(ready, t):
    assert t + 5 > 3
    for _ in range(3):
        await asyncio.sleep(0.1)
'''
    found = [v.split(": ", 1) for v in violations(source, "x.py")]
    assert [(where, why.split(":")[0].split(" in ")[0]) for where, why in found] == [
        ("x.py:5", "a polling loop of its own"),
        ("x.py:12", "an assert on a measured duration"),
        ("x.py:16", "an assert on a measured duration"),
        ("x.py:19", "a sleep followed by an assert"),
        ("x.py:23", "an assert on a measured duration"),
        ("x.py:26", "a sleep followed by an assert"),
    ]
