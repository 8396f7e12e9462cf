# ruff: noqa: E501 -- one mechanism per line reads best as a table
"""Allocation over a Dask DataFrame equals one process's, on a real local cluster.

The cluster is a ``distributed.LocalCluster`` with two worker processes; the populations have
200,000 residents in 8 partitions. Every mechanism the cluster decides is compared with the
one-process allocation of the same residents: the summary (cut-offs and their positions, units
used, eligible count) as JSON, byte for byte, and the served residents in order with their
categories. A property test does the same on small populations cut into random partitions.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc.errors import AllocationError, ArgumentError

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

from fairalloc.cluster import allocate_on_cluster  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

HEAD = """
policy: {id: c, version: "1", title: C}
attributes:
  id: {type: str, role: id}
  group: {type: category, levels: [x, y, z], protected: true, ground: cultural background}
  need: {type: int, min: 0, max: 9}
  waited: {type: int, min: 0, max: 1000000}
  poor: {type: bool}
JUSTIFIED
grounds_not_collected:
  age: n
  gender: n
  occupation: n
  economic status: n
  physical condition: n
rules:
  priority:
    - {id: base, points: need}
TIE
"""
LOTTERY_TIE = "ranking: {tie_break: [{lottery: {seed: s}}]}\n"
WAITED_TIE = "ranking: {tie_break: [{by: waited, order: desc}]}\n"
RESERVES = "  reserves:\n    - {id: r1, count: RES1, eligible: 'group == y'}\n    - {id: r2, count: RES2, eligible: poor, priority: waited}\n"

MECHANISMS = {
    "priority, lottery tie-break": (LOTTERY_TIE, "allocation: {capacity: CAP}\n"),
    "priority, no lottery": (WAITED_TIE, "allocation: {capacity: CAP}\n"),
    "reserves in precedence": (LOTTERY_TIE, "allocation:\n  capacity: CAP\n" + RESERVES),
    "reserves for most beneficiaries": (
        LOTTERY_TIE,
        "allocation:\n  capacity: CAP\n  reserve_mode: max_beneficiaries\n"
        + RESERVES.replace(", priority: waited", ""),
    ),
    "reserves that lapse": (
        WAITED_TIE,
        "allocation:\n  capacity: CAP\n  unused_reserved: lapse\n" + RESERVES,
    ),
    "lottery": (LOTTERY_TIE, "allocation: {capacity: CAP, mechanism: lottery, lottery: {seed: t}}\n"),
    "weighted lottery": (
        LOTTERY_TIE,
        "allocation: {capacity: CAP, mechanism: lottery, lottery: {seed: t, weight: '1 + need'}}\n",
    ),
}


def _policy(mechanism: str, capacity: int, res: tuple[int, int] = (0, 0)) -> fa.Policy:
    return fa.parse_policy(_policy_text(mechanism, capacity, res))


def _policy_text(mechanism: str, capacity: int, res: tuple[int, int] = (0, 0)) -> str:
    tie, alloc = MECHANISMS[mechanism]
    use = 'justified_uses:\n  - {attribute: group, reserve: r1, why: test, source: "§1"}\n'
    head = HEAD.replace("JUSTIFIED\n", use if "reserves" in alloc else "")
    text = head.replace("TIE\n", tie) + alloc.replace("CAP", str(capacity))
    return text.replace("RES1", str(res[0])).replace("RES2", str(res[1]))


def _frame(n: int, seed: int, waited_max: int = 1_000_000) -> Any:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"R{i:07d}" for i in rng.permutation(n)],
            "group": rng.choice(["x", "y", "z"], n),
            "need": rng.integers(0, 10, n),
            "waited": rng.integers(0, waited_max + 1, n),
            "poor": rng.random(n) < 0.2,
        }
    )


def _parquet(frame: Any, folder: Path, parts: int) -> Any:
    """``frame`` as a Parquet dataset of ``parts`` files, read back as a Dask DataFrame.

    The workers read the files themselves: no resident's data travels in the task graph.
    """
    folder.mkdir()
    for k, chunk in enumerate(np.array_split(np.arange(len(frame)), parts)):
        frame.iloc[chunk].to_parquet(folder / f"part.{k:03d}.parquet", index=False)
    return dd.read_parquet(folder)


def _one_process(policy: fa.Policy, frame: Any, capacity: int) -> tuple[str, Any]:
    """The one-process outcome: (summary JSON, served ids with categories), or the error code."""
    try:
        alloc = fa.allocate(fa.evaluate(policy, frame), capacity=capacity)
    except AllocationError as e:
        return e.code, None
    cats = {
        str(alloc.evaluation.ids[r]): alloc.categories[int(alloc.category[r])]
        for r in np.flatnonzero(alloc.served)
    }
    return json.dumps(alloc.summary(), ensure_ascii=False), [
        (i, cats[i]) for i in alloc.served_ids()
    ]


def _on_cluster(policy: fa.Policy, data: Any, capacity: int, client: Any) -> tuple[str, Any]:
    try:
        got = allocate_on_cluster(policy, data, capacity=capacity, client=client)
    except AllocationError as e:
        return e.code, None
    cats = got.categories()
    return json.dumps(got.summary(), ensure_ascii=False), [(i, cats[i]) for i in got.served_ids()]


def _tables_equal(policy: fa.Policy, frame: Any, data: Any, capacity: int, client: Any, folder: Path) -> None:
    """The cluster's result dataset, read part by part, is one process's result table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    one = fa.allocate(fa.evaluate(policy, frame), capacity=capacity)
    one.to_parquet(folder / "one.parquet")
    want = pq.read_table(folder / "one.parquet")
    got = allocate_on_cluster(policy, data, capacity=capacity, client=client)
    parts = got.to_parquet(folder / "many.parquet")
    assert [p.name for p in parts] == [f"part-{k:05d}.parquet" for k in range(len(parts))]
    have = pa.concat_tables([pq.read_table(p) for p in parts])
    assert have.schema.equals(want.schema)
    assert have.equals(want), [c for c in want.column_names if not have.column(c).equals(want.column(c))]
    assert sorted(p.name for p in (folder / "many.parquet").iterdir()) == [p.name for p in parts]


def _explanations_equal(
    policy: fa.Policy, frame: Any, data: Any, capacity: int, client: Any, folder: Path, fmt: str
) -> None:
    """The cluster's explanation parts, read in order, are one process's export."""
    one = fa.allocate(fa.evaluate(policy, frame), capacity=capacity)
    fa.export_explanations(one, folder / f"one.{fmt}", format=fmt)  # type: ignore[arg-type]
    want = (folder / f"one.{fmt}").read_text(encoding="utf-8")
    got = allocate_on_cluster(policy, data, capacity=capacity, client=client)
    parts = got.export_explanations(folder / f"many.{fmt}", format=fmt)  # type: ignore[arg-type]
    texts = [p.read_text(encoding="utf-8") for p in parts]
    if fmt == "csv":  # every part starts with the header
        head = want.split("\n", 1)[0] + "\n"
        assert all(t.startswith(head) for t in texts)
        texts = [head] + [t[len(head) :] for t in texts]
    have = "".join(texts)
    assert have.splitlines() == want.splitlines()
    assert have == want


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
def test_every_mechanism_equals_one_process_on_a_local_cluster(
    mechanism: str, client: Any, tmp_path: Path
) -> None:
    frame = _frame(200_000, seed=7)
    policy = _policy(mechanism, 2_000, res=(300, 200))
    data = _parquet(frame, tmp_path / "residents", 8)
    assert data.npartitions == 8
    want = _one_process(policy, frame, 2_000)
    got = _on_cluster(policy, data, 2_000, client)
    assert got == want
    assert want[1] is not None
    assert len(want[1]) == 2_000
    # Every resident's outcome: positions in the whole population, lottery keys and draws.
    _tables_equal(policy, frame, data, 2_000, client, tmp_path)
    if mechanism == "priority, lottery tie-break":
        # The flip audit, served status included: who would be served after a change of need
        # (bounds and quartiles) or of the tie-break is placed among all 200,000 keys.
        from fairalloc.audit import flip_audit

        many = allocate_on_cluster(policy, data, capacity=2_000, client=client)
        flips = {"attributes": ["need", "waited"]}
        mine = many.flip_audit(**flips).to_dict()
        theirs = flip_audit(fa.evaluate(policy, frame), capacity=2_000, **flips).to_dict()
        assert json.dumps(mine) == json.dumps(theirs)
        assert any(r["served_changes"] for r in theirs["results"])
    if mechanism in ("lottery", "weighted lottery"):
        # Explanations under a lottery mechanism: the ranking's facts and the draw's
        # positions, two orders of the whole population, joined by id.
        _explanations_equal(policy, frame, data, 2_000, client, tmp_path, "csv")


@pytest.mark.slow
def test_a_tie_at_the_cut_off_is_refused_alike(client: Any, tmp_path: Path) -> None:
    # Without a lottery, residents tied on everything straddle the cut-off: one process
    # refuses to choose among them, and so does the cluster (the whole tie group goes up).
    frame = _frame(50_000, seed=3, waited_max=3)
    policy = _policy("priority, no lottery", 1_000)
    want = _one_process(policy, frame, 1_000)
    assert want[1] is None  # refused
    assert _on_cluster(policy, _parquet(frame, tmp_path / "r", 8), 1_000, client) == want


@pytest.mark.slow
def test_the_elderly_care_example_from_parquet_equals_one_process(
    client: Any, tmp_path: Path
) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import load_generator

    policy = fa.load_policy(ROOT / "examples" / "elderly-care" / "policy.yaml")
    frame = pd.DataFrame(load_generator("elderly-care").generate(200_000, seed=2))
    _parquet(frame, tmp_path / "residents", 8)
    want = _one_process(policy, frame, 2_000)
    got = _on_cluster(policy, str(tmp_path / "residents"), 2_000, client)
    assert got == want
    # Group statistics, counted per partition and added up: numbers grouped by the quartiles
    # of every eligible resident, categories, an ordinal and a yes/no, within need strata.
    from fairalloc.audit import group_statistics

    one = fa.allocate(fa.evaluate(policy, frame), capacity=2_000)
    many = allocate_on_cluster(policy, str(tmp_path / "residents"), capacity=2_000, client=client)
    for strata in (None, "need"):
        mine = many.group_statistics(strata=strata).to_dict()
        assert json.dumps(mine) == json.dumps(group_statistics(one, strata=strata).to_dict())
    # Every resident's outcome, the ineligible (by id) after the eligible.
    assert not one.evaluation.eligible.all()
    _tables_equal(policy, frame, str(tmp_path / "residents"), 2_000, client, tmp_path)
    # Every resident's explanation: ranks shared by the large tie groups the lottery then
    # decides, which cross the parts of the ranking.
    assert one.evaluation.ranking.lottery_used.sum() > 10_000
    _explanations_equal(policy, frame, str(tmp_path / "residents"), 2_000, client, tmp_path, "jsonl")


#: Small populations cut into random partitions, under every mechanism.
PARTITIONED = {
    "mechanism": st.sampled_from(sorted(MECHANISMS)),
    "n": st.integers(1, 60),
    "parts": st.integers(1, 7),
    "capacity": st.integers(0, 25),
    "res": st.tuples(st.integers(0, 4), st.integers(0, 4)),
    "seed": st.integers(0, 2**16),
    "waited_max": st.sampled_from([2, 50]),
}


@settings(max_examples=60, deadline=None)
# Ties on everything straddle the cut-off inside a partition: the whole tie group must go up.
@example("priority, no lottery", 60, 2, 5, (0, 0), 1, 2)
@example("reserves that lapse", 60, 3, 6, (2, 2), 5, 2)
@given(**PARTITIONED)
def test_partitioning_never_changes_the_outcome(
    mechanism: str, n: int, parts: int, capacity: int, res: tuple[int, int], seed: int, waited_max: int
) -> None:
    # Dask's own local scheduler, in this process: the same code path as a cluster's workers.
    capacity = max(capacity, sum(res))
    policy = _policy(mechanism, capacity, res)
    frame = _frame(n, seed, waited_max)
    want = _one_process(policy, frame, capacity)
    got = _on_cluster(policy, dd.from_pandas(frame, npartitions=parts), capacity, None)
    assert got == want
    if want[1] is not None:  # and the group statistics of what was decided
        from fairalloc.audit import group_statistics

        one = fa.allocate(fa.evaluate(policy, frame), capacity=capacity)
        many = allocate_on_cluster(policy, dd.from_pandas(frame, npartitions=parts), capacity=capacity)
        mine = many.group_statistics(min_group=1, min_expected=0).to_dict()
        theirs = group_statistics(one, min_group=1, min_expected=0).to_dict()
        assert json.dumps(mine) == json.dumps(theirs)
        with tempfile.TemporaryDirectory() as folder:
            _tables_equal(policy, frame, dd.from_pandas(frame, npartitions=parts), capacity, None, Path(folder))


@settings(max_examples=30, deadline=None)
# No units: served status is still computed (nobody is served), also for a value nobody lacks.
@example("priority, lottery tie-break", 1, 1, 0, (0, 0), 0, 2, 0)
@example("priority, no lottery", 60, 2, 30, (0, 0), 1, 50, 0)
@given(**PARTITIONED, what_if_limit=st.sampled_from([0, 2_000]))
def test_partitioning_never_changes_the_flip_audit(
    mechanism: str, n: int, parts: int, capacity: int, res: tuple[int, int], seed: int, waited_max: int, what_if_limit: int
) -> None:
    # Numbers (quartiles), a tie-break number, a yes/no, a category read by a reserve; served
    # status from the ranking under priority, by the what-if pool when small, else not computed.
    from fairalloc.audit import flip_audit

    capacity = max(capacity, sum(res))
    policy = _policy(mechanism, capacity, res)
    frame = _frame(n, seed, waited_max)
    try:
        many = allocate_on_cluster(policy, dd.from_pandas(frame, npartitions=parts), capacity=capacity)
    except AllocationError:
        return  # a tie the allocation refuses: nothing decided to audit
    flips = {"attributes": ["group", "need", "waited", "poor"], "max_listed": 3, "what_if_limit": what_if_limit}
    mine = many.flip_audit(check_independent=True, **flips).to_dict()
    theirs = flip_audit(fa.evaluate(policy, frame), capacity=capacity, check_independent=True, **flips).to_dict()
    assert json.dumps(mine) == json.dumps(theirs)


def test_rotation_and_matching_are_refused_with_the_reason() -> None:
    rotation = fa.load_policy(ROOT / "examples" / "activity-places" / "policy.yaml")
    matching = fa.load_policy(ROOT / "examples" / "facility-slots" / "policy.yaml")
    frame = dd.from_pandas(_frame(10, 1), npartitions=2)
    for policy, code, why in ((rotation, "FA626", "rotation state"), (matching, "FA627", "displace")):
        with pytest.raises(ArgumentError) as e:
            allocate_on_cluster(policy, frame, capacity=3)
        assert e.value.code == code
        assert why in str(e.value)
    with pytest.raises(ArgumentError) as e:
        allocate_on_cluster(_policy("lottery", 3), _frame(10, 1))  # pandas, not dask
    assert e.value.code == "FA645"


def test_a_flip_audit_with_a_bad_argument_is_refused_as_in_one_process() -> None:
    policy = _policy("priority, lottery tie-break", 3)
    many = allocate_on_cluster(policy, dd.from_pandas(_frame(10, 1), npartitions=2))
    with pytest.raises(ArgumentError, match="max_listed must be at least 0, got -1") as e:
        many.flip_audit(max_listed=-1)
    assert e.value.code == "FA600"
    with pytest.raises(ArgumentError, match="unknown attribute `nope`") as e:
        many.flip_audit(attributes=["nope"])
    assert e.value.code == "FA602"


@pytest.mark.slow
def test_the_command_line_runs_on_a_local_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fairalloc.cli import main

    frame = _frame(20_000, seed=5)
    text = _policy_text("reserves in precedence", 500, res=(50, 40))
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    policy = fa.parse_policy(text)
    _parquet(frame, tmp_path / "residents", 4)
    out = tmp_path / "a.json"
    args = ["run", str(tmp_path / "p.yaml"), str(tmp_path / "residents")]
    assert main([*args, "--dask", "--workers", "2", "--out", str(out), "--no-progress"]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    one = fa.allocate(fa.evaluate(policy, frame), capacity=500)
    assert [r["id"] for r in doc.pop("served_residents")] == one.served_ids()
    assert doc == json.loads(json.dumps(one.summary()))
    assert "20,000 residents in 4 partitions" in capsys.readouterr().out
    # Every resident's outcome, as a folder of parts equal to one process's result table.
    import pyarrow as pa
    import pyarrow.parquet as pq

    many = tmp_path / "a.parquet"
    assert main([*args, "--dask", "--out", str(many), "--no-progress"]) == 0
    assert "(4 parts)" in capsys.readouterr().out
    one.to_parquet(tmp_path / "one.parquet")
    have = pa.concat_tables([pq.read_table(p) for p in sorted(many.glob("part-*.parquet"))])
    assert have.equals(pq.read_table(tmp_path / "one.parquet"))
    # And every resident's explanation, as `explain --all` writes it on one machine.
    folder = tmp_path / "why.jsonl"
    assert main([*args, "--dask", "--explanations", str(folder), "--no-progress"]) == 0
    assert "(4 parts)" in capsys.readouterr().out
    fa.export_explanations(one, tmp_path / "why-one.jsonl")
    lines = "".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("part-*.jsonl")))
    assert lines == (tmp_path / "why-one.jsonl").read_text(encoding="utf-8")
    assert main([*args, "--explanations", str(tmp_path / "w.jsonl")]) == 2  # not on one machine
    assert "explain POLICY DATA --all" in capsys.readouterr().err
    # The flip audit of the protected attributes, as one process makes it.
    from fairalloc.audit import flip_audit

    flips = tmp_path / "flip.json"
    assert main([*args, "--dask", "--flip", str(flips), "--no-progress"]) == 0
    assert "flip audit: no protected attribute" in capsys.readouterr().out
    theirs = flip_audit(one.evaluation, capacity=500).to_dict()
    assert json.loads(flips.read_text(encoding="utf-8")) == json.loads(json.dumps(theirs))
    assert main([*args, "--flip", str(flips)]) == 2  # not on one machine
    assert "fairalloc audit" in capsys.readouterr().err
    # A mistake is a message, not a traceback.
    assert main([*args, "--dask", "--out", str(tmp_path / "a.csv")]) == 2
    assert "Traceback" not in capsys.readouterr().err


@settings(max_examples=40, deadline=None)
@given(
    mechanism=st.sampled_from(sorted(MECHANISMS)),
    n=st.integers(1, 80),
    parts=st.integers(1, 6),
    capacity=st.integers(1, 30),
    samples=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    waited_max=st.sampled_from([2, 50]),
)
def test_a_coarse_sample_of_keys_only_adds_candidates(
    mechanism: str, n: int, parts: int, capacity: int, samples: int, seed: int, waited_max: int
) -> None:
    # Partitions send every (capacity // samples)-th key: the limit found from them may let
    # extra candidates up, never keep one out, so the outcome is still one process's.
    import fairalloc.cluster._allocate as engine

    capacity = max(capacity, 5)
    policy = _policy(mechanism, capacity, (2, 3))
    frame = _frame(n, seed, waited_max)
    before = engine._SAMPLES
    engine._SAMPLES = samples
    try:
        got = _on_cluster(policy, dd.from_pandas(frame, npartitions=parts), capacity, None)
    finally:
        engine._SAMPLES = before
    assert got == _one_process(policy, frame, capacity)


def test_the_result_table_orders_ids_as_one_process_does(tmp_path: Path) -> None:
    # Ids of other lengths and scripts (UTF-8 bytes sort as code points), and residents who
    # are not eligible, who come last by id; several partitions hold each kind.
    text = _policy_text("priority, no lottery", 4).replace(
        "rules:\n", "rules:\n  eligibility:\n    - {id: some-need, when: need >= 2}\n"
    )
    policy = fa.parse_policy(text)
    ids = ["a", "ab", "b", "Z", "é", "e\u0301", "Ω", "中", "中文", "😀", "a😀", "aa", "ä", "~", "0", "z" * 40]
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "id": ids,
            "group": rng.choice(["x", "y", "z"], len(ids)),
            "need": rng.integers(0, 10, len(ids)),
            "waited": rng.permutation(len(ids)),
            "poor": rng.random(len(ids)) < 0.5,
        }
    )
    for parts in (1, 3, 5):
        folder = tmp_path / str(parts)
        folder.mkdir()
        _tables_equal(policy, frame, dd.from_pandas(frame, npartitions=parts), 4, None, folder)


def test_a_result_dataset_replaces_only_an_earlier_one(tmp_path: Path) -> None:
    frame = _frame(200, seed=2)
    got = allocate_on_cluster(_policy("lottery", 10), dd.from_pandas(frame, npartitions=3), capacity=10)
    first = got.to_parquet(tmp_path / "r.parquet")
    assert got.to_parquet(tmp_path / "r.parquet") == first  # an earlier result is replaced
    assert not [p for p in tmp_path.iterdir() if p.name != "r.parquet"]  # nothing left beside
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine", encoding="utf-8")
    (tmp_path / "file.parquet").write_bytes(b"x")
    for path in (tmp_path / "notes", tmp_path / "file.parquet", tmp_path / "no" / "r.parquet"):
        with pytest.raises(ArgumentError) as e:
            got.to_parquet(path)
        assert e.value.code == "FA629"
    assert (tmp_path / "notes" / "keep.txt").read_text(encoding="utf-8") == "mine"


@settings(max_examples=60, deadline=None)
@given(
    mechanism=st.sampled_from(sorted(MECHANISMS)),
    n=st.integers(1, 60),
    parts=st.integers(1, 7),
    capacity=st.integers(1, 25),
    seed=st.integers(0, 2**16),
    waited_max=st.sampled_from([2, 50]),
    fmt=st.sampled_from(["jsonl", "csv"]),
)
def test_explanations_over_partitions_equal_one_process(
    mechanism: str, n: int, parts: int, capacity: int, seed: int, waited_max: int, fmt: str
) -> None:
    # Few distinct values: ranks shared by residents in several partitions, tie groups that
    # run across the parts of the ranking, and the lottery keys drawn for them; under a
    # lottery mechanism, the draw's positions joined to the ranking's facts by id.
    capacity = max(capacity, 5)
    policy = _policy(mechanism, capacity, (2, 3))
    frame = _frame(n, seed, waited_max)
    try:
        fa.allocate(fa.evaluate(policy, frame), capacity=capacity)
    except AllocationError:
        return  # a tie at a cut-off, refused alike (tested above)
    with tempfile.TemporaryDirectory() as folder:
        data = dd.from_pandas(frame, npartitions=parts)
        _explanations_equal(policy, frame, data, capacity, None, Path(folder), fmt)


def test_explanations_in_another_format_are_refused(tmp_path: Path) -> None:
    frame = dd.from_pandas(_frame(50, 1), npartitions=2)
    got = allocate_on_cluster(_policy("priority, lottery tie-break", 5), frame, capacity=5)
    with pytest.raises(ArgumentError) as e:
        got.export_explanations(tmp_path / "x.txt", format="txt")  # type: ignore[arg-type]
    assert e.value.code == "FA606"
    assert not list(tmp_path.iterdir())
