"""The ``fairalloc`` command.

Commands:
    run POLICY DATA       rank the residents in DATA under POLICY (``--out`` CSV or JSON)
    simulate POLICY DATA  serve POLICY's rotation to DATA for ``--rounds`` rounds (``--out`` CSV
                          or JSON)
    validate POLICY...    check policy files; every problem as ``file:line:col: CODE message``
    check POLICY...       prove which protected attributes each policy reads, and why
    audit POLICY DATA     fairness audit on a population (Markdown, HTML or JSON report)
    explain POLICY DATA   why residents got their outcome, what would change it (en, zh-CN)
    publish criteria POLICY   the selection criteria as a document (§2.2.1; zh-CN, en)
    report POLICY         a period's statistics for publication (§2.2.2), exposing no resident
    diff OLD NEW [DATA]   what changed between two policies and, with DATA, for whom
    sweep POLICY DATA     outcomes and group statistics over a grid of parameter values
    test CASES...         run named test cases of policies, expected against actual
    schema                print the JSON Schema of policy files
    examples DIR          copy the bundled example policies and residents to DIR
    log ACTION LOG        decision log: register a policy, show, head, export, retention, erase
    freeze LOG POLICY DATA  freeze the applicant list before any draw
    draw LOG              record the lottery seed drawn after a freeze
    decide LOG POLICY DATA  allocate with the recorded seed and record the decision
    verify LOG            check a log or its export; re-run its decisions (exit 1 on mismatch)
    receipt ACTION        make a resident's receipt, or check one against a published head
    round LOG POLICY DATA run the next round of a rotation from the log's state, and record it
    review ACTION LOG ... open a review case on a recorded decision, or answer one
    cases LOG             list review cases and their states (``--overdue``)
    serve CONFIG          serve policies over HTTP (JSON, bearer tokens; the ``serve`` extra)

Exit status: 0 success; 1 when the policy or the data is at fault, a file cannot be read, or a
check found a problem (messages on stderr); 2 on wrong usage. A user's mistake is reported as a
message, never as a traceback. Each command is a module of this package (``_run``,
``_explain``, ...) holding its arguments and a sequence of public API calls: the command line
has no logic of its own.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fairalloc import __version__
from fairalloc.cli._common import check_not_an_input
from fairalloc.errors import ArgumentError, FairallocError, UsageError

__all__ = ["EXIT_FAULT", "EXIT_OK", "EXIT_USAGE", "main"]

#: The command did what was asked (for ``check``, ``audit`` and ``diff``: found nothing).
EXIT_OK = 0
#: The policy or the data is at fault, a file cannot be read, or a check found a problem.
EXIT_FAULT = 1
#: The command was called wrongly (argparse's own status for usage errors).
EXIT_USAGE = 2

#: Every command's module, in the order ``fairalloc --help`` lists them (loaded when the
#: parser is built, so that ``fairalloc --version`` loads none of them).
COMMANDS = (
    "_run",
    "_simulate",
    "_validate",
    "_check",
    "_audit",
    "_diff",
    "_sweep",
    "_explain",
    "_publish",
    "_report",
    "_test",
    "_schema",
    "_examples",
    "_log",
    "_freeze",
    "_draw",
    "_decide",
    "_verify",
    "_receipt",
    "_round",
    "_review",
    "_cases",
    "_serve",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Usage errors that argparse finds end the process with status 2 (``SystemExit``), as
    argparse does.
    """
    if list(sys.argv[1:] if argv is None else argv) == ["--version"]:
        print(f"fairalloc {__version__}")
        return EXIT_OK
    given = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(given[0] if given else None)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        check_not_an_input(
            getattr(args, "out", None), (getattr(args, name) for name in args.inputs)
        )
        return int(args.handler(args))
    except (UsageError, ArgumentError) as e:  # an option value the library cannot use
        print(f"fairalloc {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except FairallocError as e:
        notes = "".join(f"\n  {n}" for n in getattr(e, "__notes__", ()))
        print(f"{e}{notes}", file=sys.stderr)
        return EXIT_FAULT
    except OSError as e:
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAULT
    except UnicodeDecodeError as e:
        print(
            f"error: the data is not UTF-8 text (byte {e.start}); save it as UTF-8", file=sys.stderr
        )
        return EXIT_FAULT


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; for a known ``command``, with that command's module alone.

    Loading one command's module (not every command's, and what each imports) keeps the start
    of ``fairalloc run`` short; help and unknown commands get the full parser.
    """
    module = f"_{command.replace('-', '_')}" if command else None
    if module in COMMANDS:
        p, sub = _parser_of((module,))
        if command in sub.choices:
            return p
    return _parser_of(COMMANDS)[0]


def _parser_of(
    modules: Sequence[str],
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    p = argparse.ArgumentParser(
        prog="fairalloc",
        description="Allocation policies as data: validate, evaluate and rank.",
    )
    p.add_argument("--version", action="version", version=f"fairalloc {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    p.set_defaults(inputs=())
    return p, sub


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
