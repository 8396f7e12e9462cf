"""The documentation: generated pages current, links whole, the site builds, examples true."""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import yaml

from fairalloc import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- generated pages -----------------------------------------------------------------------------


def test_generated_pages_are_current(tmp_path: Path) -> None:
    gen = _generator()
    written = gen.write(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == {
        "reference/policy-file.md",
        "reference/cli.md",
        "reference/examples.md",
    }
    for path in written:
        rel = path.relative_to(tmp_path)
        committed = DOCS / rel
        assert committed.exists(), f"docs/{rel} is missing: run python docs/gen_reference.py"
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"docs/{rel} is out of date: run python docs/gen_reference.py"
        )
    assert gen.stale() == []


def test_generated_pages_cover_every_field_and_command() -> None:
    import fairalloc as fa

    gen = _generator()
    schema = fa.json_schema()
    policy_page = gen.render_policy_file(schema)
    for name, node in schema["$defs"].items():
        assert f"\n## {name}\n" in policy_page
        for field in node.get("properties", {}):
            assert f"`{field}`" in policy_page.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
    for field in schema["properties"]:
        assert f"| `{field}` |" in policy_page
    cli_page = gen.render_cli(cli._parser(), cli.__doc__ or "")
    for command in ("run", "simulate", "validate", "check", "audit", "schema"):
        assert f"## `fairalloc {command}`" in cli_page
    assert "| `--format {md,html,json}` | choice | `md` |" in cli_page
    assert "| `--rounds ROUNDS` | whole number ≥ 1 | **required** |" in cli_page


def test_the_generator_reports_stale_pages(tmp_path: Path) -> None:
    gen = _generator()
    gen.write(tmp_path)
    (tmp_path / "reference" / "cli.md").write_text("old\n", encoding="utf-8")
    assert gen.stale(tmp_path) == ["reference/cli.md"]


def test_site_hooks_rewrite_example_links_and_docstring_roles() -> None:
    gen = _generator()

    def page(src_uri: str) -> SimpleNamespace:
        return SimpleNamespace(file=SimpleNamespace(src_uri=src_uri))

    text = "See [the policy](../examples/elderly-care/policy.yaml) and [x](../examples/y/)."
    assert gen.on_page_markdown(text, page=page("semantics.md")) == (
        "See [the policy](reference/examples.md#elderly-care) and [x](reference/examples.md#y)."
    )
    deeper = "[a](../../examples/facility-slots/) [b](../examples/z.md)"
    assert gen.on_page_markdown(deeper, page=page("notebooks/one.md")) == (
        "[a](../reference/examples.md#facility-slots) [b](../examples/z.md)"
    )
    html = (
        "see :func:<code>fairalloc.evaluate</code>, :class:<code>~fairalloc.Evaluation</code>"
        " and :meth:<code>Population.load &lt;fairalloc.Population.load&gt;</code>"
    )
    assert gen.on_page_content(html) == (
        "see <code>fairalloc.evaluate</code>, <code>Evaluation</code>"
        " and <code>Population.load</code>"
    )


# -- links and navigation ------------------------------------------------------------------------


def _slug(heading: str) -> str:
    text = re.sub(r"`|\*|\[|\]\([^)]*\)", "", heading).strip().lower()
    return re.sub(r"[^a-z0-9_ -]", "", text).strip().replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def _links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


@pytest.mark.parametrize("page", [*PAGES, ROOT / "README.md"], ids=lambda p: p.name)
def test_relative_links_point_to_existing_files(page: Path) -> None:
    for target in _links(page):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.relative_to(ROOT)}: broken link {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{page.relative_to(ROOT)}: no anchor {target}"


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


def test_every_page_is_in_the_navigation_and_every_entry_exists() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = _nav_pages(config["nav"])
    assert len(listed) == len(set(listed))
    for rel in listed:
        assert (DOCS / rel).exists(), f"mkdocs.yml lists {rel}, which does not exist"
    missing = [p.relative_to(DOCS).as_posix() for p in PAGES]
    missing = [p for p in missing if p not in listed]
    assert not missing, f"add to the nav of mkdocs.yml: {missing}"


# -- the site ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    build = ["build", "--strict", "--quiet", "--config-file", "mkdocs.yml", "--site-dir", str(site)]
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", *build],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cli_page = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "fairalloc audit" in cli_page
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("fairalloc.evaluate", "fairalloc.Evaluation", "fairalloc.plot.score_breakdown"):
        assert f'id="{name}"' in api, name
    assert not re.search(r":(func|class|meth|data):<code>", api)  # roles shown as plain code


# -- getting started says what the code does ----------------------------------------------------

GETTING_STARTED = DOCS / "getting-started.md"


def _command_outputs() -> list[tuple[str, str]]:
    """Each one-command ``sh`` block that a ``text`` block (its output) follows."""
    text = GETTING_STARTED.read_text(encoding="utf-8")
    pairs = re.findall(r"```sh\n(fairalloc [^\n]+)\n```\n\n```text\n(.*?)```", text, re.DOTALL)
    return [(cmd, out) for cmd, out in pairs]


def test_getting_started_shows_what_the_commands_print(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    pairs = _command_outputs()
    assert [cmd.split()[1] for cmd, _ in pairs] == ["run", "validate"]
    for command, shown in pairs:
        capsys.readouterr()
        assert cli.main(shlex.split(command)[1:]) == 0
        printed = capsys.readouterr().out
        lines = [line.rstrip() for line in printed.splitlines()]
        assert lines == [line.rstrip() for line in shown.splitlines()], command


def test_getting_started_python_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    text = GETTING_STARTED.read_text(encoding="utf-8")
    blocks = re.findall(r"```pycon\n(.*?)```", text, re.DOTALL)
    assert len(blocks) >= 5
    # Run where the examples are found and where figures may be saved.
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    test = doctest.DocTestParser().get_doctest(
        "\n".join(blocks), {}, "getting-started.md", str(GETTING_STARTED), 0
    )
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 20
    assert result.failed == 0
    assert (tmp_path / "rates.png").stat().st_size > 0
