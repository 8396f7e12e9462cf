"""The period report (§2.2.2): what a period's allocation rounds did, exposing no one.

From the rounds of a period (each an allocation with the day it was decided): the rounds and
applications, places given per category and round with the cut-off scores, and selection
rates by protected group within need strata over all the period's applications. The group
table is protected by the audited cell suppression of
:meth:`fairalloc.audit.GroupStatistics.publication`; no resident-level row appears anywhere
(no id, no resident's value: numeric groups are labelled by bounds).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fairalloc.allocation import Allocation
from fairalloc.allocation._state import RotationState
from fairalloc.audit._groups import pooled_group_statistics
from fairalloc.policy import _model as M
from fairalloc.publish._doc import Block, page, to_html, to_markdown
from fairalloc.publish._logreport import LogFacts, log_facts
from fairalloc.publish._words import PublishError, check_lang, level_title, text

if TYPE_CHECKING:
    from fairalloc.records import DecisionLog

__all__ = ["PeriodReport", "log_report", "parse_period", "report"]

REPORT_SCHEMA = "fairalloc.report/1"

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Period report {period}: {title}",
        "intro": "From {start} to {end}: {rounds} allocation round(s), {applications}"
        " application(s), {served} place(s) given.",
        "h_rounds": "Rounds",
        "col_date": "Date",
        "col_version": "Policy version",
        "col_applications": "Applications",
        "col_eligible": "Eligible",
        "col_places": "Places",
        "col_served": "Given",
        "h_categories": "Places by category",
        "col_category": "Category",
        "col_cutoff": "Cut-off score",
        "open": "general places",
        "h_groups": "Selection by group",
        "groups_intro": "Share of eligible applications that were given a place, by group of each"
        " protected characteristic{within}, over all rounds of the period.",
        "within": ", within each grade of assessed need",
        "groups_sdc": "To protect residents, a cell with fewer than {min_group} applications, or"
        " fewer than {min_expected} expected given or not given a place, is suppressed (—),"
        " with the cells that would let it be worked out from all the tables together:"
        " {published} cells published, {suppressed} suppressed.",
        "col_attribute": "Characteristic",
        "col_grade": "Need",
        "col_group": "Group",
        "col_rate": "Rate",
        "all_grades": "all grades",
        "total": "all applications",
        "h_scope": "Not in this report",
        "scope": "Waiting times, rotation service counts and reviews are recorded in the"
        " decision log, not in allocation results; this report was made from allocation"
        " results only.",
        "h_source": "Source",
        "source_log": "Made from the decision log: every allocation decision of the period was"
        " re-run from the policy and the data kept, and matched what the log recorded (policy"
        " hash, frozen list and outcome commitment).",
        "h_decisions": "Decisions in the log",
        "col_record": "Record",
        "col_kind": "Kind",
        "kind_allocation": "allocation",
        "kind_rotation_round": "rotation round",
        "kind_matching": "matching",
        "h_waiting": "Waiting times of those given a place",
        "waiting_intro": "Days from the first list of applicants that held a resident to the"
        " decision that gave them a place.",
        "h_times_served": "Times served in the rotation",
        "h_longest_wait": "Longest wait in the rotation (rounds)",
        "rotation_intro": "Residents taking part in the rotation after the period's last round.",
        "col_band": "Band",
        "col_residents": "Residents",
        "bands_sdc": "A band with fewer than {min_cell} residents is suppressed (—), and so is"
        " another band when the total would give it back.",
        "band_range": "{a} to {b}",
        "band_one": "{a}",
        "band_over": "{a} or more",
        "band_total": "all",
        "gap": " ",
        "h_reviews": "Reviews (§2.3.2)",
        "col_opened": "Opened",
        "col_answered": "Answered",
        "col_in_time": "Answered within the deadline",
        "col_changed": "Outcome changed",
        "col_overdue": "Overdue at the end of the period",
        "true": "yes",
        "false": "no",
        "none": "none",
        "up_to": "up to {x}",
        "under": "under {x}",
        "between": "{a} to under {b}",
        "and_over": "{x} and over",
        "missing": "not recorded",
    },
    "zh-CN": {
        "title": "{period} 期间报告：{title}",
        "intro": "{start} 至 {end}：共 {rounds} 轮分配，{applications} 份申请，"
        "分配名额 {served} 个。",
        "h_rounds": "分配轮次",
        "col_date": "日期",
        "col_version": "政策版本",
        "col_applications": "申请数",
        "col_eligible": "符合条件",
        "col_places": "名额",
        "col_served": "已分配",
        "h_categories": "各类别名额",
        "col_category": "类别",
        "col_cutoff": "录取线",
        "open": "普通名额",
        "h_groups": "各群体获分配情况",
        "groups_intro": "本期各轮中，符合条件的申请获分配名额的比例，按各受保护特征分组{within}。",
        "within": "，并按需求等级分层",
        "groups_sdc": "为保护居民，申请数少于 {min_group} 份、或预计获分配或未获分配少于"
        " {min_expected} 份的单元格不予公布（—），可据所有表格推算出这些单元格的其他单元格"
        "也不予公布：公布 {published} 个单元格，隐去 {suppressed} 个。",
        "col_attribute": "特征",
        "col_grade": "需求",
        "col_group": "群体",
        "col_rate": "比例",
        "all_grades": "所有等级",
        "total": "全部申请",
        "h_scope": "本报告未包括",
        "scope": "轮候时间、轮候服务次数和复核情况记录在决策日志中，不在分配结果中；"
        "本报告仅依据分配结果编制。",
        "h_source": "数据来源",
        "source_log": "本报告依据决策日志编制：本期每项分配决定均已依据所保存的政策和数据重新运行，"
        "并与日志记录（政策哈希、冻结名单和结果承诺）一致。",
        "h_decisions": "日志中的决定",
        "col_record": "记录",
        "col_kind": "类型",
        "kind_allocation": "名额分配",
        "kind_rotation_round": "轮候轮次",
        "kind_matching": "匹配",
        "h_waiting": "获分配者的等候时间",
        "waiting_intro": "自居民首次列入冻结的申请名单之日起，至决定向其分配名额之日止的天数。",
        "h_times_served": "轮候中获服务次数",
        "h_longest_wait": "轮候中最长等候（轮）",
        "rotation_intro": "本期最后一轮之后仍参加轮候的居民。",
        "col_band": "区间",
        "col_residents": "居民数",
        "bands_sdc": "居民少于 {min_cell} 人的区间不予公布（—）；"
        "若由合计可推算出，另一区间也不予公布。",
        "band_range": "{a} 至 {b}",
        "band_one": "{a}",
        "band_over": "{a} 及以上",
        "band_total": "合计",
        "gap": "",
        "h_reviews": "复核（§2.3.2）",
        "col_opened": "受理",
        "col_answered": "已答复",
        "col_in_time": "在期限内答复",
        "col_changed": "结果改变",
        "col_overdue": "期末逾期未答复",
        "true": "是",
        "false": "否",
        "none": "无",
        "up_to": "{x} 及以下",
        "under": "低于 {x}",
        "between": "{a} 至低于 {b}",
        "and_over": "{x} 及以上",
        "missing": "未登记",
    },
}

_PERIOD = re.compile(r"^(\d{4})(?:-(Q[1-4]|\d{2}))?$")


def parse_period(period: str) -> tuple[dt.date, dt.date]:
    """The first and last day of ``2026-Q1``, ``2026-03`` or ``2026``.

    Raises:
        PublishError: for anything else (FA851).
    """
    m = _PERIOD.match(period.strip())
    if m is None:
        raise PublishError(
            f"period {period!r} is not a quarter (2026-Q1), a month (2026-03) or a year (2026)",
            code="FA851",
        )
    year = int(m.group(1))
    part = m.group(2)
    if part is None:
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    if part.startswith("Q"):
        first_month = 3 * (int(part[1]) - 1) + 1
        last_month = first_month + 2
    else:
        first_month = last_month = int(part)
        if not 1 <= first_month <= 12:
            raise PublishError(f"month {part} of {period!r} does not exist", code="FA851")
    end = (
        dt.date(year + 1, 1, 1) if last_month == 12 else dt.date(year, last_month + 1, 1)
    ) - dt.timedelta(days=1)
    return dt.date(year, first_month, 1), end


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    r = round(float(x), 6)
    return str(int(r)) if r == int(r) else f"{r:g}"


class PeriodReport:
    """The statistics of a period's rounds; render with :meth:`render`.

    Attributes:
        period: The period as asked (``2026-Q1``).
        start: Its first day.
        end: Its last day.
        rounds: One record per round in the period, in date order.
        categories: One record per round and category.
        groups: The published group statistics (see
            :meth:`fairalloc.audit.GroupStatistics.publication`), or None without rounds.
    """

    def __init__(
        self,
        period: str,
        rounds: Sequence[tuple[dt.date, Allocation]],
        *,
        strata: str | None,
        log: LogFacts | None = None,
    ) -> None:
        self.period = period
        self.start, self.end = parse_period(period)
        self.log = log
        inside = sorted(
            ((d, a) for d, a in rounds if self.start <= d <= self.end), key=lambda r: r[0]
        )
        if not inside:
            raise PublishError(
                f"no round was decided in {period} ({self.start} to {self.end})",
                code="FA852",
            )
        self._policy: M.Policy = inside[-1][1].evaluation.policy.policy
        if strata is None:
            graded = inside[-1][1].evaluation.policy.graded_scales
            strata = graded[0].path if graded else None
        self.strata = strata
        self.rounds: list[dict[str, Any]] = []
        self.categories: list[dict[str, Any]] = []
        for day, a in inside:
            ev = a.evaluation
            meta = ev.policy.policy.policy
            self.rounds.append(
                {
                    "date": day.isoformat(),
                    "policy": meta.id,
                    "version": meta.version,
                    "applications": ev.n,
                    "eligible": int(ev.eligible.sum()),
                    "capacity": a.capacity,
                    "served": a.n_served,
                }
            )
            for c in a.cutoffs():
                self.categories.append(
                    {
                        "date": day.isoformat(),
                        "category": c.category,
                        "size": c.size,
                        "used": c.used,
                        "cutoff": c.score,
                    }
                )
        stats = pooled_group_statistics([a for _, a in inside], strata=strata)
        self._stats = stats
        self.groups: dict[str, Any] = stats.to_dict(publication=True)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain values (the JSON layout)."""
        return {
            "schema": REPORT_SCHEMA,
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "policy": {"id": self._policy.policy.id, "version": self._policy.policy.version},
            "rounds": self.rounds,
            "categories": self.categories,
            "groups": self.groups,
            "log": self.log.to_dict() if self.log is not None else None,
        }

    def to_json(self) -> str:
        """The report as JSON (sorted keys: the same rounds give the same bytes)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1, sort_keys=True) + "\n"

    def blocks(self, lang: str) -> list[Block]:
        """The report's blocks in ``lang``."""
        lang = check_lang(lang)
        w = _WORDS[lang]
        p = self._policy
        title = text(p.policy.title, lang, p.policy.id)
        out = [Block("h", w["title"].format(period=self.period, title=title), level=1)]
        out.append(
            Block(
                "p",
                w["intro"].format(
                    start=self.start.isoformat(),
                    end=self.end.isoformat(),
                    rounds=len(self.rounds),
                    applications=sum(r["applications"] for r in self.rounds),
                    served=sum(r["served"] for r in self.rounds),
                ),
            )
        )
        out.append(Block("h", w["h_rounds"]))
        out.append(
            Block(
                "table",
                heads=(
                    w["col_date"],
                    w["col_version"],
                    w["col_applications"],
                    w["col_eligible"],
                    w["col_places"],
                    w["col_served"],
                ),
                rows=tuple(
                    (
                        r["date"],
                        r["version"],
                        str(r["applications"]),
                        str(r["eligible"]),
                        _num(r["capacity"]),
                        str(r["served"]),
                    )
                    for r in self.rounds
                ),
                caption=w["h_rounds"],
            )
        )
        out.append(Block("h", w["h_categories"]))
        out.append(
            Block(
                "table",
                heads=(
                    w["col_date"],
                    w["col_category"],
                    w["col_places"],
                    w["col_served"],
                    w["col_cutoff"],
                ),
                rows=tuple(
                    (
                        c["date"],
                        self._category(c["category"], lang),
                        str(c["size"]),
                        str(c["used"]),
                        _num(c["cutoff"]),
                    )
                    for c in self.categories
                ),
                caption=w["h_categories"],
            )
        )
        out += self._group_blocks(lang)
        if self.log is None:
            out.append(Block("h", w["h_scope"]))
            out.append(Block("p", w["scope"]))
        else:
            out += self._log_blocks(lang)
        return out

    def _log_blocks(self, lang: str) -> list[Block]:
        """The decision log's own tables: decisions, waits, rotation, reviews."""
        w = _WORDS[lang]
        log = self.log
        assert log is not None
        out = [Block("h", w["h_decisions"])]
        out.append(
            Block(
                "table",
                heads=(
                    w["col_record"],
                    w["col_kind"],
                    w["col_date"],
                    w["col_applications"],
                    w["col_eligible"],
                    w["col_places"],
                    w["col_served"],
                ),
                rows=tuple(
                    (
                        str(d["record"]),
                        w.get(f"kind_{d['kind']}", d["kind"]),
                        d["date"],
                        str(d["applications"]),
                        "" if d["eligible"] is None else str(d["eligible"]),
                        _num(d["capacity"]),
                        str(d["served"]),
                    )
                    for d in log.decisions
                ),
                caption=w["h_decisions"],
            )
        )
        for key, head, intro in (
            ("waiting", "h_waiting", "waiting_intro"),
            ("times_served", "h_times_served", "rotation_intro"),
            ("longest_wait", "h_longest_wait", "rotation_intro"),
        ):
            table = getattr(log, key)
            if table is None:
                continue
            out.append(Block("h", w[head]))
            sdc = w["bands_sdc"].format(min_cell=log.min_cell)
            out.append(Block("p", w[intro] + w["gap"] + sdc))
            rows = [
                (_band_label(low, high, lang), "—" if c is None else str(c))
                for (low, high), c in zip(table["bands"], table["counts"], strict=True)
            ]
            rows.append((w["band_total"], str(table["total"])))
            out.append(
                Block(
                    "table",
                    heads=(w["col_band"], w["col_residents"]),
                    rows=tuple(rows),
                    caption=w[head],
                )
            )
        r = log.reviews
        out.append(Block("h", w["h_reviews"]))
        out.append(
            Block(
                "table",
                heads=(
                    w["col_opened"],
                    w["col_answered"],
                    w["col_in_time"],
                    w["col_changed"],
                    w["col_overdue"],
                ),
                rows=(
                    tuple(
                        str(r.get(k, 0))
                        for k in ("opened", "answered", "in_time", "changed", "overdue")
                    ),
                ),
                caption=w["h_reviews"],
            )
        )
        out.append(Block("h", w["h_source"]))
        out.append(Block("p", w["source_log"]))
        return out

    def _category(self, cat: str, lang: str) -> str:
        alloc = self._policy.allocation
        for r in alloc.reserves if alloc is not None else ():
            if r.id == cat:
                return text(r.title, lang, cat)
        return _WORDS[lang]["open"] if cat == "open" else cat

    def _grade(self, grade: str | None, lang: str) -> str:
        if grade is None:
            return _WORDS[lang]["all_grades"]
        scale = _scale(self._policy, self.strata)
        for g in (scale.grades or ()) if scale is not None else ():
            if g.grade == grade:
                return text(g.title, lang, grade)
        return grade

    def _group(self, attribute: str, group: str, lang: str) -> str:
        attr = self._policy.attributes.get(attribute)
        if attr is None:
            return group
        if attr.type == "bool" and group in ("true", "false"):
            return _WORDS[lang][group]
        if attr.type in ("int", "float", "date"):
            low = re.match(r"^up to (.+)$", group)
            under = re.match(r"^under (.+)$", group)
            between = re.match(r"^(.+) to under (.+)$", group)
            high = re.match(r"^(.+) and over$", group)
            if low:
                return _WORDS[lang]["up_to"].format(x=low.group(1))
            if between:
                return _WORDS[lang]["between"].format(a=between.group(1), b=between.group(2))
            if under:
                return _WORDS[lang]["under"].format(x=under.group(1))
            if high:
                return _WORDS[lang]["and_over"].format(x=high.group(1))
            if group == "missing":
                return _WORDS[lang]["missing"]
            return group
        return level_title(attr, group, lang)

    def _group_blocks(self, lang: str) -> list[Block]:
        w = _WORDS[lang]
        g = self.groups
        out = [Block("h", w["h_groups"])]
        out.append(Block("p", w["groups_intro"].format(within=w["within"] if self.strata else "")))
        d = g["disclosure"]
        out.append(
            Block(
                "p",
                w["groups_sdc"].format(
                    min_group=g["min_group"],
                    min_expected=_num(g["min_expected"]),
                    published=d["cells_published"],
                    suppressed=d["cells_suppressed"],
                ),
            )
        )
        rows = []
        for o in g["overall"]:
            rows.append(
                (
                    w["total"],
                    self._grade(o["stratum"], lang),
                    "",
                    "—" if o["n"] is None else str(o["n"]),
                    "—" if o["selected"] is None else str(o["selected"]),
                    _pct(o["rate"]),
                )
            )
        for r in g["rows"]:
            attr = self._policy.attributes.get(r["grouping"])
            label = text(attr.title, lang, r["grouping"]) if attr is not None else r["grouping"]
            rows.append(
                (
                    label,
                    self._grade(r["stratum"], lang),
                    self._group(r["grouping"], r["group"], lang),
                    "—" if r["n"] is None else str(r["n"]),
                    "—" if r["selected"] is None else str(r["selected"]),
                    _pct(r["rate"]),
                )
            )
        out.append(
            Block(
                "table",
                heads=(
                    w["col_attribute"],
                    w["col_grade"],
                    w["col_group"],
                    w["col_applications"],
                    w["col_served"],
                    w["col_rate"],
                ),
                rows=tuple(rows),
                caption=w["h_groups"],
            )
        )
        return out

    def render(
        self,
        *,
        lang: str = "en",
        format: str = "md",
        large_print: bool = False,
    ) -> str:
        """The report as ``md``, ``html`` (an accessible page) or ``json``.

        Raises:
            PublishError: for an unknown language or format (FA850).
        """
        if format == "json":
            return self.to_json()
        if format not in ("md", "html"):
            raise PublishError(f"no format {format!r} for the report; formats: md, html, json")
        blocks = self.blocks(lang)
        if format == "md":
            return to_markdown(blocks)
        return page(to_html(blocks), title=blocks[0].text, lang=lang, large_print=large_print)


def _band_label(low: int, high: int | None, lang: str) -> str:
    w = _WORDS[lang]
    if high is None:
        return w["band_over"].format(a=low)
    if high == low + 1:
        return w["band_one"].format(a=low)
    return w["band_range"].format(a=low, b=high - 1)


def _scale(policy: M.Policy, path: str | None) -> M.Scale | None:
    if path is None:
        return None
    parts = path.split(".")
    scale = policy.scales.get(parts[0])
    for part in parts[1:]:
        if scale is None:
            return None
        scale = scale.scales.get(part)
    return scale


def report(
    rounds: Mapping[dt.date, Allocation] | Sequence[tuple[dt.date, Allocation]],
    *,
    period: str,
    strata: str | None = None,
) -> PeriodReport:
    """The period report (§2.2.2) of the rounds decided in ``period``.

    Args:
        rounds: Each round's decision day and allocation (a mapping or pairs); rounds outside
            the period are left out.
        period: ``2026-Q1``, ``2026-03`` or ``2026``.
        strata: A graded scale whose grades are the need strata (default: the policy's first
            graded scale, if any).

    Returns:
        The :class:`PeriodReport`; ``render(lang=..., format=...)`` writes it.

    Raises:
        PublishError: for a malformed period (FA851) or a period without rounds (FA852).
    """
    pairs = list(rounds.items()) if isinstance(rounds, Mapping) else list(rounds)
    return PeriodReport(period, pairs, strata=strata)


def log_report(
    log: DecisionLog,
    policy: M.Policy,
    residents: Any,
    *,
    period: str,
    strata: str | None = None,
    state: RotationState | None = None,
    min_cell: int = 5,
) -> PeriodReport:
    """The period report (§2.2.2) made from a decision log.

    Every allocation decision of the period is re-run from ``policy`` and the data and checked
    by the log against what it recorded; the report then adds the log's own facts: every
    decision (rotation rounds included), waiting times of those given a place, the rotation's
    service counts and longest waits (with ``state``, the rotation's state after the period's
    last round), and reviews opened, answered in time, with a changed outcome, overdue.

    Args:
        log: The decision log (with the office's private openings).
        policy: The policy the decisions used (as registered in the log).
        residents: The data of the frozen lists: one source for all, or a mapping from each
            freeze's record number to its data (the key ``None`` serving the freezes not named).
        period: ``2026-Q1``, ``2026-03`` or ``2026``.
        strata: A graded scale whose grades are the need strata.
        state: The rotation state after the period's last round, for the rotation tables.
        min_cell: The smallest count of residents published in a band.

    Raises:
        PublishError: ``FA851`` a malformed period, ``FA852`` no allocation decision in it,
            ``FA856`` no data for a frozen list, ``FA857`` a decision that does not re-run to
            what the log recorded.
    """
    start, end = parse_period(period)
    rounds, facts = log_facts(
        log, policy, residents, start=start, end=end, state=state, min_cell=min_cell
    )
    return PeriodReport(period, rounds, strata=strata, log=facts)
