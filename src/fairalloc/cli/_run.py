"""``fairalloc run POLICY DATA``: rank residents and, with an allocation section, allocate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal, TextIO

import fairalloc as fa
from fairalloc.cli._common import (
    Phases,
    add_as_of,
    cell,
    count,
    out_file,
    print_table,
    title_of,
    write_text,
)
from fairalloc.errors import UsageError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` command."""
    run = sub.add_parser("run", help="rank residents under a policy")
    run.add_argument("policy", type=Path, help="policy file (.yaml, .json, .toml)")
    run.add_argument("data", type=Path, help="residents (.csv or .parquet)")
    run.add_argument(
        "--out",
        type=out_file(".csv", ".json", ".parquet"),
        metavar="FILE",
        help="write every resident's outcome to FILE (.csv, .json or .parquet; a matching: .json)",
    )
    run.add_argument(
        "--no-escape-formulas",
        action="store_true",
        help="write CSV ids as they are (for programs; spreadsheets would run `=...` as formulas)",
    )
    run.add_argument(
        "--top", type=count(), default=20, help="rows to print (default 20; 0 for none)"
    )
    add_as_of(run)
    run.add_argument("--capacity", type=count(), help="units to allocate (default: the policy's)")
    run.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    where = run.add_mutually_exclusive_group()
    where.add_argument(
        "--dask",
        action="store_true",
        help="allocate on a local Dask cluster (DATA: a Parquet dataset; extra fairalloc[dask])",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="allocate on the Dask cluster at ADDRESS (e.g. tcp://10.0.0.5:8786)",
    )
    run.add_argument(
        "--workers", type=count(), default=2, help="worker processes of --dask (default 2)"
    )
    cluster = run.add_argument_group("on a cluster (with --dask or --scheduler)")
    for flag, kind, metavar, text in (
        (
            "--explanations",
            out_file(".jsonl", ".csv"),
            "FOLDER",
            "write every resident's explanation facts to FOLDER (.jsonl or .csv parts, as"
            " `explain --all` writes them on one machine)",
        ),
        (
            "--flip",
            out_file(".json", ".md"),
            "FILE",
            "write the flip audit of the protected attributes (.json or .md), as `fairalloc"
            " audit` makes it on one machine",
        ),
        (
            "--state",
            Path,
            "FILE",
            "with a rotation: the state the last round left (its --state-out); none before round 1",
        ),
        (
            "--state-out",
            out_file(".json"),
            "FILE",
            "with a rotation: run the next round, and keep the state it leaves in FILE (.json)",
        ),
    ):
        cluster.add_argument(flag, type=kind, metavar=metavar, help=text)
    run.set_defaults(handler=handle, inputs=("policy", "data", "state"))


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    if args.dask or args.scheduler:
        return _on_cluster(args)
    if args.explanations is not None:
        raise UsageError(
            "--explanations is for a cluster (--dask or --scheduler); on one machine use"
            " `fairalloc explain POLICY DATA --all --out FILE`"
        )
    if args.flip is not None:
        raise UsageError(
            "--flip is for a cluster (--dask or --scheduler); on one machine `fairalloc audit`"
            " makes the whole fairness audit, the flip audit included"
        )
    if args.state is not None or args.state_out is not None:
        raise UsageError(
            "--state and --state-out are for a rotation round on a cluster (--dask or"
            " --scheduler); on one machine `fairalloc round` runs and records a round, and"
            " `fairalloc simulate` runs several"
        )
    policy = fa.load_policy(args.policy, as_of=args.as_of)
    spec = policy.allocation
    matching = spec is not None and spec.matching is not None
    if matching and args.out is not None and args.out.suffix.lower() != ".json":
        raise UsageError(f"cannot write `{args.out}`: a matching is written as .json")
    phase = Phases(args.data, enabled=not args.no_progress)
    with phase(f"reading {args.data.name}"):
        population = fa.Population.load(args.data, policy)
    with phase("evaluating", population.n) as tick:
        result = fa.evaluate(policy, population, as_of=args.as_of, progress=tick)
    ranking = result.ranking
    if not matching:
        with phase("ranking"):
            ranking.order  # noqa: B018 - worked out here, where its time is shown
    out = sys.stdout
    _summary(result, out)
    if matching:
        with phase("matching"):
            matched = fa.match(result)
        _print_matching(matched, args.top, out)
        if args.out is not None:
            with phase("writing"):
                write_text(args.out, matched.to_json(indent=1) + "\n")
            print(f"wrote the matching of {result.n} residents to {args.out}", file=out)
        return 0
    if spec is not None and spec.rotation is not None:
        print(
            "this policy serves a waiting list over rounds: `fairalloc simulate` runs them;"
            " the ranking of the first round follows",
            file=out,
        )
    if spec is not None and spec.rotation is None:
        with phase("allocating"):
            allocation = fa.allocate(result, capacity=args.capacity)
        _print_allocation(allocation, args.top, out, written=args.out is not None)
        if args.out is not None:
            with phase("writing"):
                _write(allocation, args.out, escape=not args.no_escape_formulas)
            print(f"wrote the outcomes of all {result.n} residents to {args.out}", file=out)
        return 0
    if args.top > 0:
        rows = [ranking.row(i) for i in range(min(args.top, len(ranking)))]
        print_table(rows, len(ranking), out, more=_more(args.out))
    if args.out is not None:
        with phase("writing"):
            _write(ranking, args.out, escape=not args.no_escape_formulas)
        print(f"wrote {len(ranking)} ranked residents to {args.out}", file=out)
    return 0


def _more(out: Path | None) -> str:
    return "" if out is not None else " (use --out to write all)"


def _write(result: fa.Ranking | fa.Allocation, path: Path, *, escape: bool) -> None:
    suffix = path.suffix.lower()
    if suffix == ".json":
        write_text(path, result.to_json(indent=1) + "\n")
    elif suffix == ".parquet":
        result.to_parquet(path)
    else:
        result.to_csv(path, escape_formulas=escape)


def _summary(result: fa.Evaluation, out: TextIO) -> None:
    cp = result.policy
    meta = cp.policy.policy
    print(f"{title_of(meta)} ({meta.id} v{meta.version})", file=out)
    print(f"{result.n} residents, {int(result.eligible.sum())} eligible", file=out)
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
        print(f"lottery seed: {cp.lottery_seed} ({cp.draw})", file=out)


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
    rows = [r for r in result.to_dicts() if r["eligible"]][:top]
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
        print_table(table, int(s["eligible"]), out, more=" (use --out to write all)")


def _print_allocation(allocation: fa.Allocation, top: int, out: TextIO, *, written: bool) -> None:
    print(
        f"allocation: {allocation.mechanism}, {allocation.capacity} units,"
        f" {allocation.n_served} served",
        file=out,
    )
    for c in allocation.cutoffs():
        score = "" if c.score is None else f", cut-off score {cell(c.score)} ({c.last_id})"
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
        more = "" if written else " (use --out to write all)"
        print_table(rows, len(allocation.order), out, more=more)


def _on_cluster(args: argparse.Namespace) -> int:
    """``--dask`` / ``--scheduler``: the allocation decided over a Parquet dataset."""
    from fairalloc._optional import require
    from fairalloc.cluster import allocate_on_cluster

    suffix = args.out.suffix.lower() if args.out is not None else None
    if suffix not in (None, ".json", ".parquet"):
        raise UsageError(
            f"cannot write `{args.out}`: a cluster allocation is written as .json (the summary"
            " and the served) or .parquet (a folder of parts: every resident's outcome)"
        )
    distributed = require("distributed", extra="dask", feature="fairalloc run --dask")
    dd = require("dask.dataframe", extra="dask", feature="fairalloc run --dask")
    policy = fa.load_policy(args.policy, as_of=args.as_of)
    spec = policy.allocation
    rotation = spec is not None and spec.rotation is not None
    if rotation and args.state_out is None:
        raise UsageError(
            "this policy serves a waiting list over rounds: give --state-out FILE to run the"
            " next round and keep the state it leaves (and --state FILE after round 1)"
        )
    if not rotation and (args.state is not None or args.state_out is not None):
        raise UsageError("--state and --state-out are for a policy with `allocation.rotation`")
    if rotation and args.flip is not None:
        raise UsageError("--flip audits an allocation; a rotation round is not audited here")
    if rotation and suffix == ".parquet":
        raise UsageError(
            f"cannot write `{args.out}`: a rotation round is written as .json (who is served,"
            " the counts and the digest of the state it leaves)"
        )
    state = (
        fa.RotationState.from_json(args.state.read_text(encoding="utf-8"))
        if args.state is not None
        else None
    )
    data = dd.read_parquet(str(args.data))
    out = sys.stdout
    if args.scheduler:
        client = distributed.Client(args.scheduler)
        cluster = None
    else:
        cluster = distributed.LocalCluster(
            n_workers=args.workers, threads_per_worker=1, dashboard_address=":0"
        )
        client = distributed.Client(cluster)
    try:
        if rotation:
            return _round_on_cluster(args, policy, data, state, client)
        got = allocate_on_cluster(
            policy, data, capacity=args.capacity, client=client, as_of=args.as_of
        )
        print(
            f"{got.residents:,} residents in {got.partitions} partitions,"
            f" {got.eligible:,} eligible; {len(got.served_ids()):,} served",
            file=out,
        )
        cats = got.categories()
        for i in got.served_ids()[: args.top]:
            print(f"  {cell(i)}  {cell(cats[i])}", file=out)
        if suffix == ".parquet":
            parts = got.to_parquet(args.out)
            print(f"wrote every resident's outcome to {args.out} ({len(parts)} parts)", file=out)
        elif suffix == ".json":
            write_text(args.out, got.to_json(indent=1) + "\n")
            print(f"wrote the allocation to {args.out}", file=out)
        if args.flip is not None:
            flips = got.flip_audit()
            text = (
                flips.to_markdown()
                if args.flip.suffix.lower() == ".md"
                else json.dumps(flips.to_dict(), ensure_ascii=False, indent=1) + "\n"
            )
            write_text(args.flip, text)
            verdict = (
                "no protected attribute changes an outcome unjustified"
                if flips.ok
                else (
                    "a protected attribute changes outcomes through a part without a justified use"
                )
            )
            print(f"flip audit: {verdict}; written to {args.flip}", file=out)
        if args.explanations is not None:
            fmt: Literal["jsonl", "csv"] = (
                "csv" if args.explanations.suffix.lower() == ".csv" else "jsonl"
            )
            parts = got.export_explanations(
                args.explanations, format=fmt, escape_formulas=not args.no_escape_formulas
            )
            print(
                f"wrote every resident's explanation to {args.explanations} ({len(parts)} parts)",
                file=out,
            )
    finally:
        cluster_close(client, cluster)
    return 0


def cluster_close(client: Any, cluster: Any) -> None:
    """Close the client, and the local cluster if one was started."""
    client.close()
    if cluster is not None:
        cluster.close()


def _round_on_cluster(
    args: argparse.Namespace,
    policy: fa.Policy,
    data: Any,
    state: fa.RotationState | None,
    client: Any,
) -> int:
    """The next round of a rotation over a Parquet dataset; the state kept in --state-out."""
    from fairalloc.cluster import run_round_on_cluster

    rnd = run_round_on_cluster(
        policy, data, state, capacity=args.capacity, client=client, as_of=args.as_of
    )
    out = sys.stdout
    print(
        f"round {rnd.round}: {len(rnd.served):,} served of {rnd.eligible:,} eligible"
        f" ({rnd.present:,} present in {rnd.partitions} partitions)",
        file=out,
    )
    for i in rnd.served[: args.top]:
        print(f"  {cell(i)}", file=out)
    write_text(args.state_out, rnd.state.to_json() + "\n")
    print(f"state kept in {args.state_out} (digest {rnd.state.digest()})", file=out)
    if args.out is not None:
        write_text(args.out, json.dumps(rnd.to_dict(), ensure_ascii=False, indent=1) + "\n")
        print(f"wrote the round to {args.out}", file=out)
    return 0
