"""``fairalloc examples DIR``: copy the bundled example policies and residents to DIR."""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib import resources
from pathlib import Path

import fairalloc
from fairalloc._io import write_bytes
from fairalloc.errors import UsageError

__all__ = ["bundled_examples", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``examples`` command."""
    ex = sub.add_parser(
        "examples", help="copy the bundled example policies and residents to a folder"
    )
    ex.add_argument("folder", type=Path, help="where to copy them (created if missing)")
    ex.set_defaults(handler=handle)


def bundled_examples() -> Path:
    """The folder of the bundled examples: inside the installed package, or the source tree's."""
    installed = resources.files(fairalloc) / "examples"
    if installed.is_dir():
        return Path(str(installed))
    return Path(fairalloc.__file__).resolve().parents[2] / "examples"  # an editable checkout


def handle(args: argparse.Namespace) -> int:
    """Run the command."""
    source = bundled_examples()
    examples = sorted(p for p in source.iterdir() if (p / "policy.yaml").is_file())
    clashes = [str(args.folder / p.name) for p in examples if (args.folder / p.name).exists()]
    if clashes:
        raise UsageError(f"not overwriting {', '.join(clashes)}: choose an empty folder")
    for example in examples:
        shutil.copytree(
            example,
            args.folder / example.name,
            ignore=shutil.ignore_patterns("__pycache__"),
            copy_function=_copy_file,
        )
        print(f"{args.folder / example.name}", file=sys.stdout)
    return 0


def _copy_file(source: str, target: str) -> str:
    """Copy one file whole or not at all (see :func:`fairalloc._io.atomic_write`)."""
    write_bytes(target, Path(source).read_bytes())
    return target
