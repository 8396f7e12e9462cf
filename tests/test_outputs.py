"""Outputs are safe by construction and writes are atomic.

Hostile ids, titles and level names go through every renderer (text, Markdown, HTML, CSV,
Jupyter tables) and must come out inert: no live HTML, no link, no formula a spreadsheet would
run, no terminal escape sequence. Every file is written whole or not at all, and a command does
not write over its own inputs.
"""

from __future__ import annotations

import csv
import io
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fairalloc as fa
from fairalloc._escape import csv_text, html_text, markdown_code, markdown_text, terminal_text
from fairalloc._io import atomic_write, check_not_input, write_table
from fairalloc.cli import main
from fairalloc.errors import OutputError

HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    "<javascript:alert(1)>",
    '=HYPERLINK("http://evil","x")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3",
    "\tTAB",
    "\rCR",
    "R\x1b[31mred\x1b[0m",
    "R\x1b]0;title\x07",
    "**bold** _em_ `code`",
    "| pipe |",
    "# heading",
    "a\u202eb",
]

POLICY: dict[str, Any] = {
    "policy": {"id": "p", "version": "1", "title": "<script>alert('title')</script>"},
    "attributes": {
        "rid": {"type": "str", "role": "id"},
        "age": {"type": "int", "min": 0, "max": 130},
        "kind": {"type": "category", "levels": ["x", "y", "plain"], "title": HOSTILE[1]},
        "sex": {"type": "category", "levels": ["f", "m"], "protected": True, "ground": "sex"},
    },
    "rules": {
        "eligibility": [
            {"id": "old", "when": "age >= 60", "title": HOSTILE[2], "source": HOSTILE[3]}
        ],
        "priority": [
            {"id": "p1", "when": "kind == 'y'", "points": 5, "title": HOSTILE[4] + HOSTILE[10]}
        ],
    },
    "ranking": {"tie_break": [{"lottery": {"seed": "published"}}]},
    "allocation": {"capacity": 4},
}


@pytest.fixture(scope="module")
def hostile() -> tuple[fa.Policy, fa.Population]:
    policy = fa.Policy.model_validate(POLICY)
    n = len(HOSTILE)
    safe = [re.sub(r"[\x00-\x1f\u202e]", "", h).strip() for h in HOSTILE]  # ids refuse controls
    data = {
        "rid": [f"{s}#{i}" for i, s in enumerate(safe)],
        "age": [60 + i for i in range(n)],
        "kind": [["x", "y", "plain"][i % 3] for i in range(n)],
        "sex": ["f" if i % 2 else "m" for i in range(n)],
    }
    return policy, fa.Population.load(data, policy)


# -- the escaping functions ------------------------------------------------------------------------

LIVE_HTML = re.compile(r"<\s*(script|img|a|iframe|svg|b)\b|javascript:\S*\)", re.IGNORECASE)


@pytest.mark.parametrize("text", HOSTILE)
def test_html_text_leaves_no_markup(text: str) -> None:
    out = html_text(text)
    assert "<" not in out
    assert ">" not in out
    assert '"' not in out
    assert "\x1b" not in out


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_text_leaves_no_markup(text: str) -> None:
    out = markdown_text(text)
    assert "<" not in out
    assert "\n" not in out
    assert "\x1b" not in out
    # every character that could start inline markup is escaped
    for ch in "[]*`|":
        assert re.search(rf"(?<!\\){re.escape(ch)}", out) is None, (text, out)
    assert not re.match(r"\s*([#+\-=]\s|>)", out)


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_text_renders_as_its_characters(text: str) -> None:
    markdown = pytest.importorskip("markdown")
    page = markdown.markdown(f"| a |\n|---|\n| {markdown_text(text)} |", extensions=["tables"])
    _inert_html(page)
    assert page.count("<td>") == 1


def test_markdown_code_keeps_backticks_inside() -> None:
    assert markdown_code("a``b") == "``` a``b ```"
    assert markdown_code("") == "` `"


@pytest.mark.parametrize("text", HOSTILE)
def test_terminal_text_has_no_control_characters(text: str) -> None:
    out = terminal_text(text)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u202e]", out)


@pytest.mark.parametrize("text", ["=1", "+1", "-1", "@a", "\tx", "\rx"])
def test_csv_text_neutralises_formula_starts(text: str) -> None:
    assert csv_text(text) == "'" + text
    assert csv_text("R1=2") == "R1=2"


# -- every renderer ---------------------------------------------------------------------------


def _inert_markdown(md: str) -> None:
    """No raw HTML tag, no link or autolink, no escape sequence in Markdown output.

    Fenced code blocks are literal in Markdown; their fence is longer than any backtick run.
    """
    assert "\x1b" not in md
    md = re.sub(r"^(`{3,})[^\n]*\n.*?^\1$", "", md, flags=re.S | re.M)
    assert not re.search(r"<\s*(script|img|b)\b", md, re.IGNORECASE), md
    assert not re.search(r"(?<!\\)\]\((?!#)", md), md  # no [text](target)
    assert not re.search(r"<javascript:", md, re.IGNORECASE)
    assert "\x1b" not in md


def _inert_html(page: str) -> None:
    assert not re.search(r"<\s*(script|img|iframe)\b", page, re.IGNORECASE), page
    assert "<b>" not in page
    assert not re.search(r"href\s*=", page, re.IGNORECASE)
    assert "\x1b" not in page


def test_explanations_in_every_format(hostile: tuple[fa.Policy, fa.Population]) -> None:
    policy, pop = hostile
    alloc = fa.allocate(fa.evaluate(policy, pop))
    for rid in pop.ids[:6]:
        e = alloc.explain(str(rid))
        for lang in ("en", "zh-CN"):
            text = e.to_text(lang)
            assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text)
            _inert_markdown(e.to_markdown(lang))
            _inert_html(e.to_html(lang, fragment=False))


def test_terminal_output_of_explanations_shows_escapes(tmp_path: Path) -> None:
    policy = fa.Policy.model_validate(
        {**POLICY, "policy": {**POLICY["policy"], "title": "T\x1b[2J\x1b]0;pwn\x07"}}
    )
    pop = fa.Population.load({"rid": ["a"], "age": [70], "kind": ["plain"], "sex": ["f"]}, policy)
    text = fa.evaluate(policy, pop).explain("a").to_text()
    assert "\x1b" not in text
    assert "\\x1b[2J" in text


def test_audit_report_markdown_and_html(hostile: tuple[fa.Policy, fa.Population]) -> None:
    policy, pop = hostile
    from fairalloc.audit import audit

    report = audit(policy, pop)
    _inert_markdown(report.to_markdown())
    _inert_html(report.to_html())
    assert "&lt;script&gt;" in report.to_html()


def test_comparison_report(hostile: tuple[fa.Policy, fa.Population]) -> None:
    policy, pop = hostile
    changed = {
        **POLICY,
        "rules": {**POLICY["rules"], "priority": [{**POLICY["rules"]["priority"][0], "points": 9}]},
    }
    other = fa.Policy.model_validate(changed)
    comparison = fa.compare(policy, other, pop)
    _inert_markdown(comparison.to_markdown())
    _inert_html(comparison._repr_html_())
    assert "\x1b" not in comparison.to_text()


def test_jupyter_tables(hostile: tuple[fa.Policy, fa.Population]) -> None:
    policy, pop = hostile
    ev = fa.evaluate(policy, pop)
    for page in (pop._repr_html_(), ev._repr_html_(), fa.allocate(ev)._repr_html_()):
        _inert_html(page)


def test_plot_titles_read_no_mathematics() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import fairalloc.plot as plot

    policy = fa.Policy.model_validate(POLICY)
    data = {"rid": ["$\\frac{$", "b"], "age": [70, 80], "kind": ["x", "y"], "sex": ["f", "m"]}
    ev = fa.evaluate(policy, fa.Population.load(data, policy))
    fig = plot.score_breakdown(ev, "$\\frac{$")
    fig.canvas.draw()  # an unescaped `$\frac{$` is a mathtext error here
    assert fig.axes[0].get_title(loc="left").startswith("\\$\\frac{\\$")


# -- CSV exports ----------------------------------------------------------------------------


def _cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_csv_exports_neutralise_formulas_and_keep_numbers(
    tmp_path: Path, hostile: tuple[fa.Policy, fa.Population]
) -> None:
    policy, pop = hostile
    alloc = fa.allocate(fa.evaluate(policy, pop))
    formula = re.compile(r"^[=+\-@\t\r]")
    for write in (alloc.to_csv, alloc.evaluation.ranking.to_csv):
        path = tmp_path / "out.csv"
        write(path)
        rows = _cells(path)
        ids = [r[rows[0].index("id")] for r in rows[1:]]
        assert not [i for i in ids if formula.match(i)]
        assert '\'=HYPERLINK("http://evil","x")#4' in ids
        assert "'@SUM(1)#6" in ids
        assert "'-2+3#7" in ids
        write(path, escape_formulas=False)
        raw = [r[rows[0].index("id")] for r in _cells(path)[1:]]
        assert '=HYPERLINK("http://evil","x")#4' in raw
    with_negative = {"id": ["=x"], "delta": np.array([-1.5])}
    write_table(tmp_path / "n.csv", with_negative, text_columns=("id",))
    assert (tmp_path / "n.csv").read_text() == "id,delta\n'=x,-1.5\n"


def test_explanation_export_and_sweep_csv(
    tmp_path: Path, hostile: tuple[fa.Policy, fa.Population]
) -> None:
    policy, pop = hostile
    alloc = fa.allocate(fa.evaluate(policy, pop))
    path = tmp_path / "e.csv"
    fa.export_explanations(alloc, path, format="csv")
    ids = [r[0] for r in _cells(path)[1:]]
    assert "'@SUM(1)#6" in ids
    fa.export_explanations(alloc, path, format="csv", escape_formulas=False)
    assert "@SUM(1)#6" in [r[0] for r in _cells(path)[1:]]


def test_exports_match_their_records(tmp_path: Path) -> None:
    """The Arrow-built CSV says what to_dicts says, cell for cell, as Python's csv writes it."""
    policy = fa.load_policy(Path("examples/elderly-care/policy.yaml"))
    ev = fa.evaluate(policy, "examples/elderly-care/residents.csv")
    from tests.test_allocation import make

    drawn = make({"capacity": 5, "mechanism": "lottery", "lottery": {"seed": "2026-draw"}})
    rng = np.random.default_rng(3)
    people = {"id": [f"=r{i}" for i in range(40)], "need": rng.integers(0, 3, 40).tolist()}
    lottery = fa.allocate(fa.evaluate(drawn, _fill(drawn, people)))
    for alloc in (fa.allocate(ev, capacity=30), lottery):
        path = tmp_path / "a.csv"
        alloc.to_csv(path, escape_formulas=False)
        heads = ["id", "eligible", "served", "category", "position", "score"]
        if alloc.lottery_key is not None:
            heads += ["lottery_key", "lottery_draw"]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(heads)
        for rec in alloc.to_dicts():
            w.writerow(["" if rec.get(h) is None else rec.get(h) for h in heads])
        assert path.read_text(encoding="utf-8") == buf.getvalue()
    ranking = ev.ranking
    ranking.to_csv(tmp_path / "r.csv")
    rows = _cells(tmp_path / "r.csv")
    assert [r[1] for r in rows[1:]] == [str(i) for i in ranking.ids]
    assert rows[1][2] == repr(ranking.row(0)["score"])


def test_parquet_exports(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    policy = fa.load_policy(Path("examples/elderly-care/policy.yaml"))
    alloc = fa.allocate(fa.evaluate(policy, "examples/elderly-care/residents.csv"), capacity=30)
    alloc.to_parquet(tmp_path / "a.parquet")
    table = pq.read_table(tmp_path / "a.parquet")
    records = alloc.to_dicts()
    assert table.column("id").to_pylist() == [r["id"] for r in records]
    assert table.column("position").to_pylist() == [r["position"] for r in records]
    alloc.evaluation.ranking.to_parquet(tmp_path / "r.parquet")
    assert pq.read_table(tmp_path / "r.parquet").num_rows == len(alloc.evaluation.ranking)


def _fill(policy: fa.Policy, people: dict[str, list[Any]]) -> fa.Population:
    """``people`` with every other attribute of ``policy`` at its lowest valid value."""
    n = len(people["id"])
    cols: dict[str, list[Any]] = dict(people)
    for name, attr in policy.attributes.items():
        if name in cols or name == policy.id_attribute:
            continue
        if attr.type in ("category", "ordinal"):
            cols[name] = [(attr.levels or [""])[0]] * n
        elif attr.type == "bool":
            cols[name] = [False] * n
        else:
            cols[name] = [attr.min or 0] * n
    cols[policy.id_attribute] = cols.pop("id")
    return fa.Population.load(cols, policy)


# -- atomic writes ----------------------------------------------------------------------------


def test_a_writer_that_fails_midway_leaves_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("previous complete file\n")

    def export() -> None:
        with atomic_write(target) as fh:
            fh.write("half of the new")
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        export()
    assert target.read_text() == "previous complete file\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_an_export_killed_midway_leaves_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("previous complete file\n")
    script = textwrap.dedent(
        f"""
        import sys
        from fairalloc._io import atomic_write
        with atomic_write({str(target)!r}) as fh:
            for i in range(100_000):
                fh.write("row,%d\\n" % i)
            fh.flush()
            print("half written", flush=True)
            sys.stdin.readline()  # killed while waiting here
            fh.write("the rest\\n")
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "half written"
        proc.kill()
        proc.wait()
    assert target.read_text() == "previous complete file\n"
    leftovers = [p for p in os.listdir(tmp_path) if p != "out.csv"]
    assert all(p.startswith(".out.csv.") and p.endswith(".tmp") for p in leftovers)


def test_atomic_write_keeps_permissions_and_refuses_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o640)
    with atomic_write(target) as fh:
        fh.write("new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o640
    with pytest.raises(OutputError) as info, atomic_write(tmp_path / "no" / "x.txt") as fh:
        fh.write("x")
    assert info.value.code == "FA802"
    with pytest.raises(OutputError) as info, atomic_write(target, "a") as fh:  # type: ignore[call-overload]
        fh.write("x")
    assert info.value.code == "FA803"
    assert target.read_text() == "new"


def test_outputs_never_overwrite_inputs(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x")
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    for out in (data, tmp_path / "." / "data.csv", link):
        with pytest.raises(OutputError) as info:
            check_not_input(out, [tmp_path / "policy.yaml", data])
        assert info.value.code == "FA801"
    check_not_input(tmp_path / "out.csv", [data, None])


def test_run_refuses_to_write_over_its_residents(tmp_path: Path) -> None:
    example = Path("examples/elderly-care")
    data = tmp_path / "residents.csv"
    data.write_bytes((example / "residents.csv").read_bytes())
    before = data.read_bytes()
    assert main(["run", str(example / "policy.yaml"), str(data), "--out", str(data)]) == 2
    assert data.read_bytes() == before


def test_run_writes_parquet_and_unescaped_csv(tmp_path: Path) -> None:
    example = Path("examples/elderly-care")
    out = tmp_path / "r.parquet"
    assert (
        main(
            [
                "run",
                str(example / "policy.yaml"),
                str(example / "residents.csv"),
                "--out",
                str(out),
                "--top",
                "0",
            ]
        )
        == 0
    )
    assert out.stat().st_size > 0


# -- results pickle ---------------------------------------------------------------------------


def test_evaluations_and_allocations_pickle() -> None:
    policy = fa.load_policy(Path("examples/elderly-care/policy.yaml"))
    alloc = fa.allocate(fa.evaluate(policy, "examples/elderly-care/residents.csv"), capacity=30)
    back = pickle.loads(pickle.dumps(alloc))
    assert back.to_dicts() == alloc.to_dicts()
    assert back.explain("R0000003").to_text() == alloc.explain("R0000003").to_text()
    ev = pickle.loads(pickle.dumps(alloc.evaluation))
    assert np.array_equal(ev.score_micro, alloc.evaluation.score_micro)
    assert ev.ranking.top(5) == alloc.evaluation.ranking.top(5)
