"""The ``fairalloc`` command.

Commands:
    run POLICY DATA       rank the residents in DATA under POLICY (``--out`` CSV or JSON)
    simulate POLICY DATA  serve POLICY's rotation to DATA for ``--rounds`` rounds (``--out`` CSV
                          or JSON)
    validate POLICY...    check policy files; every problem as ``file:line:col: CODE message``
    check POLICY...       prove which protected attributes each policy reads, and why
    audit POLICY DATA     fairness audit on a population (Markdown, HTML or JSON report)
    explain POLICY DATA   why residents got their outcome, what would change it (en, zh-CN)
    diff OLD NEW [DATA]   what changed between two policies and, with DATA, for whom
    sweep POLICY DATA     outcomes and group statistics over a grid of parameter values
    schema                print the JSON Schema of policy files

Exit status: 0 success, 1 invalid policy or data (messages on stderr), 2 wrong usage.
The command holds no logic of its own: everything it does is a call of the public API.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import fairalloc as fa
from fairalloc import Simulation, simulate
from fairalloc.analysis import add_diff_parser, add_sweep_parser
from fairalloc.errors import FairallocError
from fairalloc.explain import LOCALES

__all__ = ["main"]

#: Below this many residents a progress bar would only flicker.
PROGRESS_MIN = 200_000


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args))
    except FairallocError as e:
        print(str(e), file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except UnicodeDecodeError as e:
        print(
            f"error: the data is not UTF-8 text (byte {e.start}); save it as UTF-8", file=sys.stderr
        )
        return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fairalloc",
        description="Allocation policies as data: validate, evaluate and rank.",
    )
    p.add_argument("--version", action="version", version=f"fairalloc {fa.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="rank residents under a policy")
    run.add_argument("policy", type=Path, help="policy file (.yaml, .json, .toml)")
    run.add_argument("data", type=Path, help="residents (.csv)")
    run.add_argument("--out", type=Path, help="write the full ranking to FILE (.csv or .json)")
    run.add_argument("--top", type=int, default=20, help="rows to print (default 20; 0 for none)")
    run.add_argument("--as-of", type=dt.date.fromisoformat, help="date of parameter values")
    run.add_argument("--capacity", type=int, help="units to allocate (default: the policy's)")
    run.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    run.set_defaults(handler=_run)

    sim = sub.add_parser("simulate", help="serve a policy's rotation (轮候) over rounds")
    sim.add_argument("policy", type=Path, help="policy file with `allocation.rotation`")
    sim.add_argument("data", type=Path, help="residents at the start (.csv)")
    sim.add_argument("--rounds", type=int, required=True, help="rounds to run (weeks, months)")
    sim.add_argument("--capacity", type=int, help="served per round (default: the policy's)")
    sim.add_argument("--out", type=Path, help="write every resident's history (.csv or .json)")
    sim.set_defaults(handler=_simulate)

    val = sub.add_parser("validate", help="check policy files and report every problem")
    val.add_argument("policies", type=Path, nargs="+", help="policy files")
    val.set_defaults(handler=_validate)

    chk = sub.add_parser("check", help="static proof: which protected attributes are read, why")
    chk.add_argument("policies", type=Path, nargs="+", help="policy files")
    chk.set_defaults(handler=_check)

    aud = sub.add_parser("audit", help="fairness audit of a policy on a population")
    aud.add_argument("policy", type=Path, help="policy file")
    aud.add_argument("data", type=Path, help="residents (.csv)")
    aud.add_argument("--capacity", type=int, help="units to allocate (default: the policy's)")
    aud.add_argument("--strata", help="graded scale whose grades are the need strata")
    aud.add_argument("--format", choices=("md", "html", "json"), default="md")
    aud.add_argument("--out", type=Path, help="write the report to FILE")
    aud.add_argument(
        "--publication", action="store_true", help="suppress small cells, as for a published report"
    )
    aud.set_defaults(handler=_audit)

    add_diff_parser(sub)
    add_sweep_parser(sub)

    exp = sub.add_parser(
        "explain", help="explain residents' outcomes: rules, points, cut-offs, what would change"
    )
    exp.add_argument("policy", type=Path, help="policy file")
    exp.add_argument("data", type=Path, help="residents (.csv)")
    who = exp.add_mutually_exclusive_group(required=True)
    who.add_argument("--id", dest="ids", action="append", help="resident id (repeatable)")
    who.add_argument(
        "--all", action="store_true", help="every resident, as JSON Lines or CSV (with --out)"
    )
    exp.add_argument("--lang", choices=LOCALES, default="en", help="language (default en)")
    exp.add_argument("--format", choices=("text", "md", "html", "json"), default="text")
    exp.add_argument("--contrast", metavar="OTHER", help="compare the resident with OTHER")
    exp.add_argument("--capacity", type=int, help="units to allocate (default: the policy's)")
    exp.add_argument("--rounds", type=int, help="rounds to run, for a rotation")
    exp.add_argument("--as-of", type=dt.date.fromisoformat, help="date of parameter values")
    exp.add_argument(
        "--target-rank", type=int, help="without an allocation: the rank counterfactuals aim at"
    )
    exp.add_argument(
        "--no-counterfactuals", action="store_true", help="skip the search for changes"
    )
    exp.add_argument("--out", type=Path, help="write to FILE (.jsonl or .csv with --all)")
    exp.set_defaults(handler=_explain)

    sch = sub.add_parser("schema", help="print the JSON Schema of policy files")
    sch.add_argument("--out", type=Path, help="write to FILE instead of stdout")
    sch.set_defaults(handler=_schema)
    return p


def _explain(args: argparse.Namespace) -> int:
    policy = fa.load_policy(args.policy, as_of=args.as_of)
    population = fa.Population.from_csv(args.data, policy)
    with _progress(population.n, enabled=args.all) as tick:
        result = fa.evaluate(policy, population, as_of=args.as_of, progress=tick)
    spec = policy.allocation
    source: Any = result
    if spec is not None and spec.matching is not None:
        source = fa.match(result)
    elif spec is not None and spec.rotation is not None:
        if args.rounds is None:
            raise FairallocError("this policy serves a waiting list over rounds: give --rounds N")
        source = fa.simulate(policy, population, rounds=args.rounds, capacity=args.capacity)
    elif spec is not None:
        source = fa.allocate(result, capacity=args.capacity)
    if args.all:
        if args.out is None or args.out.suffix.lower() not in (".jsonl", ".csv"):
            raise FairallocError("--all writes a file: give --out FILE.jsonl or --out FILE.csv")
        if not isinstance(source, fa.Evaluation | fa.Allocation):
            raise FairallocError(
                "--all exports evaluations and capacity allocations; for a matching or a"
                " rotation, explain residents one by one with --id"
            )
        csv_out = args.out.suffix.lower() == ".csv"
        n = fa.export_explanations(source, args.out, format="csv" if csv_out else "jsonl")
        print(f"wrote the explanations of {n} residents to {args.out}")
        return 0
    parts = []
    for rid in args.ids:
        try:
            item: Any = (
                fa.contrast(source, rid, args.contrast, lang=args.lang)
                if args.contrast
                else fa.explain(
                    source,
                    rid,
                    lang=args.lang,
                    counterfactuals=not args.no_counterfactuals,
                    target_rank=args.target_rank,
                )
            )
        except KeyError as e:
            raise FairallocError(str(e.args[0]) if e.args else str(e)) from None
        if args.format == "json" and len(args.ids) > 1:
            parts.append(item.to_json() + "\n")  # several: one JSON document per line
        else:
            parts.append(item.render(args.format, args.lang))
    text = ("\n" if args.format in ("text", "md") else "").join(parts)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {len(parts)} explanation(s) to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _run(args: argparse.Namespace) -> int:
    policy = fa.load_policy(args.policy, as_of=args.as_of)
    population = fa.Population.from_csv(args.data, policy)
    with _progress(population.n, enabled=not args.no_progress) as tick:
        result = fa.evaluate(policy, population, as_of=args.as_of, progress=tick)
    ranking = result.ranking
    out = sys.stdout
    _summary(result, out)
    spec = policy.allocation
    if spec is not None and spec.matching is not None:
        matching = fa.match(result)
        _print_matching(matching, args.top, out)
        if args.out is not None:
            if args.out.suffix.lower() != ".json":
                raise FairallocError(f"cannot write `{args.out}`: a matching is written as .json")
            args.out.write_text(matching.to_json(indent=1) + "\n", encoding="utf-8")
            print(f"wrote the matching of {result.n} residents to {args.out}", file=out)
        return 0
    if spec is not None and spec.rotation is not None:
        print(
            "this policy serves a waiting list over rounds: `fairalloc simulate` runs them;"
            " the ranking of the first round follows",
            file=out,
        )
    if spec is not None and spec.matching is None and spec.rotation is None:
        allocation = fa.allocate(result, capacity=args.capacity)
        _print_allocation(allocation, args.top, out)
        if args.out is not None:
            _write(allocation, args.out)
            print(f"wrote {len(allocation.order)} eligible residents to {args.out}", file=out)
        return 0
    if args.top > 0:
        _print_table(
            [ranking.row(i) for i in range(min(args.top, len(ranking)))], len(ranking), out
        )
    if args.out is not None:
        _write(ranking, args.out)
        print(f"wrote {len(ranking)} ranked residents to {args.out}", file=out)
    return 0


def _print_matching(result: fa.MatchingResult, top: int, out: TextIO) -> None:
    s = result.summary()
    print(
        f"matching: deferred acceptance, {s['served']} served of {s['eligible']} eligible,"
        f" {s['proposals']} proposals",
        file=out,
    )
    for c in result.cutoffs():
        last = f", last admitted {c.last_id} (priority rank {c.last_rank})" if c.last_id else ""
        print(
            f"  {c.resource}: {c.used} of {c.capacity} units, {c.demand} applicants{last}", file=out
        )
    rows = [r for r in result.to_dicts() if r["eligible"]][: max(top, 0)]
    table: list[dict[str, object]] = [
        {
            "id": r["id"],
            "score": r["score"],
            "holds": ", ".join(r["resources"]) or "-",
            "choice": ", ".join(str(c) for c in r["choices"]) or "-",
        }
        for r in rows
    ]
    if table:
        _print_table(table, int(s["eligible"]), out)


def _print_allocation(allocation: fa.Allocation, top: int, out: TextIO) -> None:
    print(
        f"allocation: {allocation.mechanism}, {allocation.capacity} units,"
        f" {allocation.n_served} served",
        file=out,
    )
    for c in allocation.cutoffs():
        score = "" if c.score is None else f", cut-off score {_cell(c.score)} ({c.last_id})"
        print(f"  {c.category}: {c.used} of {c.size} units{score}", file=out)
    if allocation.lapsed.sum():
        print(f"  {int(allocation.lapsed.sum())} reserved units lapsed", file=out)
    if top > 0:
        rows = []
        for row in allocation.order[:top]:
            rec = allocation.record(int(row))
            rows.append(
                {
                    "position": rec["position"],
                    "id": rec["id"],
                    "score": rec["score"],
                    **({"lottery_draw": rec["lottery_draw"]} if "lottery_draw" in rec else {}),
                    "served": rec["category"] or "-",
                    "tied": False,
                }
            )
        _print_table(rows, len(allocation.order), out)


def _summary(result: fa.Evaluation, out: TextIO) -> None:
    cp = result.policy
    meta = cp.policy.policy
    title = meta.title if isinstance(meta.title, str) else meta.title.get("en", meta.id)
    print(f"{title} ({meta.id} v{meta.version})", file=out)
    n, eligible = result.n, int(result.eligible.sum())
    print(f"{n} residents, {eligible} eligible", file=out)
    for j, rid in enumerate(cp.eligibility_ids):
        failed = int((~result.eligibility[:, j]).sum())
        if failed:
            print(f"  {failed} not meeting `{rid}`", file=out)
    for j, rid in enumerate(cp.exclusion_ids):
        hit = int(result.exclusions[:, j].sum())
        if hit:
            print(f"  {hit} excluded by `{rid}`", file=out)
    chain = ", ".join(["score (desc)", *cp.tie_break_labels])
    print(f"ranked by {chain}", file=out)
    if cp.lottery_seed is not None:
        print(f"lottery seed: {cp.lottery_seed}", file=out)


def _print_table(rows: list[dict[str, object]], total: int, out: TextIO) -> None:
    if not rows:
        print("(nobody is eligible)", file=out)
        return
    heads = [h for h in rows[0] if h != "tied"]
    for r in rows:
        heads += [h for h in r if h not in heads and h != "tied"]
    cells = [
        [_cell(r.get(h, "")) + ("=" if h == "rank" and r.get("tied") else "") for h in heads]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[k]) for c in cells)) for k, h in enumerate(heads)]
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)), file=out)
    for c in cells:
        print(
            "  ".join(
                v.ljust(w) if heads[k] in ("id", "holds") else v.rjust(w)
                for k, (v, w) in enumerate(zip(c, widths, strict=True))
            ),
            file=out,
        )
    if total > len(rows):
        print(f"... {total - len(rows)} more (use --out to write all)", file=out)
    if any(r.get("tied") for r in rows):
        print("= shares its rank: still tied after the whole tie-break chain", file=out)


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.6f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))
    return str(v)


def _write(result: fa.Ranking | fa.Allocation, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_text(result.to_json(indent=1) + "\n", encoding="utf-8")
    elif suffix == ".csv":
        result.to_csv(path)
    else:
        raise FairallocError(f"cannot write `{path}`: name it .csv or .json")


def _simulate(args: argparse.Namespace) -> int:
    policy = fa.load_policy(args.policy)
    population = fa.Population.from_csv(args.data, policy)
    try:
        result = simulate(policy, population, rounds=args.rounds, capacity=args.capacity)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = sys.stdout
    _print_simulation(result, population.n, out)
    if args.out is not None:
        suffix = args.out.suffix.lower()
        if suffix == ".json":
            args.out.write_text(result.to_json(indent=1) + "\n", encoding="utf-8")
        elif suffix == ".csv":
            result.to_csv(args.out)
        else:
            raise FairallocError(f"cannot write `{args.out}`: name it .csv or .json")
        print(f"wrote {len(result)} residents to {args.out}", file=out)
    return 0


def _print_simulation(result: Simulation, n: int, out: TextIO) -> None:
    cp = result.policy
    meta = cp.policy.policy
    title = meta.title if isinstance(meta.title, str) else meta.title.get("en", meta.id)
    print(f"{title} ({meta.id} v{meta.version})", file=out)
    print(f"{n} residents; rotation: {result.rounds} rounds, {result.capacity} per round", file=out)
    rot = result.rotation
    order = [f"waited {rot.max_wait}+ rounds first"] if rot.max_wait is not None else []
    order += ["served fewer times first"] if rot.served_go_last else []
    order += [f"band `{rot.bands}` (desc)"] if rot.bands is not None else []
    bonus = f" + {_cell(rot.points_per_round)} per round waited" if rot.points_per_round else ""
    order += [f"score{bonus} (desc)", "rounds waited (desc)"]
    order += [f"the ranking's {', '.join(cp.tie_break_labels)}"] if cp.tie_break_labels else []
    print("order: " + ", ".join(order), file=out)
    if result.lottery_seed is not None:
        print(f"lottery seed: {result.lottery_seed}", file=out)
    s = result.summary()
    runs: list[list[int]] = []  # [count, first round, last round]
    for r, k in enumerate(s["served_per_round"], start=1):
        if runs and runs[-1][0] == k:
            runs[-1][2] = r
        else:
            runs.append([k, r, r])
    print(
        "served per round: "
        + ", ".join(f"{k} (round{f's {a}-{b}' if b > a else f' {a}'})" for k, a, b in runs),
        file=out,
    )
    print(
        f"served at least once: {s['served_at_least_once']} of {s['residents']};"
        f" never served: {s['never_served']}"
        f" (never served while eligible: {s['never_served_while_eligible']})",
        file=out,
    )
    print(f"longest wait: {s['longest_wait']} rounds", file=out)
    w = s["waiting_before_first_service"]
    if w["mean"] is None:
        return
    print(
        f"wait before first service: mean {w['mean']:.2f}, median {_cell(w['median'])},"
        f" max {w['max']} rounds",
        file=out,
    )
    print(f"  {'rounds':>6}  {'residents':>9}", file=out)
    for row in w["distribution"]:
        print(f"  {row['rounds']:>6}  {row['residents']:>9}", file=out)


def _validate(args: argparse.Namespace) -> int:
    status = 0
    for path in args.policies:
        try:
            policy = fa.load_policy(path)
        except fa.PolicyError as e:
            status = 1
            for issue in e.issues:
                print(str(issue), file=sys.stdout)
        except OSError as e:
            status = 1
            print(f"{path}: FA104 cannot read the file: {e.strerror or e}", file=sys.stdout)
        else:
            meta = policy.policy
            print(f"{path}: ok ({meta.id} v{meta.version})", file=sys.stdout)
    return status


def _check(args: argparse.Namespace) -> int:
    from fairalloc.audit import static_proof

    status = 0
    for path in args.policies:
        proof = static_proof(fa.load_policy(path, audit=True))
        print(f"{path}:", file=sys.stdout)
        print(proof.to_markdown(), file=sys.stdout)
        if not proof.ok:
            status = 1
    return status


def _audit(args: argparse.Namespace) -> int:
    from fairalloc.audit import audit

    policy = fa.load_policy(args.policy, audit=True)
    report = audit(
        policy,
        fa.Population.from_csv(args.data, policy),
        capacity=args.capacity,
        strata=args.strata,
        publication=args.publication,
    )
    if args.format == "md":
        text = report.to_markdown()
    elif args.format == "html":
        text = report.to_html()
    else:
        text = report.to_json(indent=1) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote the audit report to {args.out}", file=sys.stdout)
    return 0 if report.ok else 1


def _schema(args: argparse.Namespace) -> int:
    text = json.dumps(fa.json_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


class _progress:
    """A progress bar on stderr for long runs: tqdm when installed, else a plain line."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled and total >= PROGRESS_MIN and sys.stderr.isatty()
        self.done = 0
        self.bar: Any = None

    def __enter__(self) -> Callable[[int], None] | None:
        if not self.enabled:
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return self._plain
        self.bar = tqdm(total=self.total, unit=" residents", file=sys.stderr, leave=False)
        update: Callable[[int], None] = self.bar.update
        return update

    def _plain(self, k: int) -> None:
        self.done += k
        print(f"\revaluating: {100 * self.done // self.total}%", end="", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            print("\r" + " " * 20 + "\r", end="", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
