"""What the commands share: argument types, output files, text tables and a progress bar.

Arguments are checked where argparse reads them, so that a bad value (a negative capacity, an
``--out`` file of an unknown kind, an output that would overwrite an input) is a usage error,
reported with exit status 2 before any work starts.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from fairalloc._escape import terminal_text
from fairalloc._io import check_not_input
from fairalloc._io import write_text as atomic_write_text
from fairalloc._text import number, text_table
from fairalloc.errors import OutputError, UsageError

__all__ = [
    "PROGRESS_MIN",
    "PROGRESS_MIN_BYTES",
    "Phases",
    "Progress",
    "add_as_of",
    "cell",
    "check_not_an_input",
    "count",
    "freeze_data",
    "out_file",
    "print_table",
    "title_of",
    "write_text",
]

#: Below this many residents a progress bar would only flicker.
PROGRESS_MIN = 200_000
#: Below this size a data file is read, evaluated and written too quickly to show each phase.
PROGRESS_MIN_BYTES = 8_000_000


def count(*, minimum: int = 0) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {minimum} or more, got {value}")
        return value

    parse.__name__ = "count"
    parse.doc_type = "whole number" if minimum == 0 else f"whole number ≥ {minimum}"  # type: ignore[attr-defined]
    return parse


def date(text: str) -> dt.date:
    """An argparse type: an ISO date such as ``2026-01-01``."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


date.doc_type = "date (`YYYY-MM-DD`)"  # type: ignore[attr-defined]


def add_as_of(parser: argparse.ArgumentParser) -> None:
    """The ``--as-of`` option every command that evaluates takes."""
    parser.add_argument(
        "--as-of", type=date, metavar="DATE", help="date whose parameter values apply (YYYY-MM-DD)"
    )


def out_file(*suffixes: str) -> Callable[[str], Path]:
    """An argparse type: a file to write, whose suffix is one of ``suffixes``."""

    def parse(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"cannot write {text!r}: name it {' or '.join(f'*{s}' for s in suffixes)}"
            )
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"cannot write {text!r}: it is a folder")
        return path

    parse.__name__ = "file"
    parse.doc_type = "path (" + ", ".join(f"`*{s}`" for s in suffixes) + ")"  # type: ignore[attr-defined]
    return parse


def check_not_an_input(out: Path | None, inputs: Iterable[Path | None]) -> None:
    """Refuse an output file that is one of the command's own inputs.

    Raises:
        UsageError: naming the file.
    """
    if out is None:
        return
    try:
        check_not_input(out, inputs)
    except OutputError:
        raise UsageError(
            f"--out {out} is an input of this command; write the result to another file"
        ) from None


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, atomically (see :func:`fairalloc._io.atomic_write`)."""
    atomic_write_text(path, text)


def title_of(meta: Any) -> str:
    """A policy's title in English (or its id), for the first line of a command's output."""
    title = meta.title
    return terminal_text(title if isinstance(title, str) else str(title.get("en", meta.id)))


def cell(v: object) -> str:
    """A value as a table cell: whole floats without decimals, others to six places at most."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return number(v)
    return terminal_text(v)


def print_table(rows: list[dict[str, object]], total: int, out: TextIO, *, more: str) -> None:
    """Rows as an aligned text table; ``more`` says how to see the rows not shown."""
    if not rows:
        print("(nobody is eligible)", file=out)
        return
    heads = [h for h in rows[0] if h != "tied"]
    for r in rows:
        heads += [h for h in r if h not in heads and h != "tied"]
    cells = [
        [cell(r.get(h, "")) + ("=" if h == "rank" and r.get("tied") else "") for h in heads]
        for r in rows
    ]
    for line in text_table(heads, cells):
        print(line, file=out)
    if total > len(rows):
        print(f"... {total - len(rows)} more{more}", file=out)
    if any(r.get("tied") for r in rows):
        print("= shares its rank: still tied after the whole tie-break chain", file=out)


class Progress:
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


class Phases:
    """The phase a long command is in, on stderr, on a terminal only.

    Each phase (reading, evaluating, ranking, allocating, writing) shows its name while it runs,
    with a percentage where its progress is known, and is wiped when it ends, so nothing of it
    stays in the output; piped or redirected, nothing is shown at all.
    """

    def __init__(self, data: Path, *, enabled: bool) -> None:
        try:
            size = data.stat().st_size
        except OSError:
            size = 0
        self.enabled = enabled and size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
        self._width = 0

    @contextlib.contextmanager
    def __call__(self, name: str, total: int = 0) -> Iterator[Callable[[int], None] | None]:
        """Show ``name`` while the block runs; with ``total``, yield a callback for progress."""
        if not self.enabled:
            yield None
            return
        done = 0

        def tick(k: int) -> None:
            nonlocal done
            done += k
            self._show(f"{name}: {100 * done // max(total, 1)}%")

        self._show(f"{name}…")
        try:
            yield tick if total else None
        finally:
            self._show("")

    def _show(self, line: str) -> None:
        pad = " " * max(self._width - len(line), 0)
        print(f"\r{line}{pad}\r{line}", end="", file=sys.stderr, flush=True)
        self._width = len(line)


def freeze_data(text: str) -> tuple[int | None, Path]:
    """An argparse type for the data of frozen lists: ``FILE`` or ``FREEZE=FILE``.

    ``FILE`` serves every frozen list not named; ``FREEZE=FILE`` the list frozen at that record
    number. Returns ``(record number or None, path)``.
    """
    seq, sep, path = text.partition("=")
    if sep and seq.isdigit() and path:
        return int(seq), Path(path)
    return None, Path(text)
