"""Criteria documents, level titles in every zh-CN output, and the policy lifecycle."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

import fairalloc as fa
from fairalloc.analysis import policy_diff
from fairalloc.cli import main
from fairalloc.errors import PolicyError, PolicyNotInForce, PublishError
from fairalloc.explain import explain
from fairalloc.publish import criteria
from tests.conftest import EXAMPLE, ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*/policy.yaml"))


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """\
fairalloc: 1
policy:
  id: demo
  version: "1"
  title: {en: "Demo <b>bold</b> & *stars* | pipe", zh-CN: "演示 <script>alert(1)</script>"}
  effective: 2026-01-01
  expires: 2026-06-30
  approved: {by: "Committee [x](http://evil)", on: 2025-12-01, reference: "M-1"}
  supersedes: demo@0
attributes:
  id: {type: str, role: id}
  level:
    type: ordinal
    levels: [low, high]
    level_titles: {low: {en: "low <i>", zh-CN: 低}, high: {en: high, zh-CN: 高}}
rules:
  eligibility:
    - {id: any, title: "`tick` <img src=x onerror=alert(1)>", when: "level >= low"}
scales:
  need:
    indicators:
      lvl: {of: level, lookup: {low: 0, high: 5}, title: "# heading?"}
score: {terms: [{of: need}]}
"""


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
@pytest.mark.parametrize("fmt", ["md", "html"])
def test_criteria_are_byte_identical_across_loads(path: Path, lang: str, fmt: str) -> None:
    first = criteria(fa.load_policy(path), lang=lang, format=fmt)
    second = criteria(fa.load_policy(path), lang=lang, format=fmt)
    assert first == second
    assert first.endswith("\n")


def test_criteria_of_the_example_cover_every_part() -> None:
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    en = criteria(policy, lang="en")
    for needle in (
        "# Selection criteria: Community elderly-care places",
        "## Who may apply",
        "Aged 60 or over",
        "Already holds a place in a care facility",
        "Decision table of Activities of daily living graded",
        "| severely impaired | 40 |",
        "Points of Household hardship by level",
        "| extreme hardship | 15 |",
        "Grades of Assessed need",
        "## Priority rules",
        "## How the score is formed",
        "## Ties and lottery",
        "2026-Q1-elderly-care-published-seed",
        "hashlib.blake2b",
        "Places available: 40.",
        "25% of the places",
        "Economic status is one of the needs-assessment indicators",
        "§2.1.1",
        "In force until 2026-12-31.",
        "Approved by Community residents' committee on 2025-12-15",
        "## Review",
    ):
        assert needle in en, needle
    zh = criteria(policy, lang="zh-CN")
    assert "特困" in zh
    assert "遴选标准：社区养老服务名额" in zh


def test_every_policy_text_is_escaped(tmp_path: Path) -> None:
    policy = fa.load_policy(_yaml(tmp_path, MINIMAL))
    page = criteria(policy, lang="en", format="html")
    assert "<b>" not in page
    assert "<i>" not in page
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    zh = criteria(policy, lang="zh-CN", format="html")
    assert "<script>" not in zh
    assert "&lt;script&gt;" in zh
    md = criteria(policy, lang="en", format="md")
    assert "<b>" not in md
    assert "\\<b\\>" in md
    assert "[x](http://evil)" not in md
    assert "\\# heading?" in md
    # Pipes in a title never break a table row.
    assert "\\| pipe" in md
    large = criteria(policy, lang="en", format="html", large_print=True)
    assert "html{font-size:150%}" in large
    assert "html{font-size:150%}" not in page


def test_unknown_language_or_format_is_a_publish_error() -> None:
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    with pytest.raises(PublishError) as e:
        criteria(policy, lang="fr")
    assert e.value.code == "FA850"
    with pytest.raises(PublishError):
        criteria(policy, format="pdf")


def _identifiers_with_titles(policy: fa.Policy) -> dict[str, str]:
    """Every level (of an attribute, a derived value or a scale's grades) with a zh-CN title."""
    titled: list[tuple[str, object]] = []
    for attr in policy.attributes.values():
        titled += list((attr.level_titles or {}).items())
    for derived in policy.derived.values():
        titled += list((derived.level_titles or {}).items())
    stack = list(policy.scales.values())
    while stack:
        scale = stack.pop()
        titled += [(g.grade, g.title) for g in scale.grades or () if g.title is not None]
        stack += list((scale.scales or {}).values())
    out = {}
    for level, title in titled:
        zh = title if isinstance(title, str) else title.get("zh-CN")  # type: ignore[attr-defined]
        if zh and zh != level:
            out[level] = zh
    return out


def _prose(text: str) -> str:
    """The text without code (policy expressions are shown verbatim, as the policy says)."""
    text = re.sub(r"<code>.*?</code>", " ", text, flags=re.S)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    return re.sub(r"`+ .*? `+", " ", text)


def _titled_examples() -> list[Path]:
    return [p for p in EXAMPLES if _identifiers_with_titles(fa.load_policy(p))]


def test_an_example_titles_its_levels() -> None:
    assert [p.parent.name for p in _titled_examples()] == ["elderly-ability", "elderly-care"]


@pytest.mark.slow
@pytest.mark.parametrize("path", _titled_examples(), ids=lambda p: p.parent.name)
def test_zh_outputs_show_titles_not_level_identifiers(path: Path) -> None:
    policy = fa.load_policy(path)
    levels = _identifiers_with_titles(policy)
    outputs = [criteria(policy, lang="zh-CN", format=f) for f in ("md", "html")]
    result: object = fa.evaluate(policy, path.parent / "residents.csv")
    if policy.allocation is not None and policy.allocation.capacity is not None:
        result = fa.allocate(policy, path.parent / "residents.csv")
    ids = (
        [str(i) for i in result.evaluation.ids[:12]]
        if hasattr(result, "evaluation")
        else [
            str(i)
            for i in result.ids[:12]  # type: ignore[attr-defined]
        ]
    )
    for rid in ids:
        ex = explain(result, rid)  # type: ignore[arg-type]
        outputs += [ex.to_text(lang="zh-CN"), ex.to_markdown(lang="zh-CN")]
        outputs.append(ex.to_html(lang="zh-CN"))
    if path.parent.name == "elderly-care":
        import datetime as dt

        from fairalloc.publish import report

        day = dt.date(2026, 1, 15)
        rounds = [(day, fa.allocate(fa.evaluate(policy, path.parent / "residents.csv", as_of=day)))]
        period = report(rounds, period="2026-Q1")
        outputs += [period.render(lang="zh-CN", format=f) for f in ("md", "html")]
    found = []
    for text in outputs:
        prose = _prose(text)
        for level, title in levels.items():
            if re.search(rf"(?<![A-Za-z_]){re.escape(level)}(?![A-Za-z_])", prose):
                found.append((level, title))
    assert not found, sorted(set(found))
    # The titles do appear.
    assert any(t in "".join(outputs) for t in levels.values())


def test_level_titles_must_name_levels(tmp_path: Path) -> None:
    bad = MINIMAL.replace("high: {en: high, zh-CN: 高}", "hgih: {en: high, zh-CN: 高}")
    with pytest.raises(PolicyError) as e:
        fa.load_policy(_yaml(tmp_path, bad))
    (issue,) = e.value.issues
    assert issue.code == "FA115"
    assert "did you mean `high`?" in issue.hint


def test_runs_outside_the_effective_window_are_refused(tmp_path: Path) -> None:
    policy = fa.load_policy(_yaml(tmp_path, MINIMAL))
    data = {"id": ["a", "b"], "level": ["low", "high"]}
    assert fa.evaluate(policy, data, as_of=dt.date(2026, 6, 30)).n == 2
    for day in (dt.date(2025, 12, 31), dt.date(2026, 7, 1)):
        with pytest.raises(PolicyNotInForce) as e:
            fa.evaluate(policy, data, as_of=day)
        assert e.value.code == "FA114"
        assert "2026-01-01" in str(e.value)
        assert "2026-06-30" in str(e.value)
        assert e.value.as_of == day


def test_expires_before_effective_and_late_approval_are_errors(tmp_path: Path) -> None:
    bad = MINIMAL.replace("expires: 2026-06-30", "expires: 2025-06-30").replace(
        "on: 2025-12-01", "on: 2026-02-01"
    )
    with pytest.raises(PolicyError) as e:
        fa.load_policy(_yaml(tmp_path, bad))
    assert sorted(i.code for i in e.value.issues) == ["FA116", "FA117"]


def test_diff_shows_metadata_changes(tmp_path: Path) -> None:
    old = fa.load_policy(_yaml(tmp_path, MINIMAL))
    new_text = MINIMAL.replace(
        'on: 2025-12-01, reference: "M-1"', 'on: 2025-12-01, reference: "M-2"'
    )
    new_text = new_text.replace("expires: 2026-06-30", "expires: 2026-09-30")
    (tmp_path / "new").mkdir()
    new = fa.load_policy(_yaml(tmp_path / "new", new_text))
    diff = policy_diff(old, new)
    text = diff.to_markdown() if hasattr(diff, "to_markdown") else str(diff)
    assert "expires" in text
    assert "2026-09-30" in text
    assert "approved" in text
    assert "M-2" in text


def test_cli_publishes_criteria(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "criteria.html"
    policy = str(EXAMPLE / "policy.yaml")
    args = ["publish", "criteria", policy, "--lang", "zh-CN", "--format", "html", "--out", str(out)]
    assert main(args) == 0
    assert '<html lang="zh-CN">' in out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["publish", "criteria", policy]) == 0
    assert capsys.readouterr().out == criteria(fa.load_policy(EXAMPLE / "policy.yaml"))
    assert main(["publish", "criteria", str(tmp_path / "missing.yaml")]) == 1
    with pytest.raises(SystemExit) as e:
        main(["publish", "criteria", policy, "--lang", "fr"])
    assert e.value.code == 2


def test_both_catalogs_hold_the_same_words() -> None:
    import string

    from fairalloc.publish._words import WORDS

    en, zh = WORDS["en"], WORDS["zh-CN"]
    assert en.keys() == zh.keys()

    def fields(s: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(s) if f}

    for key in en:
        assert fields(en[key]) == fields(zh[key]), key


def test_registering_a_version_records_its_approval(tmp_path: Path) -> None:
    from fairalloc.errors import ApprovalMissing
    from fairalloc.records import DecisionLog

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    with DecisionLog.open(str(tmp_path / "log.sqlite")) as log:
        rec = log.register_policy(policy, operator="clerk", time="2026-12-01T09:00:00Z")
        assert rec.body["approved_by"] == "Community residents' committee"
        assert rec.body["approved_at"] == "2025-12-15"
        assert rec.body["effective"] == {"from": "2026-01-01", "until": "2026-12-31"}
        bare = fa.load_policy(
            _yaml(
                tmp_path,
                MINIMAL.replace(
                    '  approved: {by: "Committee [x](http://evil)", on: 2025-12-01,'
                    ' reference: "M-1"}\n',
                    "",
                ),
            )
        )
        with pytest.raises(ApprovalMissing) as e:
            log.register_policy(bare, operator="clerk", time="2026-12-01T09:00:00Z")
        assert e.value.code == "FA118"
