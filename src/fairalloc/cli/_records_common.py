"""What the decision-log commands share: the log argument and the operator."""

from __future__ import annotations

import argparse

__all__ = ["add_log", "add_operator"]


def add_log(p: argparse.ArgumentParser) -> None:
    """The log: a file (SQLite) or a ``postgresql://`` URL."""
    p.add_argument("log", help="the decision log: a file path, sqlite:///path or postgresql://...")


def add_operator(p: argparse.ArgumentParser) -> None:
    """Who acts: recorded in every record appended."""
    p.add_argument("--operator", required=True, help="who records this (a name or role)")
