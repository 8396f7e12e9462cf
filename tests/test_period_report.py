"""The period report: rounds, places, groups within need strata; no one exposed."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

import fairalloc as fa
from fairalloc.cli import main
from fairalloc.errors import PublishError
from fairalloc.publish import parse_period, report
from tests.attacker import attack
from tests.conftest import EXAMPLE
from tests.test_disclosure import _generated

DAYS = (dt.date(2026, 1, 15), dt.date(2026, 2, 15), dt.date(2026, 3, 15), dt.date(2026, 4, 15))


@pytest.fixture(scope="module")
def rounds() -> list[tuple[dt.date, fa.Allocation]]:
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    out = []
    for k, day in enumerate(DAYS):
        ev = fa.evaluate(policy, _generated(300, 11 + k), as_of=day)
        out.append((day, fa.allocate(ev)))
    return out


def test_periods() -> None:
    assert parse_period("2026-Q1") == (dt.date(2026, 1, 1), dt.date(2026, 3, 31))
    assert parse_period("2026-Q4") == (dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert parse_period("2026-02") == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert parse_period("2026") == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    for bad in ("2026-Q5", "2026-13", "Q1-2026", ""):
        with pytest.raises(PublishError) as e:
            parse_period(bad)
        assert e.value.code == "FA851"


@pytest.mark.slow
def test_report_of_a_quarter(rounds: list[tuple[dt.date, fa.Allocation]]) -> None:
    result = report(rounds, period="2026-Q1")
    doc = json.loads(result.render(format="json"))
    assert [r["date"] for r in doc["rounds"]] == ["2026-01-15", "2026-02-15", "2026-03-15"]
    assert sum(r["served"] for r in doc["rounds"]) == 120
    assert {c["category"] for c in doc["categories"]} == {"special-hardship", "open"}
    groups = doc["groups"]
    assert groups["strata"] == "need"
    overall = groups["overall"][0]
    assert overall["n"] == sum(r["eligible"] for r in doc["rounds"])
    assert overall["selected"] == 120
    # Published and protected: the attacker recovers nothing from the report's tables.
    assert groups["disclosure"]["cells_suppressed"] > 0
    assert attack(groups).recovered == []
    # No resident-level value anywhere.
    text = "".join(
        result.render(lang=lang, format=f)
        for lang in ("en", "zh-CN")
        for f in ("md", "html", "json")
    )
    assert not re.search(r"R\d{7}", text)
    assert "last_id" not in text
    # Byte-identical whatever the order of the rounds.
    again = report(list(reversed(rounds)), period="2026-Q1")
    for fmt in ("md", "html", "json"):
        assert again.render(lang="zh-CN", format=fmt) == result.render(lang="zh-CN", format=fmt)
    zh = result.render(lang="zh-CN")
    assert "2026-Q1 期间报告" in zh
    for word in ("特殊困难家庭", "性别", "女", "中度需求", "65 及以下"):
        assert word in zh, word
    for level in ("female", "tekun", "moderate", "up to"):
        assert level not in zh, level


def test_a_period_without_rounds_is_refused(rounds: list[tuple[dt.date, fa.Allocation]]) -> None:
    with pytest.raises(PublishError) as e:
        report(rounds, period="2025-Q4")
    assert e.value.code == "FA852"


@pytest.mark.slow
def test_cli_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", EXAMPLE / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    gen: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    args = ["report", str(EXAMPLE / "policy.yaml"), "--period", "2026-Q1"]
    for k, day in enumerate(DAYS[:2]):
        path = tmp_path / f"round{k}.csv"
        gen.write_csv(gen.generate(300, 11 + k), path)
        args += ["--round", f"{day}={path}"]
    out = tmp_path / "report.html"
    assert main([*args, "--lang", "zh-CN", "--format", "html", "--out", str(out)]) == 0
    assert '<html lang="zh-CN">' in out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main([*args, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["period"] == "2026-Q1"
    with pytest.raises(SystemExit) as e:
        main([*args[:2], "--period", "2026-Q9", "--round", f"2026-01-15={tmp_path / 'round0.csv'}"])
    assert e.value.code == 2
    assert main([*args[:2], "--period", "2025-Q1", *args[4:]]) == 1
