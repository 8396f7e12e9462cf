"""Running an allocation for real, on the elderly-care example: freeze, draw, decide, publish,
verify, and a resident's receipt.

Usage: python examples/records/walkthrough.py [WORKDIR]

Writes the log (SQLite), its export, the published head and one receipt into WORKDIR (a
temporary folder by default) and prints each step. See docs/records.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import fairalloc as fa
from fairalloc.records import DecisionLog, verify_log, verify_receipt

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "elderly-care"
POLICY = EXAMPLE / "policy.yaml"
DATA = EXAMPLE / "residents.csv"


def main(work: Path) -> int:
    policy = fa.load_policy(POLICY)
    with DecisionLog.open(work / "office-log.db") as log:
        p = log.register_policy(
            policy, approved_by="residents' committee", approved_at="2026-11-20", operator="clerk"
        )
        print(f"1. policy registered: record {p.seq}, hash {p.body['policy_hash'][:16]}…")
        f = log.freeze(p.seq, DATA, policy=policy, operator="clerk")
        print(f"2. list frozen: record {f.seq}, {f.body['count']} applicants")
        s = log.draw_seed(
            f.seq,
            public_randomness="welfare lottery 2026-12-02: 07 12 19 23 31 40",
            how="numbers of the welfare lottery drawn on 2026-12-02, announced before the freeze",
            operator="clerk",
        )
        print(f"3. seed drawn after the freeze: record {s.seq}, seed {s.body['seed'][:16]}…")
        decision = log.decide(policy, DATA, freeze=f.seq, seed=s.seq, operator="clerk")
        body = decision.record.body
        print(f"4. decision: record {decision.seq}, {body['served']} served of {body['count']}")
        head = log.head()
        (work / "head.json").write_text(head.to_json(), encoding="utf-8")
        print(f"5. head to publish: {head.to_json()}")
        resident = decision.allocation.served_ids()[0]
        receipt = log.receipt(decision, resident)
        (work / f"{resident}.json").write_text(json.dumps(receipt, indent=1), encoding="utf-8")
        log.export(work / "log.jsonl")
        log.export_openings(work / "openings.jsonl")
    print(f"6. export for publication: {work / 'log.jsonl'}")
    public = verify_log(work / "log.jsonl", heads=[head])
    print(f"7. anyone, from the export alone: {'OK' if public.ok else 'FAILED'}")
    full = verify_log(
        work / "log.jsonl", policies=[POLICY], data=DATA, openings=work / "openings.jsonl"
    )
    print(f"8. the office, re-running every decision:\n{full.to_text()}")
    mine = verify_receipt(receipt, head)
    print(f"9. {resident}'s receipt against the published head: {'OK' if mine.ok else 'FAILED'}")
    print(
        f"   (or, with the standard library alone: python {HERE / 'check_receipt.py'}"
        f" {work / (resident + '.json')} {work / 'head.json'})"
    )
    return 0 if public.ok and full.ok and mine.ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(Path(tmp)))
