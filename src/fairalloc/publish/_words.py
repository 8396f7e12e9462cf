"""The words of published documents in each locale (``en``, ``zh-CN``).

Both catalogs hold the same keys with the same placeholders (a test checks it), so the two
languages say the same facts.
"""

from __future__ import annotations

from typing import Any

from fairalloc.errors import PublishError
from fairalloc.policy import _model as M

__all__ = ["LOCALES", "WORDS", "PublishError", "check_lang", "level_title", "text", "word"]

LOCALES = ("en", "zh-CN")

_EN: dict[str, str] = {
    "doc_title": "Selection criteria: {title}",
    "sentence_sep": " ",
    "version": "Policy {id}, version {version}.",
    "effective": "In force from {date}.",
    "expires": "In force until {date}.",
    "approved": "Approved by {by} on {on} (reference {reference}).",
    "supersedes": "Replaces {previous}.",
    "source": "Source: {source}.",
    "h_who": "Who may apply",
    "who_all": "An applicant must meet every one of these conditions:",
    "who_everyone": "Every resident may apply.",
    "who_excluded": "An applicant is excluded when any of these applies:",
    "cap_eligibility": "Conditions to apply",
    "cap_exclusions": "Exclusions",
    "col_rule": "Rule",
    "col_condition": "Condition",
    "col_source": "Source",
    "col_reason": "Reason",
    "always": "always",
    "never": "never",
    "h_scales": "Needs assessment",
    "scales_intro": "Need is assessed by one uniform scale for every applicant (§2.3.3). Each"
    " indicator gives points as its table shows; a scale's total is the sum of its indicators'"
    " and sub-scales' weighted points.",
    "weight": "Weight {weight}.",
    "how_bands": "points by band of value (table below)",
    "how_lookup": "points by level (table below)",
    "how_table": "points by decision table (below)",
    "h_derived": "Values decided by tables",
    "cap_table": "Decision table of {name}",
    "col_output": "Result",
    "hit_first": "the first matching row applies",
    "hit_unique": "exactly one row matches",
    "how_formula": "points by the formula {formula}",
    "min_points": "at least {points} points",
    "max_points": "at most {points} points",
    "col_indicator": "Indicator",
    "col_reads": "Reads",
    "col_how": "How points are given",
    "col_weight": "Weight",
    "col_value": "Value",
    "col_points": "Points",
    "col_level": "Level",
    "col_grade": "Grade",
    "col_total": "Total points",
    "cap_indicators": "Indicators of {scale}",
    "cap_bands": "Bands of {indicator} (first match applies)",
    "cap_lookup": "Points of {indicator} by level",
    "cap_grades": "Grades of {scale} (first match applies)",
    "otherwise": "any other value",
    "h_priority": "Priority rules",
    "h_score": "How the score is formed",
    "score_sum": "The score is the weighted sum of the terms below; a higher score ranks first.",
    "score_product": "The score is the product of the terms below, each raised to its weight; a"
    " higher score ranks first.",
    "score_tiers": "The terms below are compared in order: the first decides, the next only"
    " among equals.",
    "col_term": "Term",
    "cap_terms": "Terms of the score",
    "term_priority": "Priority rules (sum of their points)",
    "h_ties": "Ties and lottery",
    "ties_intro": "Applicants with equal scores are ordered by these steps, in order:",
    "tb_by": "{label}: by {expr}, {order}",
    "order_desc": "higher first",
    "order_asc": "lower first",
    "tb_lottery": "a lottery with the published seed {seed}",
    "tb_id": "if still equal, the order cannot matter: equal applicants share the rank",
    "lottery_how": "The lottery needs no trust: each applicant's key is a keyed hash of the"
    " published seed and the applicant's number, and anyone can recompute it with this Python"
    " program (standard library only):",
    "h_allocation": "Places, reserves and capacity",
    "mech_priority": "Places go to eligible applicants in ranking order.",
    "mech_lottery": "Places go to eligible applicants by lottery.",
    "capacity": "Places available: {capacity}.",
    "share": "{share}% of the places",
    "count": "{count} places",
    "by_ranking": "by the ranking",
    "col_reserve": "Reserve",
    "col_size": "Size",
    "col_who": "Who qualifies",
    "col_order": "Order",
    "cap_reserves": "Reserved places",
    "unused_open": "Reserved places nobody qualifies for go to the other applicants.",
    "unused_lapse": "Reserved places nobody qualifies for stay empty.",
    "alloc_lottery": "The lottery uses the published seed {seed}.",
    "alloc_weight": "Chances are weighted by {weight}.",
    "rotation": "Places are given in rounds from a waiting list (rotation).",
    "per_round": "{capacity} places per round.",
    "rot_bands": "Applicants are served by band {bands}.",
    "rot_points": "Each round waited adds {points} points.",
    "rot_max_wait": "Nobody waits more than {rounds} rounds.",
    "rot_last": "Those just served go to the end of the list.",
    "col_resource": "Resource",
    "col_capacity": "Capacity",
    "cap_resources": "Resources",
    "h_uses": "Protected characteristics and their justified uses",
    "protected": "Protected characteristics (§2.1.1): {names}. The policy reads none of them"
    " except as listed here, which the library proves before every run.",
    "list_sep": ", ",
    "col_attribute": "Characteristic",
    "col_used_by": "Used by",
    "col_why": "Why",
    "no_uses": "The policy reads no protected characteristic.",
    "use_rule": "rule",
    "use_scale": "scale",
    "use_indicator": "indicator",
    "use_tie_break": "tie-break",
    "use_reserve": "reserve",
    "use_resource": "resource",
    "use_allocation": "allocation",
    "h_parameters": "Parameters",
    "col_parameter": "Parameter",
    "from_date": "from {date}: {value}",
    "true": "yes",
    "false": "no",
    "h_review": "Review",
    "review_none": "The policy declares no review procedure.",
    "col_item": "Item",
    "review_procedure": "Procedure",
    "review_deadline_days": "Answered within (days)",
    "review_deadline": "Deadline",
    "review_contact": "Contact",
    "review_source": "Source",
}

_ZH: dict[str, str] = {
    "doc_title": "遴选标准：{title}",
    "sentence_sep": "",
    "version": "政策 {id}，版本 {version}。",
    "effective": "自 {date} 起施行。",
    "expires": "施行至 {date}。",
    "approved": "由 {by} 于 {on} 批准（文号 {reference}）。",
    "supersedes": "取代 {previous}。",
    "source": "依据：{source}。",
    "h_who": "申请条件",
    "who_all": "申请人须同时满足以下全部条件：",
    "who_everyone": "所有居民均可申请。",
    "who_excluded": "符合以下任一情形的，不予受理：",
    "cap_eligibility": "申请条件",
    "cap_exclusions": "排除情形",
    "col_rule": "规则",
    "col_condition": "条件",
    "col_source": "依据",
    "col_reason": "理由",
    "always": "始终适用",
    "never": "不适用",
    "h_scales": "需求评估",
    "scales_intro": "对所有申请人使用同一需求评估量表（§2.3.3）。各指标按下表计分；"
    "量表总分为其指标和子量表加权得分之和。",
    "weight": "权重 {weight}。",
    "how_bands": "按数值区间计分（见下表）",
    "how_lookup": "按等级计分（见下表）",
    "how_table": "按决策表计分（见下表）",
    "h_derived": "按决策表确定的数值",
    "cap_table": "{name}的决策表",
    "col_output": "结果",
    "hit_first": "按顺序取第一个符合的行",
    "hit_unique": "恰有一行符合",
    "how_formula": "按公式 {formula} 计分",
    "min_points": "最低 {points} 分",
    "max_points": "最高 {points} 分",
    "col_indicator": "指标",
    "col_reads": "所用信息",
    "col_how": "计分方式",
    "col_weight": "权重",
    "col_value": "数值",
    "col_points": "分值",
    "col_level": "等级",
    "col_grade": "等级",
    "col_total": "总分",
    "cap_indicators": "{scale}的指标",
    "cap_bands": "{indicator}的计分区间（按顺序取第一个符合的）",
    "cap_lookup": "{indicator}各等级分值",
    "cap_grades": "{scale}的等级（按顺序取第一个符合的）",
    "otherwise": "其他数值",
    "h_priority": "优先规则",
    "h_score": "总分的构成",
    "score_sum": "总分为下列各项的加权和；总分高者排序在前。",
    "score_product": "总分为下列各项按权重取幂后的乘积；总分高者排序在前。",
    "score_tiers": "按顺序比较下列各项：前一项决定排序，后一项仅在前项相同时比较。",
    "col_term": "项目",
    "cap_terms": "总分各项",
    "term_priority": "优先规则（各规则分值之和）",
    "h_ties": "同分处理与抽签",
    "ties_intro": "总分相同的申请人按以下步骤依次排序：",
    "tb_by": "{label}：按 {expr}，{order}",
    "order_desc": "高者优先",
    "order_asc": "低者优先",
    "tb_lottery": "以公开种子 {seed} 抽签",
    "tb_id": "如仍相同，排序不影响结果：并列者名次相同",
    "lottery_how": "抽签无需信任任何人：每位申请人的签号是公开种子与申请人编号的带密钥哈希值，"
    "任何人都可以用下面的 Python 程序（仅用标准库）重新计算：",
    "h_allocation": "名额、预留与容量",
    "mech_priority": "名额按排序依次分配给符合条件的申请人。",
    "mech_lottery": "名额以抽签方式分配给符合条件的申请人。",
    "capacity": "可分配名额：{capacity} 个。",
    "share": "名额的 {share}%",
    "count": "{count} 个名额",
    "by_ranking": "按排序",
    "col_reserve": "预留类别",
    "col_size": "数量",
    "col_who": "适用对象",
    "col_order": "顺序",
    "cap_reserves": "预留名额",
    "unused_open": "无人符合条件的预留名额转给其他申请人。",
    "unused_lapse": "无人符合条件的预留名额空置。",
    "alloc_lottery": "抽签使用公开种子 {seed}。",
    "alloc_weight": "中签机会按 {weight} 加权。",
    "rotation": "名额按轮候名单分轮次分配。",
    "per_round": "每轮 {capacity} 个名额。",
    "rot_bands": "按档次 {bands} 分配。",
    "rot_points": "每轮候一轮加 {points} 分。",
    "rot_max_wait": "任何人轮候不超过 {rounds} 轮。",
    "rot_last": "刚获分配者排到名单末尾。",
    "col_resource": "资源",
    "col_capacity": "容量",
    "cap_resources": "资源",
    "h_uses": "受保护特征及其合理使用",
    "protected": "受保护特征（§2.1.1）：{names}。除下表所列用途外，政策不使用其中任何一项；"
    "每次运行前均经程序证明。",
    "list_sep": "、",
    "col_attribute": "特征",
    "col_used_by": "用于",
    "col_why": "理由",
    "no_uses": "本政策不使用任何受保护特征。",
    "use_rule": "规则",
    "use_scale": "量表",
    "use_indicator": "指标",
    "use_tie_break": "同分排序",
    "use_reserve": "预留类别",
    "use_resource": "资源",
    "use_allocation": "分配",
    "h_parameters": "参数",
    "col_parameter": "参数",
    "from_date": "自 {date} 起：{value}",
    "true": "是",
    "false": "否",
    "h_review": "复核",
    "review_none": "本政策未规定复核程序。",
    "col_item": "事项",
    "review_procedure": "程序",
    "review_deadline_days": "答复期限（天）",
    "review_deadline": "期限",
    "review_contact": "联系方式",
    "review_source": "依据",
}

WORDS: dict[str, dict[str, str]] = {"en": _EN, "zh-CN": _ZH}


def check_lang(lang: str) -> str:
    """``lang`` if documents are written in it, else :class:`PublishError` (FA850)."""
    if lang not in WORDS:
        raise PublishError(f"no language {lang!r}; documents are written in: {', '.join(LOCALES)}")
    return lang


def word(lang: str, key: str, /, **params: Any) -> str:
    """The catalog entry ``key`` in ``lang``, filled with ``params``."""
    return WORDS[check_lang(lang)][key].format(**params)


def text(value: M.LocalizedText | None, lang: str, fallback: str) -> str:
    """A policy's text in ``lang``: its own language if given, else English, else any."""
    if value is None:
        return fallback
    if isinstance(value, str):
        return value
    mapping: dict[str, str] = {str(k): v for k, v in value.items()}
    return mapping.get(lang) or mapping.get("en") or next(iter(mapping.values()), fallback)


def level_title(attr: Any, level: str, lang: str) -> str:
    """A level's title in ``lang`` (its name when it has none)."""
    titles = getattr(attr, "level_titles", None) or {}
    return text(titles.get(level), lang, level)
