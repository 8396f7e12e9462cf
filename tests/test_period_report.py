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


# -- from the decision log ------------------------------------------------------------------


@pytest.fixture(scope="module")
def quarter_log(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A quarter in a decision log: three monthly decisions (the same residents reapply), one
    review answered in time and one left overdue, then a decision after the quarter."""
    from fairalloc.records import DecisionLog
    from fairalloc.review import answer_review, open_review

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    work = tmp_path_factory.mktemp("quarter")
    data: dict[int, Any] = {}
    log = DecisionLog.open(work / "log.db")
    p = log.register_policy(policy, approved_by="committee", approved_at="2025-12-15", operator="c")
    decisions = []
    gen = _generator()
    for k, day in enumerate(DAYS):
        residents = work / f"applicants-{day}.csv"
        gen.write_csv(gen.generate(300, 11 + k), residents)
        f = log.freeze(p.seq, residents, policy=policy, operator="c", time=f"{day}T08:00:00Z")
        data[f.seq] = residents
        s = log.draw_seed(
            f.seq, value=f"dice {k}", how="dice", operator="c", time=f"{day}T09:00:00Z"
        )
        decisions.append(
            log.decide(
                policy, residents, freeze=f.seq, seed=s.seq, operator="c", as_of=day,
                time=f"{day}T10:00:00Z",
            )
        )
    first = decisions[0]
    people = fa.Population.from_csv(data[first.record.body["freeze_record"]], policy)
    served = {str(i) for i in first.allocation.served_ids()}
    waiting = [i for i in first.allocation.evaluation.ids if str(i) not in served]
    case = open_review(
        log, first.seq, policy, people, case_id="Q1-1", resident=str(waiting[0]),
        grounds="assessment out of date", filed=dt.date(2026, 1, 20), operator="officer",
        time="2026-01-20T09:00:00Z",
    )
    answer_review(log, case, policy, people, on=dt.date(2026, 1, 30), operator="officer",
                  time="2026-01-30T09:00:00Z")
    open_review(
        log, first.seq, policy, people, case_id="Q1-2", resident=str(waiting[1]),
        grounds="points for living alone missing", filed=dt.date(2026, 2, 10), operator="officer",
        time="2026-02-10T09:00:00Z",
    )
    yield policy, log, data, work / "log.db"
    log.close()


def _generator() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", EXAMPLE / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    gen: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen


def _one_dimensional_attack(table: dict[str, Any]) -> list[int]:
    """Bands the attacker pins: the LP of a band table whose total is published (HiGHS)."""
    from scipy.optimize import linprog

    counts = table["counts"]
    hidden = [i for i, c in enumerate(counts) if c is None]
    if not hidden:
        return []
    rest = table["total"] - sum(c for c in counts if c is not None)
    pinned = []
    for i in range(len(hidden)):
        c = [0.0] * len(hidden)
        ranges = []
        for sign in (1.0, -1.0):
            c[i] = sign
            res = linprog(
                c, A_eq=[[1.0] * len(hidden)], b_eq=[rest],
                bounds=[(0, table["total"])] * len(hidden), method="highs",
            )
            assert res.status == 0
            ranges.append(sign * res.fun)
        if ranges[1] - ranges[0] < 1 - 1e-6:
            pinned.append(hidden[i])
    return pinned


@pytest.mark.slow
def test_report_from_the_decision_log(quarter_log: Any, tmp_path: Path) -> None:
    from fairalloc.publish import log_report

    policy, log, data, _ = quarter_log
    result = log_report(log, policy, data, period="2026-Q1", strata="need")
    doc = json.loads(result.render(format="json"))
    assert [r["date"] for r in doc["rounds"]] == ["2026-01-15", "2026-02-15", "2026-03-15"]
    facts = doc["log"]
    # Every decision of the quarter, and none after it.
    assert [d["date"] for d in facts["decisions"]] == ["2026-01-15", "2026-02-15", "2026-03-15"]
    assert [d["served"] for d in facts["decisions"]] == [r["served"] for r in doc["rounds"]]
    # Waiting times: one per resident given a place; residents reapply, so some waited.
    waiting = facts["waiting_days"]
    assert waiting["total"] == sum(r["served"] for r in doc["rounds"])
    shown = [c for c in waiting["counts"] if c is not None]
    assert sum(shown) <= waiting["total"]
    assert waiting["counts"][0] != waiting["total"]  # not everyone was served at once
    assert _one_dimensional_attack(waiting) == []
    # Q1-1 answered in 10 days of 15; Q1-2 filed 10 February, no answer by 31 March.
    assert facts["reviews"] == {
        "opened": 2, "answered": 1, "in_time": 1, "changed": 0, "overdue": 1
    }
    # The group tables stay protected, and nothing about a resident is published.
    assert attack(doc["groups"]).recovered == []
    ids = {str(i) for path in data.values() for i in fa.Population.from_csv(path, policy).ids}
    for lang in ("en", "zh-CN"):
        for fmt in ("md", "html", "json"):
            text = result.render(lang=lang, format=fmt)
            assert not any(re.search(rf"\b{re.escape(i)}\b", text) for i in list(ids)[:200])
    zh = result.render(lang="zh-CN", format="md")
    assert "获分配者的等候时间" in zh
    assert "复核（§2.3.2）" in zh
    assert "决策日志" in zh
    # Byte-identical when made again.
    again = log_report(log, policy, data, period="2026-Q1", strata="need")
    assert again.render(format="json") == result.render(format="json")


def test_report_from_the_log_needs_the_frozen_data(quarter_log: Any) -> None:
    from fairalloc.publish import log_report

    policy, log, data, _ = quarter_log
    first = min(data)
    with pytest.raises(PublishError) as e:
        log_report(log, policy, {first: data[first]}, period="2026-Q1")
    assert e.value.code == "FA856"
    other = fa.Population.of(_generated(300, 99), policy)  # not the frozen lists
    with pytest.raises(PublishError) as e:
        log_report(log, policy, other, period="2026-Q1")
    assert e.value.code == "FA857"


def test_band_suppression_leaves_nothing_to_pin() -> None:
    from fairalloc.publish._logreport import protect_counts

    for counts in ([12, 3, 0, 9], [1, 40], [2, 2, 30], [0, 0, 4], [6, 7, 8], [1, 1, 1, 1]):
        shown = protect_counts(counts, 5)
        assert all(c is None or c == 0 or c >= 5 for c in shown)
        table = {"counts": shown, "total": sum(counts)}
        assert _one_dimensional_attack(table) == []


@pytest.mark.slow
def test_cli_report_from_the_log(
    quarter_log: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fairalloc.records import DecisionLog

    _, log, data, work = quarter_log
    args = ["report", str(EXAMPLE / "policy.yaml"), "--period", "2026-Q1", "--log", str(work)]
    for seq, path in data.items():
        args += ["--data", f"{seq}={path}"]
    out = tmp_path / "report.json"
    assert main([*args, "--format", "json", "--out", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["log"]["reviews"]["overdue"] == 1
    with DecisionLog.open(work) as again:
        assert again.head() == log.head()
    capsys.readouterr()
    assert main([*args[:6]]) == 2
    assert "--data" in capsys.readouterr().err
