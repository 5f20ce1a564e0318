"""The reconcile debounce: one wait for ordinary changes, extended while a storm goes on.

``settle`` reads the count of changed nodes once before it waits and once after each wait, so
a count that grows by a fixed step per read is a storm of exactly that size per interval,
whatever the machine's load does to the length of each wait.
"""

from __future__ import annotations

from collections.abc import Callable

from syncd.engine.debounce import STORM_NODES, settle

#: Long enough that no wait of these tests is cut by time, however loaded the machine.
NEVER = 3600.0


def growing(step: int, reads: int | None = None) -> Callable[[], int]:
    """Changed nodes that grow by ``step`` per read, for ``reads`` reads (forever if None)."""
    count = [0, 0]  # reads so far, nodes so far

    def changed() -> int:
        if reads is None or count[0] < reads:
            count[1] += step if count[0] else 0
        count[0] += 1
        return count[1]

    return changed


async def test_a_storm_is_waited_out_as_one_pass() -> None:
    # The first read and five more that each bring 20 new nodes, then quiet: five extensions,
    # and the sixth wait is the one that sees the storm over.
    waits = await settle(growing(2 * STORM_NODES, reads=6), debounce=0.01, most=NEVER)
    assert waits == 6


async def test_ordinary_churn_waits_one_interval() -> None:
    assert await settle(growing(1), debounce=0.01, most=NEVER) == 1
    assert await settle(growing(STORM_NODES - 1), debounce=0.01, most=NEVER) == 1


async def test_an_endless_storm_is_cut_at_most() -> None:
    waits = await settle(growing(5 * STORM_NODES), debounce=0.01, most=1.0)
    # Each wait lasts at least ``debounce``, so ``most`` allows at most most/debounce of them;
    # the storm extends past the first unless that first 10 ms wait alone took ~1 s.
    assert 2 <= waits <= 100, waits
