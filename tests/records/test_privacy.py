"""What the decision log reveals and keeps: hiding commitments, receipts, erasure, privileges,
tampering, and the grinding attack of a seed known in advance."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import fairalloc as fa
from fairalloc._ranking import lottery_key
from fairalloc.errors import RecordsError
from fairalloc.records import DecisionLog, canonical, leaf_hash, verify_log, verify_receipt
from fairalloc.records._merkle import Tree
from tests.records.conftest import PG, pg_schema, pg_url

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "elderly-care"
POLICY = EXAMPLE / "policy.yaml"
DATA = EXAMPLE / "residents.csv"
RECIPE = ROOT / "examples" / "records" / "check_receipt.py"
T0 = "2026-12-01T09:00:00Z"

SMALL = """
fairalloc: 1
policy: {id: small-places, version: "1", title: Small places}
attributes:
  id: {type: str, role: id}
  age: {type: int, min: 60, max: 100}
  need: {type: int, min: 0, max: 5}
  hardship: {type: ordinal, levels: [none, low_income, dibao, tekun]}
rules:
  priority:
    - {id: need-points, points: "need * 10"}
    - {id: hardship-points, points: "5 if hardship >= 'dibao' else 0"}
ranking: {tie_break: [{lottery: {seed: policy-file-seed}}]}
allocation: {capacity: 3}
"""


def _decide(log: DecisionLog, policy: fa.Policy, data: object) -> fa.records.Decision:
    p = log.register_policy(policy, approved_by="committee", approved_at="2026-11-20", operator="c")
    f = log.freeze(p.seq, data, policy=policy, operator="c", time=T0)
    s = log.draw_seed(f.seq, public_randomness="3 14 15 92 65", how="state lottery", operator="c")
    return log.decide(policy, data, freeze=f.seq, seed=s.seq, operator="c", time=T0)


def _small_rows() -> list[dict[str, object]]:
    levels = ["none", "low_income", "dibao", "tekun"]
    return [
        {"id": f"N{i:03d}", "age": 60 + (i * 7) % 41, "need": i % 6, "hardship": levels[i % 4]}
        for i in range(16)
    ]


# -- hiding --------------------------------------------------------------------------------


def test_the_enumerating_attacker_recovers_nothing(log: DecisionLog, tmp_path: Path) -> None:
    policy = fa.parse_policy(SMALL)
    rows = _small_rows()
    decision = _decide(log, policy, rows)
    head = log.head()
    # The attacker holds the published export, the head, and resident N004's receipt, whose
    # proofs carry the sibling leaves: N005's row and outcome commitments.
    log.export(tmp_path / "log.jsonl")
    receipt = log.receipt(decision, "N004")
    assert verify_receipt(receipt, head).ok
    target_row = bytes.fromhex(receipt["row"]["path"][0])
    target_out = bytes.fromhex(receipt["outcome"]["path"][0])
    levels = ["none", "low_income", "dibao", "tekun"]
    candidates = [
        canonical({"age": a, "hardship": h, "id": "N005", "need": n})
        for a, n, h in itertools.product(range(60, 101), range(6), levels)
    ]
    outcomes = [
        canonical(
            {
                "category": c,
                "eligible": True,
                "id": "N005",
                "position": p,
                "rank": r,
                "score_micro": sc,
                "served": c is not None,
            }
        )
        for c, p, r, sc in itertools.product(
            ["open", None], range(1, 17), range(1, 17), range(0, 56_000_000, 5_000_000)
        )
    ]
    own_nonce = bytes.fromhex(receipt["row"]["nonce"])
    guesses = {
        f(m)
        for m in candidates + outcomes
        for f in (
            leaf_hash,  # a plain hash of the row
            lambda m: leaf_hash(bytes(32) + m),  # a zero nonce
            lambda m: leaf_hash(own_nonce + m),  # the receipt's own nonce reused
        )
    }
    assert target_row not in guesses
    assert target_out not in guesses
    # The same attack against a log of plain row hashes finds the row at once: the test can fail.
    true_row = canonical(rows[5])
    assert true_row in candidates
    assert leaf_hash(true_row) in guesses
    # and nothing of anyone's data is in what is published
    published = (tmp_path / "log.jsonl").read_text(encoding="utf-8")
    for r in rows:
        assert str(r["id"]) not in published
    assert '"need"' not in published
    assert '"hardship"' not in published


def test_a_receipt_verifies_with_the_standard_library_alone(
    log: DecisionLog, tmp_path: Path
) -> None:
    decision = _decide(log, fa.load_policy(POLICY), DATA)
    rid = decision.allocation.served_ids()[3]
    receipt, head = tmp_path / "receipt.json", tmp_path / "head.json"
    receipt.write_text(json.dumps(log.receipt(decision, rid)), encoding="utf-8")
    head.write_text(log.head().to_json(), encoding="utf-8")
    # -I -S: isolated, without site-packages, so nothing but the standard library is importable
    run = [sys.executable, "-I", "-S", str(RECIPE), str(receipt), str(head)]
    done = subprocess.run(run, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "outcome: served" in done.stdout
    doc = json.loads(receipt.read_text(encoding="utf-8"))
    doc["outcome"]["message"] = doc["outcome"]["message"].replace('"served":true', '"served":false')
    receipt.write_text(json.dumps(doc), encoding="utf-8")
    done = subprocess.run(run, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "my outcome committed in the decision: NO" in done.stdout
    assert not verify_receipt(doc, log.head()).ok


def test_the_recipe_in_the_docs_is_the_script_that_is_tested() -> None:
    script = RECIPE.read_text(encoding="utf-8")
    body = script[script.index("import hashlib") :]
    for page in ("privacy.md", "privacy.zh-CN.md"):
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        assert body.strip() in text, page


# -- erasure ---------------------------------------------------------------------------------


def test_erasure_keeps_every_other_proof_and_names_what_cannot_be_rerun(
    log: DecisionLog, tmp_path: Path
) -> None:
    policy = fa.load_policy(POLICY)
    decision = _decide(log, policy, DATA)
    head = log.head()
    gone = decision.ids[17]
    kept = decision.ids[18]
    erasure = log.erase(gone, reason="purpose served (PIPL art. 47)", operator="dpo")
    assert gone not in erasure.raw.decode("utf-8")
    assert {(h["record"], h["leaf"]) for h in erasure.body["leaves"]} == {
        (decision.freeze.seq, 17),
        (decision.seq, 17),
    }
    with pytest.raises(RecordsError) as err:
        log.receipt(decision, gone)
    assert err.value.code == "FA715"
    assert verify_receipt(log.receipt(decision, kept), log.head()).ok
    lines = DATA.read_text(encoding="utf-8").splitlines()
    rest = tmp_path / "residents.csv"
    rest.write_text("\n".join(ln for ln in lines if not ln.startswith(gone + ",")) + "\n", "utf-8")
    report = verify_log(log, policies=[POLICY], data=rest, heads=[head])
    assert report.ok, report.to_text()
    assert report.not_rerun == [
        (
            decision.seq,
            f"openings of record {decision.freeze.seq} were destroyed by erasure record"
            f" {erasure.seq}",
        )
    ]
    assert report.rerun == []


# -- tampering ---------------------------------------------------------------------------------


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path, fa.records.Decision]:
    with DecisionLog.open(tmp_path / "log.db") as log:
        decision = _decide(log, fa.load_policy(POLICY), DATA)
        log.export(tmp_path / "log.jsonl")
        log.export_openings(tmp_path / "openings.jsonl")
    return tmp_path / "log.jsonl", tmp_path / "openings.jsonl", decision


def _verify(export: Path, openings: Path, **kw: object) -> fa.records.VerifyReport:
    args: dict[str, object] = {"policies": [POLICY], "data": DATA, "openings": openings}
    args.update(kw)
    return verify_log(export, **args)  # type: ignore[arg-type]


def test_untouched_export_verifies(published: tuple[Path, Path, fa.records.Decision]) -> None:
    export, openings, decision = published
    report = _verify(export, openings)
    assert report.ok, report.to_text()
    assert report.rerun == [decision.seq]


def test_one_byte_of_the_export_is_named(published: tuple[Path, Path, fa.records.Decision]) -> None:
    export, openings, decision = published
    lines = export.read_text(encoding="utf-8").splitlines()
    line = lines[1 + decision.seq]
    assert '\\"served\\":40' in line
    lines[1 + decision.seq] = line.replace('\\"served\\":40', '\\"served\\":41')
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = _verify(export, openings)
    assert not report.ok
    assert ("FA721", decision.seq) in {(p.code, p.record) for p in report.problems}
    # one byte of a leaf commitment: the record whose leaves they are is named
    lines = [ln.replace('\\"served\\":41', '\\"served\\":40') for ln in lines]
    doc = json.loads(lines[1 + decision.freeze.seq])
    blob = bytearray(base64.b64decode(doc["leaves"]))
    blob[100] ^= 1
    doc["leaves"] = base64.b64encode(bytes(blob)).decode("ascii")
    lines[1 + decision.freeze.seq] = json.dumps(doc, ensure_ascii=False)
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = _verify(export, openings)
    assert {(p.code, p.record) for p in report.problems} >= {("FA725", decision.freeze.seq)}


def test_one_residents_row_is_named(
    published: tuple[Path, Path, fa.records.Decision], tmp_path: Path
) -> None:
    export, openings, decision = published
    rows = DATA.read_text(encoding="utf-8").splitlines()
    who = rows[9].split(",")[0]
    rows[9] = rows[9].replace(",false,", ",true,", 1)
    changed = tmp_path / "changed.csv"
    changed.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = _verify(export, openings, data=changed)
    assert [(p.code, p.record) for p in report.problems] == [("FA729", decision.freeze.seq)]
    assert who in report.problems[0].what
    assert report.not_rerun == [
        (decision.seq, f"the data differ from freeze {decision.freeze.seq}")
    ]


def test_the_seed_order_is_named(published: tuple[Path, Path, fa.records.Decision]) -> None:
    export = published[0]
    lines = export.read_text(encoding="utf-8").splitlines()
    recs = [json.loads(ln) for ln in lines[1:]]
    # A forger moves the seed before the freeze and re-chains every record so that the chain
    # and the head are consistent again: verify still names the decision and its seed.
    order = [0, 2, 1, 3]
    forged: list[dict[str, object]] = []
    prev = "0" * 64
    renamed: dict[str, str] = {}
    for new_seq, old in enumerate(order):
        doc = json.loads(recs[old]["record"])
        doc["seq"], doc["prev"] = new_seq, prev
        body = doc["body"]
        for key in ("freeze", "seed", "policy"):
            if isinstance(body.get(key), str) and body[key] in renamed:
                body[key] = renamed[body[key]]
        raw = canonical(doc)
        digest = leaf_hash(raw).hex()
        renamed[recs[old]["hash"]] = digest
        forged.append({**recs[old], "hash": digest, "record": raw.decode("utf-8"), "seq": new_seq})
        prev = digest
    root = Tree([bytes.fromhex(str(f["hash"])) for f in forged]).root.hex()
    text = json.dumps({"fairalloc_log": 1, "root": root, "size": 4}) + "\n"
    text += "".join(json.dumps(f, ensure_ascii=False) + "\n" for f in forged)
    export.write_text(text, encoding="utf-8")
    report = verify_log(export)
    found = {(p.code, p.record) for p in report.problems}
    assert ("FA726", 3) in found
    assert ("FA723", 1) in found  # the seed names no earlier freeze
    assert not any(p.code == "FA721" for p in report.problems)


def test_a_changed_policy_file_is_named(
    published: tuple[Path, Path, fa.records.Decision], tmp_path: Path
) -> None:
    export, openings, decision = published
    changed = tmp_path / "policy.yaml"
    changed.write_text(
        POLICY.read_text(encoding="utf-8").replace("capacity: 40", "capacity: 41"), "utf-8"
    )
    assert changed.read_text(encoding="utf-8") != POLICY.read_text(encoding="utf-8")
    report = _verify(export, openings, policies=[changed])
    assert [(p.code, p.record) for p in report.problems] == [("FA728", 0)]
    assert "is not the policy registered as elderly-care-places 2026.1" in report.problems[0].what
    assert report.not_rerun == [(decision.seq, "the policy it used was not given")]


# -- the grinding attack ------------------------------------------------------------------------

FLAT = """
fairalloc: 1
policy: {id: flat-draw, version: "1", title: A plain draw}
attributes:
  id: {type: str, role: id}
  gender: {type: category, levels: [female, male]}
ranking: {tie_break: [{lottery: {seed: 2026-Q1-published}}]}
allocation: {capacity: 1}
"""


@pytest.mark.slow
def test_grinding_an_id_against_a_known_seed_fails_against_a_recorded_draw(
    tmp_path: Path,
) -> None:
    policy = fa.parse_policy(FLAT)
    seed = "2026-Q1-published"
    # The clerk assigning register ids knows the policy's seed and picks, of 10,000 free ids,
    # the one with the lowest key: under the policy's seed the favoured applicant wins.
    free = [f"R{n:05d}" for n in range(10_000)]
    favoured = min(free, key=lambda i: lottery_key(seed, i))
    assert lottery_key(seed, favoured) / 2**64 < 1e-3
    others = [{"id": f"A{n:03d}", "gender": "female"} for n in range(99)]
    applicants = [*others, {"id": favoured, "gender": "male"}]
    assert fa.allocate(policy, applicants).served_ids() == [favoured]
    # Recorded: the list is frozen first, the seed is derived afterwards from a public value
    # and the list commitment, so the ground key means nothing.
    wins = 0
    for k in range(20):
        with DecisionLog.open(tmp_path / f"log{k}.db") as log:
            p = log.register_policy(policy, approved_by="c", approved_at="2026-11-20", operator="c")
            f = log.freeze(p.seq, applicants, policy=policy, operator="c")
            s = log.draw_seed(f.seq, public_randomness=f"draw {k}", how="public", operator="c")
            # seeing the seed, the clerk cannot swap in a newly ground id: the list is frozen
            recorded = s.body["seed"]
            reground = min(free, key=lambda i: lottery_key(recorded, i))
            swapped = [*others, {"id": reground, "gender": "male"}]
            with pytest.raises(RecordsError) as err:
                log.decide(policy, swapped, freeze=f.seq, seed=s.seq, operator="c")
            assert err.value.code == "FA713"
            d = log.decide(policy, applicants, freeze=f.seq, seed=s.seq, operator="c")
            wins += d.allocation.served_ids() == [favoured]
    assert wins <= 2  # 1 chance in 100 each time, as for anybody else


# -- least privilege on PostgreSQL ----------------------------------------------------------------


def test_a_role_with_insert_and_select_only_appends_and_reads_but_cannot_rewrite() -> None:
    psycopg = pytest.importorskip("psycopg")
    for schema in pg_schema():
        DecisionLog.open(pg_url(schema)).close()  # the owner creates the tables
        role = f"fa_clerk_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG, autocommit=True) as c:
            c.execute(f"CREATE ROLE {role} LOGIN")
            c.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
            c.execute(
                f"GRANT SELECT, INSERT ON {schema}.fa_records, {schema}.fa_leaves,"
                f" {schema}.fa_openings TO {role}"
            )
        try:
            with DecisionLog.open(pg_url(schema, role)) as log:
                policy = fa.parse_policy(SMALL)
                decision = _decide(log, policy, _small_rows())
                assert verify_log(log, policies=[policy], data=_small_rows()).ok
                assert verify_receipt(log.receipt(decision, "N003"), log.head()).ok
            with psycopg.connect(pg_url(schema, role), autocommit=True) as c:
                for sql in (
                    "UPDATE fa_records SET kind = 'x'",
                    "DELETE FROM fa_records",
                    "UPDATE fa_leaves SET leaves = ''",
                    "DELETE FROM fa_leaves",
                ):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        c.execute(sql)
        finally:
            with psycopg.connect(PG, autocommit=True) as c:
                c.execute(f"DROP OWNED BY {role}")
                c.execute(f"DROP ROLE {role}")


def test_sqlite_refuses_rewriting_the_chain(tmp_path: Path) -> None:
    import sqlite3

    with DecisionLog.open(tmp_path / "log.db") as log:
        log.append("note", {"n": 1}, operator="c", leaves=[leaf_hash(b"x")])
    c = sqlite3.connect(tmp_path / "log.db")
    for sql in (
        "UPDATE fa_records SET kind = 'x'",
        "DELETE FROM fa_records",
        "UPDATE fa_leaves SET leaves = x''",
        "DELETE FROM fa_leaves",
    ):
        with pytest.raises(sqlite3.IntegrityError):
            c.execute(sql)
    c.close()


def test_hashes_are_sha256() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
