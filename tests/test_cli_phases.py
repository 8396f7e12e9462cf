"""Progress of `fairalloc run` phase by phase: shown on a terminal only, and wiped when done."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fairalloc.cli._common import PROGRESS_MIN_BYTES, Phases


@contextlib.contextmanager
def _stderr_on_a_terminal() -> Iterator[list[str]]:
    """sys.stderr written to a pseudo-terminal; yields a list that receives what was shown."""
    reader, writer = os.openpty()
    old = sys.stderr
    sys.stderr = os.fdopen(writer, "w", encoding="utf-8", closefd=True)
    shown: list[str] = []
    try:
        yield shown
    finally:
        sys.stderr.close()  # then reading ends (EIO) once everything written has been read
        sys.stderr = old
        chunks = []
        while True:
            try:
                chunk = os.read(reader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(reader)
        shown.append(b"".join(chunks).decode("utf-8"))


def _big_file(tmp_path: Path) -> Path:
    data = tmp_path / "residents.csv"
    with data.open("wb") as fh:
        fh.truncate(PROGRESS_MIN_BYTES)  # sparse: the size is all that counts
    return data


def _run_phases(phase: Phases) -> None:
    with phase("reading residents.csv"):
        pass
    with phase("evaluating", 4) as tick:
        assert (tick is not None) == phase.enabled
        if tick is not None:
            tick(1)
            tick(3)
    with phase("writing"):
        pass


def test_each_phase_is_shown_on_a_terminal_and_wiped(tmp_path: Path) -> None:
    data = _big_file(tmp_path)
    with _stderr_on_a_terminal() as out:
        phase = Phases(data, enabled=True)
        assert phase.enabled
        _run_phases(phase)
    shown = out[0]
    for text in ("reading residents.csv…", "evaluating: 25%", "evaluating: 100%", "writing…"):
        assert text in shown
    assert shown.endswith("\r")  # the last line is wiped, the cursor back at the start


@pytest.mark.parametrize("why", ["piped", "disabled", "small file"])
def test_nothing_is_shown_off_a_terminal_or_when_not_asked(tmp_path: Path, why: str) -> None:
    data = _big_file(tmp_path) if why != "small file" else tmp_path / "small.csv"
    if why == "small file":
        data.write_text("id\n1\n", encoding="utf-8")
    if why == "piped":
        old, sys.stderr = sys.stderr, io.StringIO()
        try:
            phase = Phases(data, enabled=True)
            _run_phases(phase)
            assert sys.stderr.getvalue() == ""
        finally:
            sys.stderr = old
        assert not phase.enabled
        return
    with _stderr_on_a_terminal() as out:
        phase = Phases(data, enabled=why != "disabled")
        assert not phase.enabled
        _run_phases(phase)
    assert out == [""]
