"""Every snippet in README.md and docs/ runs as written.

Python blocks (```python) of one page run in order in one namespace, as a reader pasting them
into one session would; shell blocks (```sh) run each ``fairalloc ...`` line through the command
line. Both run in a scratch folder where ``examples/`` is the repository's examples, so paths
read as the pages write them. A line whose comment says ``# exits N`` must exit with N; every
other command must succeed. Lines that install packages or start servers are not run.
Synopses of commands with placeholders are ```text blocks, not ```sh.
"""

from __future__ import annotations

import re
import runpy
import shlex
from pathlib import Path

import pytest

from fairalloc.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
NOT_RUN = ("pip ", "python3 -m venv", "mkdocs ", "cd ", "git ", "bash ", "export ")


def _blocks(page: Path, language: str) -> list[str]:
    return [
        body for lang, body in FENCE.findall(page.read_text(encoding="utf-8")) if lang == language
    ]


def _pages(language: str) -> list[Path]:
    return [p for p in PAGES if _blocks(p, language)]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages("python"), ids=lambda p: str(p.relative_to(ROOT)))
def test_python_snippets_run(page: Path, scratch: Path) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("pandas")
    # One script of the page's blocks, in order: one session, as a reader would paste them.
    script = scratch / f"{page.stem}_snippets.py"
    script.write_text("\n\n".join(_blocks(page, "python")), encoding="utf-8")
    runpy.run_path(str(script), run_name="__snippet__")


def _commands(page: Path) -> list[tuple[str, int]]:
    found = []
    for block in _blocks(page, "sh"):
        for line in block.splitlines():
            line = line.strip()
            if not line.startswith("fairalloc ") or line.startswith(NOT_RUN):
                continue
            command, _, comment = line.partition(" #")
            status = re.search(r"exits (\d)", comment)
            found.append((command.strip(), int(status.group(1)) if status else 0))
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", [p for p in PAGES if _commands(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_shell_snippets_run(page: Path, scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command, expected in _commands(page):
        try:
            status = main(shlex.split(command)[1:])
        except SystemExit as e:
            status = int(e.code or 0)
        err = capsys.readouterr().err
        assert status == expected, f"{page.name}: `{command}` exited {status}:\n{err}"
        assert "Traceback" not in err


def test_every_page_with_code_is_checked() -> None:
    # A page whose snippets would all be skipped is a page nobody checks.
    assert ROOT / "README.md" in _pages("python")
    assert len(_pages("python")) >= 8
