"""The decision log: chain, tree, proofs, commit-then-draw, verify, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc.errors import RecordsError
from fairalloc.records import (
    DecisionLog,
    canonical,
    consistency_proof,
    leaf_hash,
    node_hash,
    policy_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
    verify_log,
    verify_receipt,
)
from fairalloc.records._canonical import canonical_float, column_texts
from fairalloc.records._commit import leaf_of, recommit, row_messages
from fairalloc.records._log import _lazy_outcomes
from fairalloc.records._merkle import Tree

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "elderly-care"
POLICY = EXAMPLE / "policy.yaml"
DATA = EXAMPLE / "residents.csv"
T0 = "2026-12-01T09:00:00Z"


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 9162's recursive definition, as written in the RFC."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


def _procedure(log: DecisionLog, policy: fa.Policy, data: object = DATA) -> tuple[int, int, int]:
    p = log.register_policy(
        policy,
        approved_by="residents' committee",
        approved_at="2026-11-20",
        operator="clerk",
        time=T0,
    )
    f = log.freeze(p.seq, data, policy=policy, operator="clerk", time=T0)
    s = log.draw_seed(
        f.seq,
        public_randomness="07 12 19 23 31 40",
        how="state lottery of 2026-12-02",
        operator="clerk",
    )
    return p.seq, f.seq, s.seq


# -- the tree ----------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=70))
def test_tree_root_is_rfc9162s_recursive_definition(n: int) -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(n)]
    assert tree_root(leaves) == Tree(leaves).root == _reference_root(leaves)


@given(st.integers(min_value=1, max_value=40), st.data())
def test_inclusion_and_consistency_proofs_verify_and_detect_changes(
    n: int, data: st.DataObject
) -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(n)]
    tree = Tree(leaves)
    i = data.draw(st.integers(0, n - 1))
    path = tree.inclusion(i)
    assert verify_inclusion(i, n, leaves[i], path, tree.root)
    assert not verify_inclusion(i, n, leaf_hash(b"other"), path, tree.root)
    if path:
        bent = [*path[:-1], leaf_hash(b"x")]
        assert not verify_inclusion(i, n, leaves[i], bent, tree.root)
    m = data.draw(st.integers(1, n))
    proof = consistency_proof(leaves, m)
    old = _reference_root(leaves[:m])
    assert verify_consistency(m, n, old, tree.root, proof)
    if m < n:
        assert not verify_consistency(m, n, leaf_hash(b"forged"), tree.root, proof)
        changed = [*leaves[:m], leaf_hash(b"rewritten"), *leaves[m + 1 :]]
        assert not verify_consistency(m, n, old, _reference_root(changed), proof)


def test_rfc9162_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"a") == hashlib.sha256(b"\x00a").digest()
    assert node_hash(b"l", b"r") == hashlib.sha256(b"\x01lr").digest()


# -- canonical bytes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (29.0, "29"),
        (29.1, "29.1"),
        (1e-7, "1e-7"),
        (0.00001, "0.00001"),
        (1.5e22, "1.5e+22"),
        (1e21, "1e+21"),
        (123456789012345680000.0, "123456789012345680000"),
        (-0.5, "-0.5"),
        (5e-324, "5e-324"),
        (0.1 + 0.2, "0.30000000000000004"),
    ],
)
def test_floats_are_written_as_ecmascript_writes_them(value: float, text: str) -> None:
    assert canonical_float(value) == text


def test_canonical_json_of_records_is_plain_sorted_json() -> None:
    doc = {"b": [1, None, True], "a": {"é": '\n"x"', "Z": 0}, "c": "\u2028"}
    assert canonical(doc) == json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    with pytest.raises(RecordsError) as err:
        canonical({"x": float("nan")})
    assert err.value.code == "FA700"


def test_policy_hash_ignores_formatting_but_not_meaning(tmp_path: Path) -> None:
    text = POLICY.read_text(encoding="utf-8")
    reformatted = tmp_path / "policy.yaml"
    reformatted.write_text("# a comment\n" + text.replace("\n\n", "\n"), encoding="utf-8")
    assert policy_hash(fa.load_policy(reformatted)) == policy_hash(fa.load_policy(POLICY))
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace('version: "2026.1"', 'version: "2026.2"'), encoding="utf-8")
    assert policy_hash(fa.load_policy(changed)) != policy_hash(fa.load_policy(POLICY))


# -- the whole procedure ----------------------------------------------------------------


def test_whole_procedure_on_the_elderly_care_example(log: DecisionLog, tmp_path: Path) -> None:
    policy = fa.load_policy(POLICY)
    _, f, s = _procedure(log, policy)
    decision = log.decide(policy, DATA, freeze=f, seed=s, operator="clerk", time=T0)
    body = decision.record.body
    assert body["served"] == 40 == decision.allocation.n_served
    assert (
        body["seed_value"]
        == log.record(s).body["seed"]
        != policy.ranking.tie_break[-1].lottery.seed
    )
    assert body["list_root"] == log.record(f).body["root"]
    # the decision is the same allocation as fa.allocate with the recorded seed
    seeded = fa.allocate(
        fa.evaluate(
            fa.records.with_seed(policy, body["seed_value"]), DATA, as_of=dt.date(2026, 12, 1)
        )
    )
    assert seeded.served_ids() == decision.allocation.served_ids()
    head = log.head()
    # every resident's receipt checks against the published head
    for rid in (decision.ids[0], decision.allocation.served_ids()[0]):
        receipt = log.receipt(decision, rid)
        assert verify_receipt(json.dumps(receipt), head.to_dict()).ok
    report = verify_log(log, policies=[POLICY], data=DATA)
    assert report.ok, report.to_text()
    assert report.rerun == [decision.seq]
    export = tmp_path / "log.jsonl"
    assert log.export(export) == head
    openings = tmp_path / "openings.jsonl"
    log.export_openings(openings)
    offline = verify_log(export, policies=[POLICY], data=DATA, openings=openings, heads=[head])
    assert offline.ok, offline.to_text()
    assert offline.rerun == [decision.seq]
    # with no data at all, the export still proves chain, head and commitments
    bare = verify_log(export)
    assert bare.ok
    assert bare.not_rerun == [(decision.seq, "the policy it used was not given")]
    # an older head stays consistent with the grown log
    log.append("review.opened", {"case": "C-1", "decision": decision.seq}, operator="clerk")
    proof = [bytes.fromhex(p) for p in log.consistency(head.size)]
    new = log.head()
    assert verify_consistency(
        head.size, new.size, bytes.fromhex(head.root), bytes.fromhex(new.root), proof
    )
    late = verify_receipt(log.receipt(decision, decision.ids[5]), new)
    assert late.ok


def test_a_seed_drawn_before_the_freeze_is_refused(log: DecisionLog) -> None:
    policy = fa.load_policy(POLICY)
    _, f1, s1 = _procedure(log, policy)
    f2 = log.freeze(0, DATA, policy=policy, operator="clerk").seq
    with pytest.raises(RecordsError) as err:
        log.decide(policy, DATA, freeze=f2, seed=s1, operator="clerk")
    assert err.value.code == "FA710"
    assert err.value.record == s1
    with pytest.raises(RecordsError) as err:
        log.decide(policy, DATA, freeze=f1, seed=None, operator="clerk")
    assert err.value.code == "FA714"
    log.decide(policy, DATA, freeze=f1, seed=s1, operator="clerk")
    with pytest.raises(RecordsError) as err:
        log.decide(policy, DATA, freeze=f1, seed=s1, operator="clerk")
    assert err.value.code == "FA711"


def test_decide_refuses_other_data_or_another_policy(log: DecisionLog, tmp_path: Path) -> None:
    policy = fa.load_policy(POLICY)
    _, f, s = _procedure(log, policy)
    rows = DATA.read_text(encoding="utf-8").splitlines()
    rows[5] = rows[5].replace(",false,", ",true,", 1)
    changed = tmp_path / "changed.csv"
    changed.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(RecordsError) as err:
        log.decide(policy, changed, freeze=f, seed=s, operator="clerk")
    assert err.value.code == "FA713"
    assert rows[5].split(",")[0] in str(err.value)
    other = fa.load_policy(POLICY).model_copy(
        update={"allocation": policy.allocation.model_copy(update={"capacity": 41})}
    )
    with pytest.raises(RecordsError) as err:
        log.decide(other, DATA, freeze=f, seed=s, operator="clerk")
    assert err.value.code == "FA712"


def test_generic_records_append_but_reserved_kinds_and_floats_do_not(log: DecisionLog) -> None:
    rec = log.append("review.opened", {"case": "C-7", "grounds": "adl reassessed"}, operator="o")
    assert (rec.seq, rec.kind, rec.prev) == (0, "review.opened", "0" * 64)
    nxt = log.append("review.answered", {"case": "C-7", "changed": False}, operator="o")
    assert nxt.prev == rec.hash
    for kind in ("decision", "Review", "seed", ""):
        with pytest.raises(RecordsError) as err:
            log.append(kind, {}, operator="o")
        assert err.value.code == "FA705"
    with pytest.raises(RecordsError) as err:
        log.append("note", {"x": 0.5}, operator="o")
    assert err.value.code == "FA700"
    with pytest.raises(RecordsError) as err:
        log.append("note", {}, operator="o", time="yesterday")
    assert err.value.code == "FA702"
    assert verify_log(log).ok


# -- two processes appending at once -------------------------------------------------------

_APPENDER = """
import sys
from fairalloc.records import DecisionLog
url, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with DecisionLog.open(url) as log:
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(n):
        log.append("note", {"by": who, "i": i}, operator=who)
"""


@pytest.mark.slow
def test_two_processes_appending_at_once_never_fork_the_chain(log_url: str) -> None:
    DecisionLog.open(log_url).close()  # create the tables before the race
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _APPENDER, log_url, who, "60"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("office-a", "office-b")
    ]
    for p in procs:  # both connected, then released together
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with DecisionLog.open(log_url) as log:
        records = log.records()
        report = verify_log(log)
    assert report.ok, report.to_text()
    assert [r.seq for r in records] == list(range(120))
    by = [r.body["by"] for r in records]
    assert by.count("office-a") == by.count("office-b") == 60


def test_other_modules_record_their_decisions_and_verify_reruns_them(log: DecisionLog) -> None:
    policy = fa.load_policy(POLICY)
    _, f, s = _procedure(log, policy)

    def first_round(record: fa.records.Record, run: fa.Policy, pop: fa.Population) -> list[bytes]:
        day = dt.date.fromisoformat(record.body["as_of"])
        allocation = fa.allocate(fa.evaluate(run, pop, as_of=day), capacity=10)
        return fa.records.outcome_messages(allocation, fa.records.id_order(pop.ids))

    ready = log.prepare(policy, DATA, freeze=f, seed=s)
    assert ready.policy.ranking.tie_break[-1].lottery.seed == log.record(s).body["seed"]
    rec, _ = log.record_decision(
        ready,
        "rotation_round",
        first_round(
            fa.records.Record(0, "", "", "", "", "", {"as_of": "2026-12-01"}, b""),
            ready.policy,
            ready.population,
        ),
        as_of=dt.date(2026, 12, 1),
        capacity=10,
        served=10,
        operator="rounds",
        extra={"round": 1},
    )
    assert (rec.body["kind"], rec.body["round"]) == ("rotation_round", 1)
    with pytest.raises(RecordsError) as err:
        log.record_decision(
            ready,
            "rotation_round",
            [],
            as_of=dt.date(2026, 12, 1),
            capacity=1,
            served=0,
            operator="o",
        )
    assert err.value.code == "FA705"
    plain = verify_log(log, policies=[POLICY], data=DATA)
    assert plain.ok
    assert plain.not_rerun == [(rec.seq, "no re-run given for a rotation_round decision (rerun=)")]
    full = verify_log(log, policies=[POLICY], data=DATA, rerun={"rotation_round": first_round})
    assert (full.ok, full.rerun) == (True, [rec.seq])

    def wrong_round(record: fa.records.Record, run: fa.Policy, pop: fa.Population) -> list[bytes]:
        allocation = fa.allocate(fa.evaluate(run, pop, as_of=dt.date(2026, 12, 1)), capacity=11)
        return fa.records.outcome_messages(allocation, fa.records.id_order(pop.ids))

    wrong = verify_log(log, policies=[POLICY], data=DATA, rerun={"rotation_round": wrong_round})
    assert [(p.code, p.record) for p in wrong.problems] == [("FA730", rec.seq)]
    assert "another outcome for 1 resident(s)" in wrong.problems[0].what


def _raw_append(log: DecisionLog, kind: str, body: dict[str, object]) -> int:
    """Append a record as a forger with write access would, bypassing the API's checks."""

    def build(seq: int, prev: str) -> tuple[bytes, str]:
        doc = {
            "body": body,
            "kind": kind,
            "operator": "forger",
            "prev": prev,
            "seq": seq,
            "time": T0,
            "v": 1,
        }
        raw = canonical(doc)
        return raw, leaf_hash(raw).hex()

    return log.store.append(kind, build, None, None).seq


def test_one_draw_per_freeze_and_only_for_the_latest_list(log: DecisionLog) -> None:
    policy = fa.load_policy(POLICY)
    p, f, s = _procedure(log, policy)
    with pytest.raises(RecordsError) as err:
        log.draw_seed(f, value="another", how="again", operator="clerk")
    assert err.value.code == "FA707"
    f2 = log.freeze(p, DATA, policy=policy, operator="clerk").seq
    f3 = log.freeze(p, DATA, policy=policy, operator="clerk").seq
    with pytest.raises(RecordsError) as err:
        log.draw_seed(f2, value="pick me", how="after seeing the list", operator="clerk")
    assert err.value.code == "FA708"
    assert verify_log(log).ok
    # a forger who writes the records directly is named by verify
    frz = log.record(f)
    second = _raw_append(log, "seed", {**log.record(s).body, "seed": "chosen", "method": "public"})
    stale = _raw_append(
        log,
        "seed",
        {
            **log.record(s).body,
            "freeze": log.record(f2).hash,
            "freeze_record": f2,
            "method": "public",
            "seed": "stale",
        },
    )
    found = {(p.code, p.record) for p in verify_log(log).problems}
    assert ("FA731", second) in found
    assert ("FA732", stale) in found
    assert frz.seq < f3


def test_every_code_of_the_log_is_documented_and_in_its_range() -> None:
    import re

    src = ROOT / "src" / "fairalloc"
    text = "\n".join(
        p.read_text(encoding="utf-8")
        for p in [*(src / "records").glob("*.py"), *(src / "cli").glob("*.py")]
    )
    used = set(re.findall(r'RecordsError\(\s*"(FA\d{3})"', text))
    used |= set(re.findall(r'report\.add\(\s*"(FA\d{3})"', text))
    docs = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    section = docs[docs.index("## Decision log errors") : docs.index("## The command line")]
    listed = set(re.findall(r"^\| `(FA\d{3})` \|", section, re.MULTILINE))
    assert len(used) > 20
    assert used == listed
    assert all(700 <= int(c[2:]) <= 779 for c in used)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_canonical_floats_read_back_exactly(x: float) -> None:
    text = canonical_float(x)
    assert float(text) == x
    assert float(json.loads(canonical({"x": x}))["x"]) == x
    assert "e+0" not in text
    assert "e-0" not in text
    assert not text.endswith(".0")


_SPREAD = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-9, max_value=1e12),
    st.integers(-(10**16), 10**16).map(float),
    st.sampled_from([1e-7, 9.999999999999999e-8, 1e10, 9999999999.999998, 1e15, 1e21, -0.0]),
)


@given(st.lists(_SPREAD, max_size=40))
def test_column_texts_write_floats_as_canonical_float_does(xs: list[float]) -> None:
    # The vectorised writer (Arrow's shortest digits, integers for whole numbers) must give
    # the very text of the one-by-one ECMAScript writer, on both sides of every threshold.
    got = column_texts(np.array(xs, dtype=np.float64), "float")
    assert got == [canonical_float(x) for x in xs]


@given(st.lists(st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)), max_size=20))
def test_column_texts_write_dates_as_canonical_does(days: list[dt.date]) -> None:
    values = np.array(days, dtype="datetime64[D]")
    assert column_texts(values, "date") == [canonical(d).decode() for d in days]


@given(st.lists(st.text(), max_size=20))
def test_column_texts_write_text_as_canonical_does(texts: list[str]) -> None:
    values = np.array(texts, dtype=object)
    assert column_texts(values, "str") == [canonical(t).decode() for t in texts]


def test_a_log_that_cannot_be_opened_says_where(tmp_path: Path) -> None:
    for url in (
        "http://example.org/log",
        str(tmp_path / "missing-folder" / "log.db"),
        "postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dno_such_schema",
    ):
        with pytest.raises(RecordsError) as err:
            DecisionLog.open(url)
        assert err.value.code == "FA701", url


_ROWS_POLICY = """
policy: {id: rows, version: "1", title: Rows}
attributes:
  id: {type: str, role: id}
  a_flag: {type: bool}
  b_kind: {type: category, levels: [x, "y\\"q", 甲]}
  c_grade: {type: ordinal, levels: [low, mid, high]}
  d_when: {type: date}
  f_more: {type: bool}
  g_rate: {type: float}
  h_n: {type: int}
  i_kind: {type: category, levels: [p, q]}
rules: {eligibility: [{id: all, when: "true"}]}
"""


@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from(["x", 'y"q', "甲"]),
            st.sampled_from(["low", "mid", "high"]),
            st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)),
            st.booleans(),
            st.floats(allow_nan=False, allow_infinity=False, width=64),
            st.integers(-(10**12), 10**12),
            st.sampled_from(["p", "q"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_row_messages_are_each_resident_s_canonical_row(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    _rows_are_canonical(rows)


def test_combinations_found_by_sorting_give_the_same_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # Coded values' combinations are marked in a table when few, else sorted: alike.
    from fairalloc.records import _commit

    rows = [
        (
            k % 2 == 0,
            "x",
            ["low", "mid", "high"][k % 3],
            dt.date(2000, 1, 1 + k),
            k % 5 == 0,
            k / 4,
            k,
            ["p", "q"][k % 2],
        )
        for k in range(12)
    ]
    monkeypatch.setattr(_commit, "_MARKED", 0)
    _rows_are_canonical(rows)


def _rows_are_canonical(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    # The vectorised writer (runs of coded attributes combined, quotes in the template) against
    # the canonical JSON of each resident's record, written one by one.
    policy = fa.parse_policy(_ROWS_POLICY)
    names = ["a_flag", "b_kind", "c_grade", "d_when", "f_more", "g_rate", "h_n", "i_kind"]
    # Ids JSON must escape (a quote, a backslash) beside ids it need not.
    data: dict[str, list[object]] = {
        "id": [f"R{i:03d}" if i % 3 else f'R"{i:03d}\\甲' for i in range(len(rows))]
    }
    for j, name in enumerate(names):
        data[name] = [r[j] for r in rows]
    pop = fa.Population.from_columns(data, policy)
    order = fa.records.id_order(pop.ids)
    got = row_messages(pop, order)
    want = [
        canonical({"id": data["id"][k], **{n: data[n][k] for n in names}}) for k in order.tolist()
    ]
    assert got == want


@pytest.mark.parametrize("odd_ids", [False, True])
def test_outcome_messages_are_each_resident_s_canonical_outcome(odd_ids: bool) -> None:
    policy = fa.load_policy(POLICY)
    residents = fa.Population.from_csv(DATA, policy)
    if odd_ids:  # ids JSON must escape, and ids whose code-point order is not their bytes'
        odd = ['q"uote', "back\\slash", "甲乙", "slash/", "é", "e\u0301", "😀", "~"]
        ids = [odd[k % len(odd)] + str(k) for k in range(residents.n)]
        residents = fa.Population.from_columns(
            {"resident_id": ids, **{k: residents.decode(k) for k in residents.columns}}, policy
        )
    alloc = fa.allocate(fa.evaluate(policy, residents))
    ev = alloc.evaluation
    order = fa.records.id_order(ev.ids)
    cats = list(alloc.categories)
    want = []
    for k in order.tolist():
        c = int(alloc.category[k])
        want.append(
            canonical(
                {
                    "category": cats[c] if c >= 0 else None,
                    "eligible": bool(ev.eligible[k]),
                    "id": str(ev.ids[k]),
                    "position": int(alloc.position[k]) or None,
                    "rank": int(ev.ranking.rank[k]) or None,
                    "score_micro": int(ev.score_micro[k]),
                    "served": bool(alloc.served[k]),
                }
            )
        )
    assert fa.records.outcome_messages(alloc, order) == want
    assert any(b'"category":null' in m for m in want)
    assert any(b'"served":true' in m and b'"category":"' in m for m in want)
    # Leaves from the messages as one Arrow array (hashed where they lie in its buffer) are
    # the leaves of the messages one by one; so are those streamed, and one read alone.
    nonces, leaves = fa.records.commit(want)
    assert leaves == [leaf_of(nonces[32 * k : 32 * k + 32], m) for k, m in enumerate(want)]
    lazy = _lazy_outcomes(alloc, order)
    assert recommit(lazy, nonces) == leaves
    assert list(lazy) == want
    assert lazy[3] == want[3]
    assert lazy[-1] == want[-1]
    assert lazy.get() == want
    with pytest.raises(RecordsError, match="nonces for"):
        recommit(_lazy_outcomes(alloc, order), nonces[:-32])
