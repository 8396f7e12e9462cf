"""Rotation rounds over a Dask DataFrame equal one process's, round after round.

Each round is run twice from the same state: by :func:`fairalloc.run_round` on the residents
as one table, and by :func:`fairalloc.cluster.run_round_on_cluster` on the same residents cut
into partitions. The rounds (served in order, counts, the state's digest) are compared as JSON
and the states byte for byte; each side goes on from its own state, so a difference in any
round's bookkeeping shows in the rounds after it. Residents leave and arrive between rounds,
and the state of a cluster round is taken up by one process and the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc.errors import AllocationError, ArgumentError, PopulationError, RotationStateError

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

from fairalloc.cluster import allocate_on_cluster, run_round_on_cluster  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = "cluster-rotation-seed"


def _policy(
    *,
    capacity: int,
    lottery: bool = True,
    bands: bool = False,
    max_wait: int | None = None,
    points_per_round: float = 0.0,
    accrue: bool = False,
    served_go_last: bool = True,
) -> fa.Policy:
    rotation: dict[str, Any] = {"capacity": capacity, "served_go_last": served_go_last}
    if bands:
        rotation["bands"] = "level"
    if max_wait is not None:
        rotation["max_wait"] = max_wait
    if points_per_round:
        rotation["points_per_round"] = points_per_round
    if accrue:
        rotation["accrue"] = {"wait": 1}
    tie = [{"by": "wait", "order": "desc"}]
    return fa.Policy.model_validate(
        {
            "policy": {"id": "rot", "version": "1", "title": "rotation"},
            "attributes": {
                "id": {"type": "str", "role": "id"},
                "need": {"type": "int", "min": 0, "max": 4},
                "level": {"type": "ordinal", "levels": ["low", "mid", "high"]},
                "flag": {"type": "bool"},
                "wait": {"type": "int", "min": 0, "max": 30},
            },
            "rules": {
                "eligibility": [{"id": "e", "when": "flag"}],
                "priority": [{"id": "p", "points": "need"}],
            },
            "ranking": {"tie_break": [*tie, {"lottery": {"seed": SEED}}] if lottery else tie},
            "allocation": {"rotation": rotation},
        }
    )


def _residents(n: int, seed: int, *, start: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"P{i:07d}" for i in start + rng.permutation(n)],
            "need": rng.integers(0, 5, n),
            "level": rng.choice(["low", "mid", "high"], n),
            "flag": rng.random(n) < 0.85,
            "wait": rng.integers(0, 31, n),
        }
    )


def _round_one(policy: fa.Policy, frame: Any, state: Any) -> tuple[str, Any]:
    """The one-process round as (its dict as JSON, its state), or the error code."""
    try:
        rnd = fa.run_round(policy, frame, state)
    except AllocationError as e:
        return e.code, None
    return json.dumps(rnd.to_dict()), rnd.state


def _round_many(policy: fa.Policy, data: Any, state: Any, client: Any) -> tuple[str, Any]:
    try:
        rnd = run_round_on_cluster(policy, data, state, client=client)
    except AllocationError as e:
        return e.code, None
    return json.dumps(rnd.to_dict()), rnd.state


def _rounds_equal(
    policy: fa.Policy, weeks: list[tuple[Any, Any]], client: Any, *, texts: bool = True
) -> list[str]:
    """Run every week both ways; each week is (residents as pandas, the same as Dask).

    The rounds' dicts hold the SHA-256 of each state's canonical JSON; with ``texts`` the
    JSON texts are compared too (a difference then shows where it is).
    """
    ours = theirs = None
    seen = []
    for frame, data in weeks:
        want = _round_one(policy, frame, theirs)
        got = _round_many(policy, data, ours, client)
        assert got[0] == want[0]
        if want[1] is None:  # refused alike: the rounds stop here
            return [*seen, want[0]]
        if texts:
            assert got[1].to_json() == want[1].to_json()
        ours, theirs = got[1], want[1]
        seen.append(want[0])
    return seen


def _weeks(
    n: int, rounds: int, seed: int, parts: list[int], turnover: float
) -> list[tuple[Any, Any]]:
    """``rounds`` weeks of residents: some leave for good, newcomers arrive, rows shuffled."""
    rng = np.random.default_rng(seed)
    everyone = _residents(n + rounds * max(1, int(n * turnover)), seed)
    present = np.zeros(len(everyone), dtype=bool)
    present[:n] = True
    nxt = n
    out = []
    for week in range(rounds):
        if week:
            k = int(n * turnover)
            here = np.flatnonzero(present)
            present[rng.choice(here, min(k, len(here)), replace=False)] = False
            present[nxt : nxt + k] = True
            nxt += k
        frame = everyone.iloc[rng.permutation(np.flatnonzero(present))].reset_index(drop=True)
        out.append((frame, dd.from_pandas(frame, npartitions=parts[week % len(parts)])))
    return out


@settings(max_examples=40, deadline=None)
# Without a lottery, residents tied on the whole order straddle the capacity: refused alike.
@example(30, 3, 5, [3], 0.1, False, False, None, 0.0, False, True, 1)
# max_wait with more residents than the capacity can keep within it: the guarantee decides.
@example(40, 4, 2, [4, 1], 0.2, True, True, 1, 0.5, True, True, 2)
# How many are due now is counted over every eligible resident, not over the candidates.
@example(25, 3, 6, [2], 0.3, True, False, 2, 0.5, True, False, 20332)
@given(
    n=st.integers(0, 40),
    rounds=st.integers(1, 4),
    capacity=st.integers(0, 8),
    parts=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    turnover=st.sampled_from([0.0, 0.1, 0.3]),
    lottery=st.booleans(),
    bands=st.booleans(),
    max_wait=st.none() | st.integers(1, 4),
    points_per_round=st.sampled_from([0.0, 0.5, 2.0]),
    accrue=st.booleans(),
    served_go_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_partitioning_never_changes_a_round(
    n: int,
    rounds: int,
    capacity: int,
    parts: list[int],
    turnover: float,
    lottery: bool,
    bands: bool,
    max_wait: int | None,
    points_per_round: float,
    accrue: bool,
    served_go_last: bool,
    seed: int,
) -> None:
    # Dask's own local scheduler, in this process: the same code path as a cluster's workers.
    policy = _policy(
        capacity=capacity,
        lottery=lottery,
        bands=bands,
        max_wait=max_wait,
        points_per_round=points_per_round,
        accrue=accrue,
        served_go_last=served_go_last,
    )
    _rounds_equal(policy, _weeks(n, rounds, seed, parts, turnover), None)


def test_a_state_passes_between_a_cluster_and_one_machine() -> None:
    policy = fa.load_policy(ROOT / "examples" / "activity-places" / "policy.yaml")
    frame = pd.read_csv(
        ROOT / "examples" / "activity-places" / "residents.csv", dtype={"resident_id": str}
    )
    many = run_round_on_cluster(policy, dd.from_pandas(frame, npartitions=4))
    one = fa.run_round(policy, frame)
    assert many.to_dict() == one.to_dict()
    assert len(many.served) == 12
    assert many.candidates < len(frame)  # only each partition's first went up
    # Round 2 on one machine from the cluster's state, round 3 on the cluster from that.
    two = fa.run_round(policy, frame, many.state)
    three = run_round_on_cluster(policy, dd.from_pandas(frame, npartitions=3), two.state)
    want = fa.simulate(policy, frame, rounds=3)
    assert [many.served, two.served, three.served] == want.served
    assert three.state.to_json() == want.state.to_json()
    assert "ClusterRound 3: 12 served" in repr(three)


def test_an_id_in_two_partitions_is_refused() -> None:
    policy = _policy(capacity=2)
    frame = _residents(10, 1)
    frame.loc[7, "id"] = frame.loc[2, "id"]
    with pytest.raises(PopulationError) as e:
        run_round_on_cluster(policy, dd.from_pandas(frame, npartitions=2, sort=False))
    assert e.value.issues[0].code == "FA506"
    assert e.value.issues[0].ids == (frame.loc[2, "id"],)
    with pytest.raises(PopulationError) as one:  # as one process refuses it
        fa.run_round(policy, frame)
    assert one.value.issues[0].code == "FA506"


def test_the_state_is_checked_as_on_one_machine() -> None:
    policy = _policy(capacity=2)
    frame = _residents(10, 1)
    first = run_round_on_cluster(policy, dd.from_pandas(frame, npartitions=2))
    # A resident who left may not come back: ids are unique for the whole rotation.
    rest = dd.from_pandas(frame.iloc[1:], npartitions=2)
    second = run_round_on_cluster(policy, rest, first.state)
    with pytest.raises(RotationStateError) as e:
        run_round_on_cluster(policy, dd.from_pandas(frame, npartitions=2), second.state)
    assert e.value.code == "FA782"
    other = fa.Policy.model_validate(
        {
            **policy.model_dump(exclude_defaults=True),
            "policy": {"id": "x", "version": "1", "title": "x"},
        }
    )
    with pytest.raises(RotationStateError) as e:
        run_round_on_cluster(other, dd.from_pandas(frame, npartitions=2), first.state)
    assert e.value.code == "FA781"
    # A capacity allocation is not a rotation: it is allocate_on_cluster's.
    plain = fa.parse_policy(
        (ROOT / "examples" / "elderly-care" / "policy.yaml").read_text(encoding="utf-8")
    )
    with pytest.raises(AllocationError) as a:
        run_round_on_cluster(plain, dd.from_pandas(frame, npartitions=2))
    assert a.value.code == "FA650"
    with pytest.raises(ArgumentError) as b:
        allocate_on_cluster(policy, dd.from_pandas(frame, npartitions=2))
    assert b.value.code == "FA626"
    assert "run_round_on_cluster" in str(b.value)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _parquet_weeks(weeks: list[tuple[Any, Any]], folder: Path, parts: int) -> list[tuple[Any, Any]]:
    """Each week's residents as a Parquet dataset of ``parts`` files, read by the workers."""
    out = []
    for k, (frame, _) in enumerate(weeks):
        week = folder / f"week-{k}"
        week.mkdir()
        for j, chunk in enumerate(np.array_split(np.arange(len(frame)), parts)):
            frame.iloc[chunk].to_parquet(week / f"part.{j:03d}.parquet", index=False)
        data = dd.read_parquet(week)
        assert data.npartitions == parts
        out.append((frame, data))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("lottery", [True, False], ids=["lottery", "no lottery"])
def test_rounds_of_200_000_residents_equal_one_process_on_a_local_cluster(
    lottery: bool, client: Any, tmp_path: Path
) -> None:
    # Everything a round orders by: the guarantee of max_wait, served fewer times first,
    # bands, the score with points per round waited, accrued waiting, the ranking, the lottery.
    policy = _policy(
        capacity=3_000,
        lottery=lottery,
        bands=True,
        max_wait=6,
        points_per_round=0.5,
        accrue=True,
    )
    weeks = _parquet_weeks(_weeks(200_000, 2, 11, [8], 0.02), tmp_path, 8)
    seen = _rounds_equal(policy, weeks, client, texts=False)
    if lottery:
        assert len(seen) == 2
        served = [json.loads(s)["served"] for s in seen]
        assert all(len(s) == 3_000 for s in served)
        assert not set(served[0]) & set(served[1])  # served fewer times first
    else:
        # Without a lottery, residents equal on the whole order straddle the capacity: one
        # process refuses to choose, and so does the cluster.
        assert seen[-1] == "FA657"


@pytest.mark.slow
def test_the_command_line_runs_rounds_on_a_local_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fairalloc.cli import main

    policy_file = ROOT / "examples" / "activity-places" / "policy.yaml"
    policy = fa.load_policy(policy_file)
    frame = pd.read_csv(
        ROOT / "examples" / "activity-places" / "residents.csv", dtype={"resident_id": str}
    )
    folder = tmp_path / "week"
    folder.mkdir()
    for j, chunk in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[chunk].to_parquet(folder / f"part.{j}.parquet", index=False)
    args = ["run", str(policy_file), str(folder), "--dask", "--no-progress"]
    # Without --state-out the round's state would be lost: refused before any cluster starts.
    assert main(args) == 2
    assert "--state-out" in capsys.readouterr().err
    s1, s2, out = tmp_path / "s1.json", tmp_path / "s2.json", tmp_path / "round.json"
    assert main([*args, "--state-out", str(s1)]) == 0
    assert "round 1: 12 served of" in capsys.readouterr().out
    assert main([*args, "--state", str(s1), "--state-out", str(s2), "--out", str(out)]) == 0
    two = fa.simulate(policy, frame, rounds=2)
    assert s2.read_text(encoding="utf-8") == two.state.to_json() + "\n"
    assert json.loads(out.read_text(encoding="utf-8"))["served"] == two.served[1]
    # On one machine, a round is `fairalloc round` (recorded) or `fairalloc simulate`.
    assert main(["run", str(policy_file), str(folder), "--state-out", str(s2)]) == 2
    assert "fairalloc round" in capsys.readouterr().err
    # A round is written as JSON, and is not flip-audited here: refused before any work.
    assert main([*args, "--state-out", str(s2), "--out", str(tmp_path / "r.parquet")]) == 2
    assert "a rotation round is written as .json" in capsys.readouterr().err
    assert main([*args, "--state-out", str(s2), "--flip", str(tmp_path / "f.json")]) == 2
    assert "--flip audits an allocation" in capsys.readouterr().err
    plain = ROOT / "examples" / "elderly-care" / "policy.yaml"
    assert main(["run", str(plain), str(folder), "--dask", "--state-out", str(s2)]) == 2
    assert "allocation.rotation" in capsys.readouterr().err
