"""A slow, plain-Python reference of a rotation's rounds (``fairalloc.simulate``).

It runs the rounds one resident at a time with plain lists and dicts, as docs/allocation.md
states them: departures, arrivals, the engine's evaluation (the engine itself is checked
against ``tests/oracle.py``), the guarantee of ``max_wait`` found by trying ever more of the
most urgent residents until every later round can still keep the bound, the order of the
remaining keys, service, waits and accruals. ``simulate`` must agree with it exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import fairalloc as fa
from fairalloc.policy._model import Policy

MICRO = 1_000_000


@dataclass
class Entry:
    """One resident's record, as the oracle keeps it."""

    arrived: int
    departed: int = 0
    times_served: int = 0
    waiting: int = 0
    first_served: int = 0
    waited_first: int = -1
    longest: int = 0
    eligible_rounds: int = 0
    rounds_served: list[int] = field(default_factory=list)


def _keeps_bound(slack: list[int], taken: int, units: int, max_wait: int) -> bool:
    """Whether serving the ``taken`` most urgent (``slack`` sorted) keeps ``max_wait``."""
    rest = slack[taken:]
    if any(s <= 0 for s in rest):
        return False
    return all(sum(1 for s in rest if s <= h) <= units * h for h in range(1, max_wait + 1))


def simulate(
    policy: Policy,
    people: list[dict[str, Any]],
    *,
    rounds: int,
    capacity: int,
    arrivals: Mapping[int, list[dict[str, Any]]] | None = None,
    departures: Mapping[int, list[str]] | None = None,
) -> tuple[list[list[str]], dict[str, Entry]]:
    """Who is served in each round, and every resident's record at the end.

    The policy must publish a lottery seed (the oracle does not check undecided ties).
    """
    assert policy.allocation is not None
    assert policy.allocation.rotation is not None
    rot = policy.allocation.rotation
    idname = policy.id_attribute
    chain = policy.ranking.tie_break
    seed = chain[-1].lottery.seed if chain and chain[-1].lottery else None
    assert seed is not None
    bonus = round(rot.points_per_round * MICRO)
    present = {str(p[idname]): dict(p) for p in people}
    book = {rid: Entry(arrived=0) for rid in present}
    served_by_round: list[list[str]] = []
    for r in range(1, rounds + 1):
        for rid in (departures or {}).get(r, []):
            del present[rid]
            e = book[rid]
            e.departed = r
            e.longest = max(e.longest, e.waiting)
        for p in (arrivals or {}).get(r, []):
            rid = str(p[idname])
            assert rid not in book
            present[rid] = dict(p)
            book[rid] = Entry(arrived=r)
        ev = fa.evaluate(policy, list(present.values()))
        rows = {str(i): k for k, i in enumerate(ev.ids)}
        eligible = [rid for rid in present if bool(ev.eligible[rows[rid]])]

        def rest(rid: str, ev: fa.Evaluation = ev, rows: dict[str, int] = rows) -> tuple[Any, ...]:
            k, e = rows[rid], book[rid]
            key: tuple[Any, ...] = ()
            if rot.served_go_last:
                key += (e.times_served,)
            if rot.bands is not None:
                key += (-float(ev.rotation_band[k]),)
            key += (-(int(ev.score_micro[k]) + bonus * e.waiting), -e.waiting)
            return (*key, int(ev.ranking.rank[k]), fa.lottery_key(seed, rid))

        guaranteed: set[str] = set()
        if rot.max_wait is not None:
            w = rot.max_wait
            urgent = sorted(eligible, key=lambda i: (w - book[i].waiting, rest(i)))
            slack = [w - book[i].waiting for i in urgent]
            taken = 0
            while taken < len(urgent) and not _keeps_bound(slack, taken, capacity, w):
                taken += 1
            guaranteed = set(urgent[: min(taken, capacity)])
        order = sorted(eligible, key=lambda i: (i not in guaranteed, rest(i)))
        served = order[:capacity]
        served_by_round.append(served)
        for rid in served:
            e = book[rid]
            if e.times_served == 0:
                e.first_served, e.waited_first = r, e.waiting
            e.longest = max(e.longest, e.waiting)
            e.times_served += 1
            e.waiting = 0
            e.rounds_served.append(r)
        for rid in order[capacity:]:
            book[rid].waiting += 1
        for rid in eligible:
            book[rid].eligible_rounds += 1
        for name, per_round in rot.accrue.items():
            attr = policy.attributes[name]
            lo = attr.min if isinstance(attr.min, int | float) else float("-inf")
            hi = attr.max if isinstance(attr.max, int | float) else float("inf")
            for rid, p in present.items():
                if rid not in served:
                    p[name] = min(max(p[name] + per_round, lo), hi)
    for e in book.values():
        e.longest = max(e.longest, e.waiting)
    return served_by_round, book
