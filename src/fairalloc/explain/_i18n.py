"""The words of explanations in each supported locale (``en``, ``zh-CN``).

Messages are ``str.format`` templates keyed by name. Both catalogs hold the same keys and the
same placeholders (a test checks it), so the two languages always say the same facts.
"""

from __future__ import annotations

from typing import Any

from fairalloc.errors import ArgumentError
from fairalloc.policy._model import LocalizedText

__all__ = ["LOCALES", "localized", "message"]

#: The locales explanations are written in.
LOCALES = ("en", "zh-CN")

_EN: dict[str, str] = {
    "title": "Explanation for resident {id}",
    "policy": "Policy: {title} ({policy} v{version})",
    "as_of": "Rules in force on {date}.",
    # outcome
    "h_outcome": "Outcome",
    "out_ineligible": "Not eligible.",
    "out_ranked": "Eligible: ranked {rank} of {n} eligible residents.",
    "out_tied": "The rank is shared with residents equal on the whole ranking.",
    "out_served": "Served in the category {category}: position {position} of {n} eligible"
    " residents for {capacity} places.",
    "out_waiting": "Not served: position {position} of {n} eligible residents for {capacity}"
    " places.",
    "out_ineligible_alloc": "Not served: not eligible ({capacity} places).",
    "out_holds": "Holds: {resources}.",
    "out_holds_none": "Holds no resource.",
    "out_rotation": "Served in rounds {rounds_served} of {rounds} ({capacity} per round).",
    "out_rotation_none": "Not served in {rounds} rounds ({capacity} per round).",
    "out_waited": "Waited {waited} rounds; the longest wait was {longest} rounds.",
    # eligibility
    "h_checks": "Eligibility",
    "col_rule": "Rule",
    "col_result": "Result",
    "col_values": "Values read",
    "col_deciding": "Deciding",
    "col_source": "Source",
    "met": "met",
    "not_met": "not met",
    "applies": "applies",
    "not_applies": "does not apply",
    "yes": "yes",
    "no": "no",
    "exclusion": "exclusion",
    "reason": "Reason: {reason}",
    # assessment
    "h_indicators": "Needs assessment",
    "col_indicator": "Indicator",
    "col_value": "Value",
    "col_band": "Band or level",
    "col_points": "Points",
    "band": "band {n} ({bounds})",
    "level": "level {level}",
    "formula": "formula",
    "capped": "{points} (capped)",
    "weighted": "{points} (weight {weight})",
    "h_tables": "Decision tables",
    "table_row_n": "table row {n}",
    "table_row": "{title}: row {n} applies ({hit}), giving {output}.",
    "table_row_title": " ({title})",
    "hit_first": "the first row that matches",
    "hit_unique": "the only row that matches",
    "col_input": "Input",
    "col_cell": "Condition in the row",
    "h_priority": "Priority rules",
    "col_fired": "Applies",
    "h_scales": "Scale totals",
    "col_scale": "Scale",
    "col_total": "Total",
    "col_grade": "Grade",
    "col_parts": "Made of",
    "h_score": "Score",
    "score_sum": "Score {score} = {parts}",
    "score_product": "Score {score} = product of {parts} (each to the power of its weight)",
    "score_tiers": "Score {score}: compared tier by tier, in this order: {parts}",
    "term_priority": "priority rules",
    "tie_values": "Tie-break values: {values}",
    # lottery
    "h_lottery": "Lottery",
    "lottery_tie": "Lottery key {key} from the published seed {seed}; it was {drawn}.",
    "lottery_drawn": "drawn, because the resident was tied on everything before it",
    "lottery_not_drawn": "not needed: nothing was tied",
    "lottery_mech": "Lottery key {key} from the published seed {seed}.",
    "lottery_weight": "Weight {weight}; draw {draw} (lowest draws go first).",
    "lottery_recipe": "Anyone can recompute it:",
    # allocation
    "h_cutoffs": "Cut-offs",
    "col_category": "Category",
    "col_places": "Places",
    "col_given": "Given",
    "col_cutoff": "Cut-off",
    "col_margin": "Your margin",
    "col_eligible": "You are eligible",
    "nobody": "nobody served",
    "decision_first_waiting": "Compared with the first resident eligible for {category} who"
    " was not served: {how}.",
    "decision_last_served": "Compared with the last resident served in {category}: {how}.",
    "decided_by": "{by} decided (yours {mine}, theirs {theirs})",
    "equal_on": "equal on {keys}, then {rest}",
    "decided_none": "equal on everything ({keys})",
    # matching
    "h_choices": "Your choices",
    "col_choice": "Choice",
    "col_resource": "Resource",
    "col_held": "Held",
    "col_rank": "Your priority rank",
    "col_last_rank": "Last admitted rank",
    "may_not": "may not hold it",
    # counterfactuals
    "h_cf": "What would have changed the outcome",
    "cf_number": "With {attribute} at {after} instead of {before} ({change}), the outcome would"
    " have been: {outcome}.",
    "cf_level": "With {attribute} at {after} instead of {before}, the outcome would have been:"
    " {outcome}.",
    "cf_rank": "{outcome} (rank {rank}, score {score})",
    "cf_score": "{outcome} (score {score})",
    "o_served": "served",
    "o_waiting": "eligible, not served",
    "o_ineligible": "not eligible",
    "o_eligible": "eligible",
    "o_within": "ranked within {n}",
    "o_beyond": "ranked below {n}",
    "cf_verified": "Each change was re-run through the same rules and mechanism on everybody"
    " else's data as it stands.",
    "cf_none_changeable": "The policy marks no attribute as changeable, so no change is suggested.",
    "cf_none_found": "No single change of {attributes} within the allowed range would have"
    " changed the outcome.",
    "cf_mechanism": "Changes are not searched for a {mechanism}: its outcome depends on every"
    " resident's round or choices.",
    "contrast_title": "Resident {a} compared with resident {b}",
    "contrast_summary": "{a}: score {sa}, rank {ra}. {b}: score {sb}, rank {rb}.",
    "h_differences": "Points that differ",
    "col_difference": "Difference",
    "contrast_equal": "The two are equal on every key of the ranking.",
    "contrast_deciding": "The first key of the ranking on which they differ: {by} ({va} against"
    " {vb}).",
    "contrast_private_title": "Resident {a} compared with another resident",
    "contrast_private_above": "{a}: score {sa}, rank {ra}. The other resident is ranked above {a}.",
    "contrast_private_below": "{a}: score {sa}, rank {ra}. The other resident is ranked below {a}.",
    "contrast_private_same": "{a}: score {sa}, rank {ra}. The other resident has the same rank.",
    "h_own_points": "Points of {a}",
    "contrast_private_deciding": "The first key of the ranking on which they differ: {by}."
    " Another resident's data is not shown.",
    "contrast_private_equal": "The two are equal on every key of the ranking. Another resident's"
    " data is not shown.",
    "open_category": "Open places",
    "cut_position": "place {position} in the draw",
    "any_value": "any value",
    "true": "true",
    "false": "false",
    "via": "(via {names})",
    "unit_days": "days",
    "k_priority": "the priority of {category}",
    "cf_none_given": "No attribute was given to vary.",
    "cf_none_found_sampled": "Among the values tried (every value near the resident's, then"
    " wider steps; decimals on a grid), no single change of {attributes} would have changed"
    " the outcome.",
    "rotation_end": "Checks, points and rank are those of the residents' data after the last"
    " round ({rounds}).",
    "k_score": "the score",
    "k_eligible": "eligibility",
    "k_lottery": "the lottery key",
    "k_lottery_draw": "the lottery draw",
    "mech_matching": "matching",
    "mech_rotation": "rotation",
    "h_notes": "Notes",
}

_ZH: dict[str, str] = {
    "title": "居民 {id} 的分配说明",
    "policy": "政策：{title}（{policy} v{version}）",
    "as_of": "适用 {date} 起有效的规则。",
    "h_outcome": "结果",
    "out_ineligible": "不符合资格。",
    "out_ranked": "符合资格：在 {n} 名符合资格的居民中排名第 {rank}。",
    "out_tied": "与整个排序规则完全相同的居民并列此名次。",
    "out_served": "已获分配，类别 {category}：在 {n} 名符合资格的居民中位列第 {position}，"
    "共 {capacity} 个名额。",
    "out_waiting": "未获分配：在 {n} 名符合资格的居民中位列第 {position}，共 {capacity} 个名额。",
    "out_ineligible_alloc": "未获分配：不符合资格（共 {capacity} 个名额）。",
    "out_holds": "获得：{resources}。",
    "out_holds_none": "未获得任何资源。",
    "out_rotation": "在 {rounds} 轮中的第 {rounds_served} 轮获得服务（每轮 {capacity} 个）。",
    "out_rotation_none": "在 {rounds} 轮中未获得服务（每轮 {capacity} 个）。",
    "out_waited": "等待了 {waited} 轮；最长等待 {longest} 轮。",
    "h_checks": "资格审查",
    "col_rule": "规则",
    "col_result": "结果",
    "col_values": "读取的数据",
    "col_deciding": "是否起决定作用",
    "col_source": "依据",
    "met": "符合",
    "not_met": "不符合",
    "applies": "适用",
    "not_applies": "不适用",
    "yes": "是",
    "no": "否",
    "exclusion": "排除条件",
    "reason": "原因：{reason}",
    "h_tables": "决策表",
    "table_row_n": "决策表第 {n} 行",
    "table_row": "{title}：适用第 {n} 行（{hit}），结果为 {output}。",
    "table_row_title": "（{title}）",
    "hit_first": "首个符合条件的行",
    "hit_unique": "唯一符合条件的行",
    "col_input": "输入",
    "col_cell": "该行条件",
    "h_indicators": "需求评估",
    "col_indicator": "指标",
    "col_value": "数值",
    "col_band": "档次或等级",
    "col_points": "分数",
    "band": "第 {n} 档（{bounds}）",
    "level": "等级 {level}",
    "formula": "公式",
    "capped": "{points}（已封顶）",
    "weighted": "{points}（权重 {weight}）",
    "h_priority": "优先规则",
    "col_fired": "是否适用",
    "h_scales": "量表合计",
    "col_scale": "量表",
    "col_total": "合计",
    "col_grade": "等级",
    "col_parts": "组成",
    "h_score": "总分",
    "score_sum": "总分 {score} = {parts}",
    "score_product": "总分 {score} = {parts} 的乘积（各项以其权重为幂）",
    "score_tiers": "总分 {score}：按以下顺序逐级比较：{parts}",
    "term_priority": "优先规则",
    "tie_values": "并列时的比较值：{values}",
    "h_lottery": "抽签",
    "lottery_tie": "由公开种子 {seed} 得出的抽签码 {key}；{drawn}。",
    "lottery_drawn": "已使用，因为此前各项完全相同",
    "lottery_not_drawn": "未使用：没有并列",
    "lottery_mech": "由公开种子 {seed} 得出的抽签码 {key}。",
    "lottery_weight": "权重 {weight}；抽签值 {draw}（数值小者优先）。",
    "lottery_recipe": "任何人都可以重新计算：",
    "h_cutoffs": "录取线",
    "col_category": "类别",
    "col_places": "名额",
    "col_given": "已分配",
    "col_cutoff": "录取线",
    "col_margin": "您与录取线的差距",
    "col_eligible": "您是否符合该类别",
    "nobody": "无人获得",
    "decision_first_waiting": "与第一位符合 {category} 条件但未获分配的居民相比：{how}。",
    "decision_last_served": "与 {category} 中最后一位获得分配的居民相比：{how}。",
    "decided_by": "由 {by} 决定（您的 {mine}，对方的 {theirs}）",
    "equal_on": "{keys} 相同，其后 {rest}",
    "decided_none": "各项完全相同（{keys}）",
    "h_choices": "您的志愿",
    "col_choice": "志愿",
    "col_resource": "资源",
    "col_held": "是否获得",
    "col_rank": "您的优先顺位",
    "col_last_rank": "最后录取的顺位",
    "may_not": "不可获得",
    "h_cf": "怎样的变化会改变结果",
    "cf_number": "如果 {attribute} 为 {after} 而不是 {before}（{change}），结果将是：{outcome}。",
    "cf_level": "如果 {attribute} 为 {after} 而不是 {before}，结果将是：{outcome}。",
    "cf_rank": "{outcome}（排名第 {rank}，总分 {score}）",
    "cf_score": "{outcome}（总分 {score}）",
    "o_served": "获得分配",
    "o_waiting": "符合资格但未获分配",
    "o_ineligible": "不符合资格",
    "o_eligible": "符合资格",
    "o_within": "排名在前 {n} 名以内",
    "o_beyond": "排名在第 {n} 名之后",
    "cf_verified": "每项变化都已在其他居民数据不变的情况下，按同样的规则和分配方式重新计算验证。",
    "cf_none_changeable": "政策未将任何属性标为可变，因此不提供变化建议。",
    "cf_none_found": "在 {attributes} 的取值范围内，任何单项变化都不会改变结果。",
    "cf_mechanism": "未对{mechanism}搜索变化：其结果取决于每位居民的轮次或志愿。",
    "contrast_title": "居民 {a} 与居民 {b} 的比较",
    "contrast_summary": "{a}：总分 {sa}，排名 {ra}。{b}：总分 {sb}，排名 {rb}。",
    "h_differences": "分数不同的项目",
    "col_difference": "差值",
    "contrast_equal": "两人在排序的每一项上都相同。",
    "contrast_deciding": "两人第一个不同的排序项：{by}（{va} 对 {vb}）。",
    "contrast_private_title": "居民 {a} 与另一位居民的比较",
    "contrast_private_above": "{a}：总分 {sa}，排名 {ra}。另一位居民排名在 {a} 之前。",
    "contrast_private_below": "{a}：总分 {sa}，排名 {ra}。另一位居民排名在 {a} 之后。",
    "contrast_private_same": "{a}：总分 {sa}，排名 {ra}。另一位居民与其排名相同。",
    "h_own_points": "{a} 的各项分数",
    "contrast_private_deciding": "两人第一个不同的排序项：{by}。不显示另一位居民的数据。",
    "contrast_private_equal": "两人在排序的每一项上都相同。不显示另一位居民的数据。",
    "open_category": "普通名额",
    "cut_position": "抽签第 {position} 位",
    "any_value": "任何值",
    "true": "是",
    "false": "否",
    "via": "（经 {names}）",
    "unit_days": "天",
    "k_priority": "{category} 的优先值",
    "cf_none_given": "未指定可变化的属性。",
    "cf_none_found_sampled": "在所尝试的取值中（先逐一尝试相近的值，再逐步扩大间隔；"
    "小数按网格取值），{attributes} 的任何单项变化都不会改变结果。",
    "rotation_end": "资格审查、分数和排名依据最后一轮（第 {rounds} 轮）之后的居民数据。",
    "k_score": "总分",
    "k_eligible": "是否符合资格",
    "k_lottery": "抽签码",
    "k_lottery_draw": "抽签值",
    "mech_matching": "志愿匹配",
    "mech_rotation": "轮换",
    "h_notes": "说明",
}

_CATALOGS = {"en": _EN, "zh-CN": _ZH}


def check_locale(lang: str) -> str:
    """``lang`` if supported; otherwise a ValueError naming the supported locales."""
    if lang not in _CATALOGS:
        raise ArgumentError(
            "FA606",
            f"no locale {lang!r}; explanations are written in: {', '.join(LOCALES)}",
            argument="lang",
            value=lang,
            valid=", ".join(LOCALES),
        )
    return lang


def message(lang: str, name: str, /, **params: Any) -> str:
    """The message ``name`` in ``lang``, filled with ``params``."""
    return _CATALOGS[check_locale(lang)][name].format(**params)


def catalog(lang: str) -> dict[str, str]:
    """Every message of ``lang`` (for tests and translators)."""
    return dict(_CATALOGS[check_locale(lang)])


def localized(text: LocalizedText | None, lang: str, fallback: str) -> str:
    """A policy's text in ``lang``: its own language if given, else English, else any."""
    if text is None:
        return fallback
    if isinstance(text, str):
        return text
    mapping: dict[str, str] = {str(k): v for k, v in text.items()}
    return mapping.get(lang) or mapping.get("en") or next(iter(mapping.values()), fallback)
