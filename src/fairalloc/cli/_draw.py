"""``fairalloc draw LOG --freeze N``: record the lottery seed, after the freeze."""

from __future__ import annotations

import argparse

from fairalloc.cli._common import count
from fairalloc.cli._records_common import add_log, add_operator
from fairalloc.records import DecisionLog

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``draw`` command."""
    p = sub.add_parser("draw", help="record a lottery seed drawn after a freeze")
    add_log(p)
    p.add_argument("--freeze", type=count(), required=True, help="the freeze record")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--seed", help="the seed drawn in public")
    how.add_argument(
        "--public-randomness",
        help="a value published after the freeze (the seed is derived from it and the list)",
    )
    p.add_argument("--how", required=True, help="how it was drawn: source, witnesses, time")
    add_operator(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the command."""
    with DecisionLog.open(args.log) as log:
        rec = log.draw_seed(
            args.freeze,
            value=args.seed,
            public_randomness=args.public_randomness,
            how=args.how,
            operator=args.operator,
        )
    print(
        f"record {rec.seq}: seed {rec.body['seed']} ({rec.body['method']}) for freeze {args.freeze}"
    )
    return 0
