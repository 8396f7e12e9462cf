"""The policy document: pydantic models for every section of a policy file.

This module only describes and validates structure. Names and expressions are checked against
each other, and compiled, by :mod:`fairalloc._compiler`.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fairalloc.errors import ArgumentError
from fairalloc.policy._tables import DecisionTable

__all__ = [
    "AllocationSpec",
    "Approval",
    "Attribute",
    "Band",
    "DecisionTable",
    "Derived",
    "EligibilityRule",
    "ExclusionRule",
    "Grade",
    "Indicator",
    "JustifiedUse",
    "LocalizedText",
    "Lottery",
    "Matching",
    "Parameter",
    "Policy",
    "PolicyMeta",
    "PriorityRule",
    "Ranking",
    "Reserve",
    "Resource",
    "Rotation",
    "Rules",
    "Scale",
    "Score",
    "ScoreTerm",
    "TieBreak",
    "WeightedLottery",
]

#: Names of rules, scales, indicators, parameters and attributes: letters, digits, ``_`` and
#: ``-`` (``-`` only in ids that expressions never name: rules).
_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_ID = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
#: The most levels a category or ordinal may have: residents' levels are stored as int16 codes.
MAX_LEVELS = 32_767


def name_problem(text: str) -> str:
    """What breaks the naming rule in ``text``, or ``""`` when it is a valid name.

    The one rule for every name in a policy (levels included, which may be in any script):
    not empty, in Unicode normal form NFC, no spaces around it, and no control, format (bidi
    controls, zero-width characters), surrogate, private-use or unassigned character, nor a
    line or paragraph separator. Names that expressions mention (attributes, parameters,
    derived values, scales, indicators, grades) are moreover ASCII identifiers.
    """
    if not text:
        return "is empty"
    if unicodedata.normalize("NFC", text) != text:
        return "is not in Unicode normal form NFC (write it composed, as keyboards do)"
    if text.strip() != text:
        return "has spaces around it"
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] == "C" or cat in ("Zl", "Zp"):
            return f"holds U+{ord(ch):04X}, a control, format or unassigned character"
    return ""


_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
_USE_TARGETS = ("rule", "scale", "indicator", "tie_break", "reserve", "resource", "allocation")

#: Names reserved by the expression language and the score section.
RESERVED = frozenset(
    {
        "and",
        "or",
        "not",
        "in",
        "if",
        "else",
        "true",
        "false",
        "priority",
        "min",
        "max",
        "clip",
        "abs",
        "round",
        "floor",
        "ceil",
        "date",
        "True",
        "False",
    }
)

Name = Annotated[str, Field(pattern=_NAME, max_length=64)]
RuleId = Annotated[str, Field(pattern=_ID, max_length=64)]

#: Text in one language, or in several keyed by locale (``en``, ``zh-CN``).
LocalizedText = str | dict[Literal["en", "zh-CN"], str]

#: A reference to the regulation (``"§2.3.3"``) or several.
Source = str | list[str]


class _Model(BaseModel):
    # NaN and infinities are refused in every number: a NaN bound silently turns a check off.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class _Documented(_Model):
    title: LocalizedText | None = None
    description: LocalizedText | None = None
    source: Source | None = None


class Approval(_Model):
    """Who approved a policy version, on which day, under which reference (§2.3.1)."""

    by: str = Field(min_length=1)
    on: dt.date
    reference: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, v: Any) -> Any:
        # YAML 1.1 reads the key `on:` as true; it means the field `on`.
        if isinstance(v, dict) and True in v and "on" not in v:
            v = {("on" if k is True else k): x for k, x in v.items()}
        return v


class PolicyMeta(_Documented):
    """Identity of a policy: id, version, title, effective window, approval and lineage.

    ``effective`` is the first day the policy is in force and ``expires`` the last; a run on a
    date outside that window is refused (FA114). ``approved`` records who approved this
    version; ``supersedes`` names the policy version it replaces (``id@version`` or a version).
    """

    id: RuleId
    version: str = Field(min_length=1)
    title: LocalizedText
    effective: dt.date | None = None
    expires: dt.date | None = None
    approved: Approval | None = None
    supersedes: str | None = Field(default=None, min_length=1)


AttributeType = Literal["bool", "int", "float", "category", "ordinal", "date", "str"]


class Attribute(_Documented):
    """One column of the residents' data.

    Attributes:
        type: ``bool``, ``int``, ``float``, ``category`` (unordered ``levels``), ``ordinal``
            (ordered ``levels``, lowest first), ``date`` or ``str`` (only for the id).
        role: ``id`` for the column that identifies residents (exactly one attribute).
        levels: The valid values of a category or ordinal.
        level_titles: A title per level, in one language or per locale
            (``{tekun: {en: extreme hardship, zh-CN: 特困}}``); documents and explanations show
            the title where one is given.
        min: Smallest valid value (numbers and dates).
        max: Largest valid value (numbers and dates).
        unit: The unit of a number, for documentation and explanations (one text, or one per
            locale: ``{en: days, zh-CN: 天}``).
        protected: A ground of §2.1.1 (age, gender, occupation, economic status, physical
            condition, cultural background) or any other the policy protects.
        ground: Which protected ground this attribute records, for reports.
        missing: ``error`` (default: a missing value is a population error) or ``default``.
        default: The value used for missing entries when ``missing: default``.
        changeable: Whether a resident can change it (for example time on a waiting list);
            declared for counterfactual explanations, which vary only such attributes.
        need: ``higher`` or ``lower`` when more (less) of this attribute means more need;
            declared for monotonicity checks of the policy.
        values: The only values an ``int`` or ``float`` may take (an item scored 0, 5 or 10),
            checked when the data is loaded and used to check bands and tables for gaps.
    """

    type: AttributeType
    role: Literal["id"] | None = None
    levels: list[str] | None = None
    min: float | dt.date | None = None
    max: float | dt.date | None = None
    unit: LocalizedText | None = None
    protected: bool = False
    ground: str | None = None
    missing: Literal["error", "default"] = "error"
    default: bool | float | str | dt.date | None = None
    changeable: bool = False
    need: Literal["higher", "lower"] | None = None
    level_titles: dict[str, LocalizedText] | None = None
    values: list[float] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Attribute:
        has_levels = self.type in ("category", "ordinal")
        if has_levels and not self.levels:
            raise ValueError(f"a {self.type} attribute needs `levels`")
        if not has_levels and self.levels is not None:
            raise ValueError(f"`levels` only apply to category and ordinal, not {self.type}")
        if self.levels is not None and len(set(self.levels)) != len(self.levels):
            raise ValueError("`levels` must be distinct")
        if self.levels is not None and len(self.levels) > MAX_LEVELS:
            raise PydanticCustomError(
                "FA192",
                "a {kind} has at most {limit} levels; this one has {count}",
                {"kind": self.type, "limit": f"{MAX_LEVELS:,}", "count": f"{len(self.levels):,}"},
            )
        for i, lv in enumerate(self.levels or ()):
            problem = name_problem(lv)
            if problem:
                raise PydanticCustomError(
                    "FA191",
                    "level {i} ({level!r}) {problem}",
                    {"i": i, "level": lv, "problem": problem},
                )
        if (self.min is not None or self.max is not None) and self.type not in (
            "int",
            "float",
            "date",
        ):
            raise ValueError("`min`/`max` only apply to int, float and date attributes")
        if self.type == "date":
            for b in (self.min, self.max):
                if b is not None and not isinstance(b, dt.date):
                    raise ValueError("`min`/`max` of a date attribute must be dates")
        elif self.type in ("int", "float"):
            for b in (self.min, self.max):
                if isinstance(b, dt.date):
                    raise ValueError("`min`/`max` of a number must be numbers")
        if (
            isinstance(self.min, float | int)
            and isinstance(self.max, float | int)
            and self.min > self.max
        ):
            raise ValueError(f"`min` ({self.min}) is greater than `max` ({self.max})")
        if self.role == "id" and self.type not in ("str", "int"):
            raise ValueError("the id attribute must have type str or int")
        if self.type == "str" and self.role != "id":
            raise ValueError("type str is only for the id attribute (role: id)")
        if self.role == "id" and self.protected:
            raise ValueError("the id attribute cannot be protected: no rule may read it")
        if self.missing == "default" and self.default is None:
            raise ValueError("`missing: default` needs a `default` value")
        if self.missing == "error" and self.default is not None:
            raise ValueError("`default` is only used with `missing: default`")
        return self


#: The grounds §2.1.1 names: a policy states, for each, which attributes carry it
#: (``ground:`` on a protected attribute) or that it is not collected
#: (``grounds_not_collected``).
GROUNDS: tuple[str, ...] = (
    "age",
    "gender",
    "occupation",
    "economic status",
    "physical condition",
    "cultural background",
)


class JustifiedUse(_Model):
    """A declared, justified read of a protected attribute by one part of the policy.

    Exactly one of ``rule`` (a rule id), ``scale`` (a scale, with everything in it, as a dotted
    path such as ``need`` or ``need.family``), ``indicator`` (``need.economic``), ``tie_break``
    (its position in the chain, from 0), ``reserve`` (a reserve category's id), ``resource`` (a
    resource's id) or ``allocation`` (``lottery-weight`` or ``rotation-band``) names the part
    allowed to read ``attribute``, directly or through derived values; ``why`` and ``source``
    say on what grounds.
    """

    attribute: Name
    rule: RuleId | None = None
    scale: str | None = Field(default=None, pattern=_PATH)
    indicator: str | None = Field(default=None, pattern=_PATH)
    tie_break: int | None = Field(default=None, ge=0)
    reserve: RuleId | None = None
    resource: RuleId | None = None
    allocation: Literal["lottery-weight", "rotation-band"] | None = None
    why: str = Field(min_length=1)
    source: Source

    @model_validator(mode="after")
    def _one_target(self) -> JustifiedUse:
        targets = [t for t in _USE_TARGETS if getattr(self, t) is not None]
        if len(targets) != 1:
            raise ValueError(
                f"name exactly one of {', '.join(_USE_TARGETS)}"
                f" (got {', '.join(targets) or 'none'})"
            )
        return self

    @property
    def target(self) -> tuple[str, str]:
        """The kind and name of the part this use allows, e.g. ``("rule", "aged-60-plus")``."""
        for t in _USE_TARGETS:
            v = getattr(self, t)
            if v is not None:
                return t, str(v)
        raise AssertionError("unreachable: validated to have one target")  # pragma: no cover


ParamValue = bool | int | float | dt.date | str | list[bool | int | float | str]


class DatedValue(_Model):
    """A parameter value in force from a date on."""

    from_: dt.date = Field(alias="from")
    value: ParamValue


class Parameter(_Documented):
    """A named constant that expressions reference.

    Either one ``value``, or ``values`` in force from successive dates (the value in force on
    the evaluation date is used; before the first date, ``value`` if given).
    """

    value: ParamValue | None = None
    values: list[DatedValue] | None = None

    @model_validator(mode="after")
    def _has_value(self) -> Parameter:
        if self.value is None and not self.values:
            raise ValueError("a parameter needs `value` or `values`")
        if self.values:
            dates = [v.from_ for v in self.values]
            if dates != sorted(dates) or len(set(dates)) != len(dates):
                raise ValueError("`values` must be in increasing order of `from`, without repeats")
        return self

    def at(self, when: dt.date | None) -> ParamValue:
        """The value in force on ``when`` (the latest dated value, when ``when`` is None)."""
        current = self.value
        for dv in self.values or ():
            if when is None or dv.from_ <= when:
                current = dv.value
        if current is None:
            first = (self.values or [])[0].from_
            raise ArgumentError(
                "FA620",
                f"no value in force on {when} (the first is from {first})",
                argument="when",
                value=when,
            )
        return current


class _Bounded(_Model):
    """Bounds of a band or grade: ``min`` (≥), ``max`` (≤), ``above`` (>), ``below`` (<)."""

    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> _Bounded:
        if self.min is not None and self.above is not None:
            raise ValueError("give `min` or `above`, not both")
        if self.max is not None and self.below is not None:
            raise ValueError("give `max` or `below`, not both")
        return self

    @property
    def unbounded(self) -> bool:
        """Whether this matches every value (a catch-all)."""
        return self.min is None and self.max is None and self.above is None and self.below is None


class Band(_Bounded):
    """A range of values and the points it gives; bands are tried in order, first match wins.

    A band with no bound matches every value.
    """

    points: float


class Indicator(_Documented):
    """One item of a needs-assessment scale: what it reads and the points it gives.

    Exactly one mapping: ``bands`` or ``lookup`` (both applied to the value of ``of``, an
    attribute name or expression), ``points`` (a formula) or ``table`` (a decision table whose
    outputs are points). ``min_points``/``max_points`` cap the result; ``weight`` multiplies it.
    """

    of: str | None = None
    bands: list[Band] | None = Field(default=None, min_length=1)
    lookup: dict[str, float] | None = None
    points: float | str | None = None
    table: DecisionTable | None = None
    min_points: float | None = None
    max_points: float | None = None
    weight: float = 1.0

    @field_validator("lookup", mode="before")
    @classmethod
    def _bool_keys(cls, v: Any) -> Any:
        # YAML reads `true:` as a boolean key; lookups on true/false attributes write it so.
        if isinstance(v, dict):
            out: dict[Any, Any] = {}
            written: dict[Any, Any] = {}
            for k, p in v.items():
                key = str(k).lower() if isinstance(k, bool) else k
                if key in out:
                    # `true:` and `"true":` would otherwise silently become one key.
                    raise PydanticCustomError(
                        "FA102",
                        "keys `{a}` and `{b}` are the same lookup key",
                        {"a": str(written[key]), "b": str(k)},
                    )
                out[key], written[key] = p, k
            return out
        return v

    @model_validator(mode="after")
    def _one_mapping(self) -> Indicator:
        forms = [f for f in ("bands", "lookup", "points", "table") if getattr(self, f) is not None]
        if len(forms) != 1:
            raise ValueError(
                "an indicator needs exactly one of `bands`, `lookup`, `points`, `table`"
                f" (got {', '.join(forms) or 'none'})"
            )
        if forms[0] in ("bands", "lookup") and self.of is None:
            raise ValueError(f"`{forms[0]}` needs `of`: the attribute or expression it maps")
        if forms[0] in ("points", "table") and self.of is not None:
            raise ValueError(f"`of` goes with `bands` or `lookup`; a `{forms[0]}` names its inputs")
        if (
            self.min_points is not None
            and self.max_points is not None
            and self.min_points > self.max_points
        ):
            raise ValueError("`min_points` is greater than `max_points`")
        return self


class Grade(_Bounded):
    """A grade of a scale total (bounds as in :class:`Band`), e.g. ``{min: 60, grade: severe}``."""

    grade: Name
    title: LocalizedText | None = None


class Scale(_Documented):
    """A needs-assessment scale: weighted indicators and weighted sub-scales (domains).

    The total is the sum of the indicators' weighted points plus the sub-scales' weighted
    totals; ``grades`` turn the total into a named level (first match wins), or, with
    ``grade_table``, name the levels (lowest first, without bounds) that a decision table over
    other grades and values chooses from (an overall grade from dimension grades).
    """

    indicators: dict[Name, Indicator] = Field(default_factory=dict)
    scales: dict[Name, Scale] = Field(default_factory=dict)
    weight: float = 1.0
    grades: list[Grade] | None = None
    grade_table: DecisionTable | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Scale:
        if not self.indicators and not self.scales:
            raise ValueError("a scale needs `indicators` or sub-`scales`")
        if self.grade_table is not None:
            if not self.grades:
                raise ValueError("`grade_table` needs `grades` naming its outputs, lowest first")
            if any(not g.unbounded for g in self.grades):
                raise ValueError(
                    "with `grade_table`, grades take no bounds: the table decides the grade"
                )
        clash = set(self.indicators) & set(self.scales)
        if clash:
            raise ValueError(f"names used both as indicator and sub-scale: {sorted(clash)}")
        return self


class Derived(_Documented):
    """A named intermediate value that other expressions may reference.

    Either ``expr`` (an expression) or ``table`` (a decision table); a table whose outputs are
    names gives a level of ``levels`` (an ordinal, lowest first), one whose outputs are numbers
    gives a number.
    """

    expr: str | None = None
    table: DecisionTable | None = None
    levels: list[Name] | None = Field(default=None, min_length=1)
    level_titles: dict[str, LocalizedText] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Derived:
        if (self.expr is None) == (self.table is None):
            raise ValueError("a derived value needs exactly one of `expr` and `table`")
        if self.levels is not None and self.table is None:
            raise ValueError("`levels` go with `table`: they are the table's outputs")
        if self.levels is not None and len(set(self.levels)) != len(self.levels):
            raise ValueError("`levels` must be distinct")
        return self


class EligibilityRule(_Documented):
    """A condition every served resident must meet."""

    id: RuleId
    when: str | bool


class ExclusionRule(_Documented):
    """A condition that excludes a resident, with the reason shown to them."""

    id: RuleId
    when: str | bool
    reason: LocalizedText


class PriorityRule(_Documented):
    """Priority points: ``points`` (a number or formula) when ``when`` holds."""

    id: RuleId
    when: str | bool = True
    points: float | str


class Rules(_Model):
    """The policy's rules: eligibility (all must hold), exclusions (any excludes), priority."""

    eligibility: list[EligibilityRule] = Field(default_factory=list)
    exclusions: list[ExclusionRule] = Field(default_factory=list)
    priority: list[PriorityRule] = Field(default_factory=list)


class ScoreTerm(_Model):
    """One term of the final score: a top-level scale, or ``priority`` (all priority rules)."""

    of: str
    weight: float = 1.0


class Score(_Documented):
    """How scale totals and priority points combine into the final priority score.

    Methods (each a function of the resident's own data only; pool-relative methods such as
    min-max normalisation or TOPSIS are deliberately not offered):

    * ``sum`` (default): Σ weight × term.
    * ``product``: Π term ^ weight, with whole-number weights computed by repeated
      multiplication (no ``pow``) and rounded once, so it is reproducible on any platform.
    * ``tiers``: lexicographic; the first term decides, the next breaks its ties, and so on.
    """

    method: Literal["sum", "product", "tiers"] = "sum"
    terms: list[ScoreTerm] | None = None

    @model_validator(mode="after")
    def _weights(self) -> Score:
        if self.terms is not None and not self.terms:
            raise ValueError("`terms` may be omitted but not empty")
        if self.method == "product":
            for t in self.terms or ():
                if t.weight != int(t.weight) or not 1 <= t.weight <= 8:
                    raise ValueError(
                        f"product weights are whole numbers from 1 to 8, got {t.weight}"
                        f" for `{t.of}`"
                    )
        if self.method == "tiers":
            for t in self.terms or ():
                if t.weight <= 0:
                    raise ValueError("tier weights must be positive")
        return self


class Lottery(_Model):
    """A published-seed lottery: each resident's key is a keyed hash of (seed, id)."""

    seed: str = Field(min_length=1, max_length=64)

    @field_validator("seed")
    @classmethod
    def _seed_bytes(cls, v: str) -> str:
        # The seed keys BLAKE2b, whose key is at most 64 bytes.
        if len(v.encode("utf-8")) > 64:
            raise ValueError("the seed must be at most 64 bytes in UTF-8")
        return v


class TieBreak(_Documented):
    """One link of the tie-break chain: ``by`` an expression in ``order``, or a ``lottery``."""

    by: str | None = None
    order: Literal["asc", "desc"] = "desc"
    lottery: Lottery | None = None

    @model_validator(mode="after")
    def _one(self) -> TieBreak:
        if (self.by is None) == (self.lottery is None):
            raise ValueError("a tie-break has either `by` (an expression) or `lottery`")
        return self


class Ranking(_Model):
    """How eligible residents are ordered: by score (highest first), then the tie-break chain."""

    tie_break: list[TieBreak] = Field(default_factory=list)

    @field_validator("tie_break")
    @classmethod
    def _lottery_last(cls, v: list[TieBreak]) -> list[TieBreak]:
        for i, tb in enumerate(v[:-1]):
            if tb.lottery is not None:
                raise ValueError(
                    f"the lottery (tie-break {i}) must be last: nothing after it can apply"
                )
        return v


class WeightedLottery(_Documented):
    """A published-seed lottery; ``weight`` (an expression, > 0) gives extra chances."""

    seed: str = Field(min_length=1, max_length=64)
    weight: str | float | None = None

    @field_validator("seed")
    @classmethod
    def _seed_bytes(cls, v: str) -> str:
        return Lottery._seed_bytes(v)


class Reserve(_Documented):
    """A reserve category: units set aside for residents meeting ``eligible``.

    Exactly one of ``count`` (units) or ``share`` (of the capacity, rounded down). Within the
    category, residents are ordered by ``priority`` (an expression, highest first) and then the
    policy's ranking, or by the policy's ranking alone.
    """

    id: RuleId
    eligible: str | bool
    count: int | None = Field(default=None, ge=0)
    share: float | None = Field(default=None, ge=0, le=1)
    priority: str | None = None

    @model_validator(mode="after")
    def _size(self) -> Reserve:
        if (self.count is None) == (self.share is None):
            raise ValueError("a reserve needs exactly one of `count` and `share`")
        if self.id == "open":
            raise ValueError("`open` names the unreserved category; choose another id")
        return self


class Rotation(_Documented):
    """A waiting list served over successive rounds (§2.1.1 fair rotation, 轮候).

    Each round serves ``capacity`` residents (the allocation's capacity by default). Order within
    a round: with ``max_wait``, first those who must be served now so that nobody waits more
    than ``max_wait`` rounds (most urgent first: a guaranteed maximum wait whenever the capacity
    allows it); then
    residents served fewer times (with ``served_go_last``); then, with ``bands``, higher need
    band; then the score plus ``points_per_round`` × rounds waited (highest first); then rounds
    waited (longest first); then the policy's ranking and published lottery. ``accrue`` adds
    ``per_round`` to a number attribute (e.g. waiting weeks) of every resident not served in a
    round.
    """

    capacity: int | None = Field(default=None, ge=0)
    bands: str | None = None
    points_per_round: float = Field(default=0.0, ge=0)
    max_wait: int | None = Field(default=None, ge=1)
    accrue: dict[Name, float] = Field(default_factory=dict)
    served_go_last: bool = True


class ReviewSpec(_Documented):
    """How a complaint against a decision is re-reviewed (§2.3.2).

    A case must be answered within ``deadline_days`` days of being filed. When the corrected
    facts show the complainant should have been served, ``remedy`` says how: the next unit that
    becomes free (``next_free_unit``), a place over and above the capacity (``supernumerary``),
    or first place on the waiting list (``head_of_waiting_list``). A correction never takes a
    place from a resident already served unless ``displace`` is ``true``: then the corrected
    decision stands, and whoever it no longer serves loses the place.
    """

    deadline_days: int = Field(ge=1, le=3650)
    remedy: Literal["next_free_unit", "supernumerary", "head_of_waiting_list"] | None = None
    displace: bool = False


class Resource(_Documented):
    """One resource of a matching (an activity session, a facility slot).

    ``eligible`` restricts who may hold it; ``priority`` (an expression, highest first) orders
    its applicants, before the policy's score and the shared lottery.
    """

    id: RuleId
    capacity: int = Field(ge=0)
    eligible: str | bool = True
    priority: str | None = None


class Matching(_Documented):
    """Several resources and residents' ranked preferences (resident-proposing deferred acceptance).

    ``preferences`` names category attributes (first choice first) whose levels are resource ids;
    a level ``none`` (or any level that is not a resource) means no further choice.
    """

    resources: list[Resource] = Field(min_length=1)
    preferences: list[Name] = Field(min_length=1)
    units_per_resident: int = Field(default=1, ge=1)


class AllocationSpec(_Documented):
    """How units are allocated among the eligible residents.

    ``mechanism``: ``priority`` (the top of the ranking) or ``lottery`` (a published-seed
    lottery, optionally weighted). ``reserves`` set units aside for categories, processed in
    ``precedence`` order (reserve ids and ``open``; by default the reserves in order, then
    ``open``), or, with ``reserve_mode: max_beneficiaries``, so as to serve as many residents
    through reserves as possible, whatever the order. Reserved units nobody eligible takes go to
    the open category (``unused_reserved: open``) or stay unused (``lapse``).
    """

    mechanism: Literal["priority", "lottery"] = "priority"
    capacity: int | None = Field(default=None, ge=0)
    lottery: WeightedLottery | None = None
    reserves: list[Reserve] = Field(default_factory=list)
    reserve_mode: Literal["precedence", "max_beneficiaries"] = "precedence"
    precedence: list[RuleId] | None = None
    unused_reserved: Literal["open", "lapse"] = "open"
    rotation: Rotation | None = None
    matching: Matching | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AllocationSpec:
        if self.mechanism == "lottery" and self.lottery is None:
            raise ValueError("`mechanism: lottery` needs `lottery: {seed: ...}`")
        if self.mechanism == "priority" and self.lottery is not None and self.matching is None:
            raise ValueError("`lottery` goes with `mechanism: lottery`")
        if self.matching is None and self.capacity is None and self.rotation is None:
            raise ValueError("give a `capacity` (units to allocate)")
        if self.matching is not None and (
            self.reserves
            or self.capacity is not None
            or self.rotation is not None
            or self.lottery is not None
            or self.mechanism != "priority"
        ):
            raise ValueError(
                "a matching stands alone: capacities are per resource and its lottery is the"
                " ranking's; drop `capacity`, `reserves`, `rotation`, `mechanism` and `lottery`"
            )
        ids = [r.id for r in self.reserves]
        if len(set(ids)) != len(ids):
            raise ValueError("reserve ids must be distinct")
        if self.precedence is not None:
            want = {*ids, "open"}
            if sorted(self.precedence) != sorted(want):
                raise ValueError(
                    "`precedence` must list every reserve id and `open` once: "
                    + ", ".join(sorted(want))
                )
            if self.reserve_mode == "max_beneficiaries":
                raise ValueError("`max_beneficiaries` does not depend on order: drop `precedence`")
        if self.reserve_mode == "max_beneficiaries" and any(r.priority for r in self.reserves):
            raise ValueError(
                "`max_beneficiaries` fills reserves in the ranking's order; a reserve's own"
                " `priority` would be ignored: drop it or use `reserve_mode: precedence`"
            )
        if self.capacity is not None:
            fixed = sum(r.count or 0 for r in self.reserves)
            shares = sum(r.share or 0.0 for r in self.reserves)
            if fixed + int(shares * self.capacity + 1e-9) > self.capacity:
                raise ValueError(f"the reserves add up to more than the capacity {self.capacity}")
        return self


Period = Annotated[
    str, Field(pattern=r"^[1-9][0-9]{0,3} (day|days|month|months|year|years)$", max_length=16)
]


class Retention(_Model):
    """How long what the decision log touches is kept (PIPL art. 19 and 47).

    ``data``: residents' rows in the operator's own store; ``openings``: the nonces that open
    residents' commitments (receipts and re-runs need them); ``log``: the records themselves,
    which hold commitments only (``permanent`` by default). Periods read ``6 months``,
    ``3 years``, ``90 days`` and run from the record's time.
    """

    data: Period | None = None
    openings: Period | None = None
    log: Period | Literal["permanent"] = "permanent"


class RecordsSpec(_Model):
    """What the decision log keeps for this policy's decisions, and for how long."""

    retention: Retention = Field(default_factory=Retention)


class Policy(_Model):
    """A complete allocation policy, as loaded from a file or built in Python.

    Build one with :func:`fairalloc.load_policy` (files) or :meth:`Policy.model_validate`
    (mappings); both check the structure. Cross-references and expressions are checked when the
    policy is compiled, which :func:`fairalloc.load_policy` does at once.
    """

    fairalloc: Literal[1] = 1
    policy: PolicyMeta
    attributes: dict[Name, Attribute]
    justified_uses: list[JustifiedUse] = Field(default_factory=list)
    parameters: dict[Name, Parameter] = Field(default_factory=dict)
    derived: dict[Name, Derived] = Field(default_factory=dict)
    scales: dict[Name, Scale] = Field(default_factory=dict)
    rules: Rules = Field(default_factory=Rules)
    score: Score = Field(default_factory=Score)
    ranking: Ranking = Field(default_factory=Ranking)
    allocation: AllocationSpec | None = None
    records: RecordsSpec | None = None
    review: ReviewSpec | None = None
    #: Grounds of §2.1.1 the policy does not collect, each with why (e.g. "the form does not
    #: ask"); see :data:`GROUNDS`.
    grounds_not_collected: dict[str, Annotated[str, Field(min_length=1)]] = Field(
        default_factory=dict
    )

    _origin: Any = PrivateAttr(default=None)
    #: Compilations by date and mode; read and written only by ``_compiler.compiled_for``.
    _compiled: Any = PrivateAttr(default=None)
    #: The seed of a recorded draw this copy runs with (``fairalloc.records.with_seed``);
    #: ``None``: any lottery seed is the policy file's own, so results are not a draw.
    _recorded_seed: str | None = PrivateAttr(default=None)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Policy:
        """A copy; with ``update``, compiled kernels of the original are not carried over."""
        copy = super().model_copy(update=update, deep=deep)
        if update:
            copy._compiled = None
        return copy

    def with_lottery_seed(self, seed: str) -> Policy:
        """A copy whose every lottery (the tie-break's and the allocation's) uses ``seed``.

        Nothing else changes. The copy is not a recorded draw: for that, see
        :func:`fairalloc.records.with_seed`, which also marks it as one.
        """
        update: dict[str, Any] = {}
        ties = self.ranking.tie_break
        if ties and ties[-1].lottery is not None:
            last = ties[-1].model_copy(
                update={"lottery": ties[-1].lottery.model_copy(update={"seed": seed})}
            )
            update["ranking"] = self.ranking.model_copy(update={"tie_break": [*ties[:-1], last]})
        spec = self.allocation
        if spec is not None and spec.lottery is not None:
            update["allocation"] = spec.model_copy(
                update={"lottery": spec.lottery.model_copy(update={"seed": seed})}
            )
        return self.model_copy(update=update or {"fairalloc": self.fairalloc})

    @field_validator("parameters", mode="before")
    @classmethod
    def _short_parameters(cls, v: Any) -> Any:
        # `name: 60` is short for `name: {value: 60}`.
        if isinstance(v, dict):
            return {k: p if isinstance(p, dict | Parameter) else {"value": p} for k, p in v.items()}
        return v

    @field_validator("derived", mode="before")
    @classmethod
    def _short_derived(cls, v: Any) -> Any:
        # `name: "expr"` is short for `name: {expr: "expr"}`.
        if isinstance(v, dict):
            return {k: {"expr": d} if isinstance(d, str) else d for k, d in v.items()}
        return v

    @model_validator(mode="after")
    def _one_id(self) -> Policy:
        ids = [n for n, a in self.attributes.items() if a.role == "id"]
        if len(ids) != 1:
            raise ValueError(
                "exactly one attribute must have `role: id`"
                f" (found {len(ids)}{': ' + ', '.join(ids) if ids else ''})"
            )
        return self

    @property
    def id_attribute(self) -> str:
        """The name of the column identifying residents."""
        return next(n for n, a in self.attributes.items() if a.role == "id")

    @property
    def protected_attributes(self) -> list[str]:
        """Names of the attributes marked ``protected``."""
        return [n for n, a in self.attributes.items() if a.protected]
