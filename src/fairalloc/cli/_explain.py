"""``fairalloc explain POLICY DATA``: why residents got their outcome, and what would change it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import fairalloc as fa
from fairalloc.cli._common import Progress, add_as_of, count, out_file, write_text
from fairalloc.errors import UsageError
from fairalloc.explain import LOCALES

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``explain`` command."""
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
    exp.add_argument(
        "--format",
        choices=("text", "md", "html", "json"),
        default="text",
        help="output format (default text)",
    )
    exp.add_argument("--contrast", metavar="OTHER", help="compare the resident with OTHER")
    exp.add_argument(
        "--audience",
        choices=("officer", "resident"),
        default="officer",
        help="who reads the contrast: officer (both residents' points, the default) or"
        " resident (a view for the resident: nothing of OTHER but the deciding key)",
    )
    exp.add_argument("--capacity", type=count(), help="units to allocate (default: the policy's)")
    exp.add_argument("--rounds", type=count(minimum=1), help="rounds to run, for a rotation")
    add_as_of(exp)
    exp.add_argument(
        "--target-rank",
        type=count(minimum=1),
        help="without an allocation: the rank counterfactuals aim at",
    )
    exp.add_argument(
        "--no-counterfactuals", action="store_true", help="skip the search for changes"
    )
    exp.add_argument(
        "--out",
        type=out_file(".txt", ".md", ".html", ".json", ".jsonl", ".csv"),
        metavar="FILE",
        help="write to FILE (.jsonl or .csv with --all)",
    )
    exp.set_defaults(handler=handle, inputs=("policy", "data"))


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    if args.all and (args.out is None or args.out.suffix.lower() not in (".jsonl", ".csv")):
        raise UsageError("--all writes a file: give --out FILE.jsonl or --out FILE.csv")
    policy = fa.load_policy(args.policy, as_of=args.as_of)
    spec = policy.allocation
    if spec is not None and spec.rotation is not None and args.rounds is None:
        raise UsageError("this policy serves a waiting list over rounds: give --rounds N")
    if args.all and spec is not None and (spec.matching or spec.rotation) is not None:
        raise UsageError(
            "--all exports evaluations and capacity allocations; for a matching or a"
            " rotation, explain residents one by one with --id"
        )
    population = fa.Population.from_csv(args.data, policy)
    with Progress(population.n, enabled=args.all) as tick:
        result = fa.evaluate(policy, population, as_of=args.as_of, progress=tick)
    source: Any = result
    if spec is not None and spec.matching is not None:
        source = fa.match(result)
    elif spec is not None and spec.rotation is not None:
        source = fa.simulate(policy, population, rounds=args.rounds, capacity=args.capacity)
    elif spec is not None:
        source = fa.allocate(result, capacity=args.capacity)
    if args.all:
        csv_out = args.out.suffix.lower() == ".csv"
        n = fa.export_explanations(source, args.out, format="csv" if csv_out else "jsonl")
        print(f"wrote the explanations of {n} residents to {args.out}")
        return 0
    parts = []
    for rid in args.ids:
        try:
            item: Any = (
                fa.contrast(source, rid, args.contrast, lang=args.lang, audience=args.audience)
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
            raise UsageError(str(e.args[0]) if e.args else str(e)) from None
        if args.format == "json" and len(args.ids) > 1:
            parts.append(item.to_json() + "\n")  # several: one JSON document per line
        else:
            parts.append(item.render(args.format, args.lang))
    text = ("\n" if args.format in ("text", "md") else "").join(parts)
    if args.out is not None:
        write_text(args.out, text)
        print(f"wrote {len(parts)} explanation(s) to {args.out}")
    else:
        sys.stdout.write(text)
    return 0
