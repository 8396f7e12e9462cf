"""The exceptions fairalloc raises, all under one root, :class:`FairallocError`.

Every error says where the problem is and what would be valid:

* :class:`PolicyError` carries one :class:`PolicyIssue` per problem found in a policy file
  (all of them, not only the first), each with a :class:`SourceSpan` (file, line, column), a
  stable code, the offending text and a hint.
* :class:`PopulationError` carries one :class:`PopulationIssue` per problem found in the
  residents' data, naming the column, the residents (by id, or by row where ids are unusable),
  the offending values and what is valid.
* :class:`EvaluationError` is raised when a policy cannot be applied to some residents (for
  example a division by zero in a points formula), naming the expression and the residents.
* :class:`ArgumentError` (and :class:`ArgumentTypeError`) is raised when a function is given an
  argument it cannot use, naming the argument, the value and what is valid.
* :class:`AllocationError` is raised when an allocation cannot be made as asked, with a
  machine-readable :class:`AllocationReason` (for example an undecided tie at a cut-off).
* :class:`ComparisonError` is raised when two policies cannot be compared on their residents.

Every error with a stable code carries it in ``code`` (``FA6xx``, see ``docs/errors.md``).

This module imports nothing of fairalloc, so every other module can depend on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "AllocationError",
    "AllocationReason",
    "ApprovalMissing",
    "ArgumentError",
    "ArgumentTypeError",
    "ComparisonError",
    "EvaluationError",
    "EventError",
    "FairallocError",
    "FairnessViolation",
    "MissingDependency",
    "OutputError",
    "PolicyError",
    "PolicyIssue",
    "PolicyNotInForce",
    "PopulationError",
    "PopulationIssue",
    "PublishError",
    "RecordsError",
    "ReviewError",
    "RotationStateError",
    "ServiceError",
    "SourceSpan",
    "UsageError",
]

#: How many offending residents an issue lists by name before it summarises the rest.
MAX_LISTED = 5


class FairallocError(Exception):
    """Root of every error fairalloc raises on purpose."""


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """A place in a policy file.

    Attributes:
        file: The file's path as given to the loader, or ``"<policy>"`` for a policy built in
            Python.
        line: 1-based line, or 0 when the format keeps no positions.
        column: 1-based column, or 0 when unknown.
        path: The place in the document as a dotted path, e.g. ``rules.eligibility[0].when``.
    """

    file: str
    line: int = 0
    column: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return f"{self.file}:{self.path}" if self.path else self.file


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem in a policy document.

    Attributes:
        code: A stable code such as ``FA201`` (see ``docs/errors.md``).
        message: What is wrong, in one sentence.
        span: Where it is.
        text: The offending text, quoted in the message output when given.
        hint: What would be valid, or a likely intended name.
    """

    code: str
    message: str
    span: SourceSpan
    text: str = ""
    hint: str = ""

    def __str__(self) -> str:
        out = f"{self.span}: {self.code} {self.message}"
        if self.text:
            out += f"\n    {self.text}"
            if self.span.column and self.text_marker_column:
                out += "\n    " + " " * (self.text_marker_column - 1) + "^"
        if self.hint:
            out += f"\n    hint: {self.hint}"
        return out

    @property
    def text_marker_column(self) -> int:
        """Column of the caret under :attr:`text` (0 when the text is not an excerpt)."""
        return 0


@dataclass(frozen=True, slots=True)
class _ExprIssue(PolicyIssue):
    """A policy issue inside an expression: the caret points into the quoted expression."""

    offset: int = 0

    @property
    def text_marker_column(self) -> int:
        return self.offset + 1


class PolicyError(FairallocError, ValueError):
    """A policy document is invalid; :attr:`issues` lists every problem found.

    The string form is one ``file:line:col: CODE message`` block per issue, the format editors
    and CI annotations understand.
    """

    def __init__(self, issues: Sequence[PolicyIssue]) -> None:
        if not issues:
            raise ArgumentError("FA690", "PolicyError needs at least one issue", argument="issues")
        self.issues: tuple[PolicyIssue, ...] = tuple(issues)
        super().__init__(self._render())

    def _render(self) -> str:
        head = "1 problem" if len(self.issues) == 1 else f"{len(self.issues)} problems"
        return f"{head} in policy:\n" + "\n".join(str(i) for i in self.issues)

    @property
    def codes(self) -> list[str]:
        """The codes of all issues, in order (handy in tests)."""
        return [i.code for i in self.issues]


class FairnessViolation(PolicyError):
    """A policy reads a protected attribute without a justified use.

    Raised at load time; each issue names the rule, the attribute and the read path.
    """


@dataclass(frozen=True, slots=True)
class PopulationIssue:
    """One problem in the residents' data.

    Attributes:
        code: A stable code such as ``FA501``.
        column: The column concerned ('' for the table as a whole).
        message: What is wrong.
        ids: Resident ids (or ``row N`` labels where ids are unusable) of the offending rows.
        values: The offending values, aligned with ``ids`` (possibly shorter).
        valid: What would be valid.
        count: How many rows are affected in all (``ids`` may list only the first few).
    """

    code: str
    column: str
    message: str
    ids: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    valid: str = ""
    count: int = 0

    def __str__(self) -> str:
        where = f"column `{self.column}`" if self.column else "table"
        out = f"{self.code} {where}: {self.message}"
        if self.ids:
            shown = [
                f"{rid}={self.values[k]!s}" if k < len(self.values) else rid
                for k, rid in enumerate(self.ids)
            ]
            more = self.count - len(self.ids)
            out += "\n    residents: " + ", ".join(shown)
            if more > 0:
                out += f" (and {more} more)"
        if self.valid:
            out += f"\n    valid: {self.valid}"
        return out


class PopulationError(FairallocError, ValueError):
    """The residents' data does not fit the policy's attribute schema.

    :attr:`issues` lists every problem found; nothing is dropped or coerced silently.
    """

    def __init__(self, issues: Sequence[PopulationIssue], source: str = "") -> None:
        if not issues:
            raise ArgumentError(
                "FA690", "PopulationError needs at least one issue", argument="issues"
            )
        self.issues: tuple[PopulationIssue, ...] = tuple(issues)
        self.source = source
        where = f" in {source}" if source else ""
        head = "1 problem" if len(issues) == 1 else f"{len(issues)} problems"
        super().__init__(f"{head} in population{where}:\n" + "\n".join(str(i) for i in issues))


class EvaluationError(FairallocError, ArithmeticError):
    """A policy could not be applied to some residents.

    Attributes:
        where: The policy location of the failing expression.
        ids: Ids of the affected residents (the first few).
        count: Number of affected residents.
    """

    def __init__(self, message: str, where: str, ids: Iterable[str], count: int) -> None:
        self.where = where
        self.ids = tuple(ids)
        self.count = count
        listed = ", ".join(self.ids)
        more = f" (and {count - len(self.ids)} more)" if count > len(self.ids) else ""
        super().__init__(f"{where}: {message}; residents: {listed}{more}")


class OutputError(FairallocError, ValueError):
    """fairalloc refused, or failed, to write an output file.

    Attributes:
        code: A stable code such as ``FA801`` (see ``docs/errors.md``).
        path: The file concerned.
        hint: What to do instead.
    """

    def __init__(self, code: str, path: str, message: str, hint: str = "") -> None:
        self.code = code
        self.path = path
        self.hint = hint
        text = f"{path}: {code} {message}"
        if hint:
            text += f"\n    hint: {hint}"
        super().__init__(text)


class ArgumentError(FairallocError, ValueError):
    """An argument given to a fairalloc function cannot be used.

    The string form is ``CODE message``; the message says what is wrong and what would be
    valid.

    Attributes:
        code: A stable code such as ``FA601`` (see ``docs/errors.md``).
        message: The message without the code.
        argument: The name of the offending argument (or of its part, such as
            ``departures[3]``), or ``""`` when several arguments together are at fault.
        value: The offending value, or ``None`` when there is no single one.
        valid: What would be valid, when it is a list of names or a range ("" otherwise).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        argument: str = "",
        value: object = None,
        valid: str = "",
    ) -> None:
        self.code = code
        self.message = message
        self.argument = argument
        self.value = value
        self.valid = valid
        super().__init__(f"{code} {message}")


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument has the wrong type, or is missing or given where it does not belong.

    A :class:`ArgumentError`, so ``except ArgumentError`` catches every unusable argument, and a
    :class:`TypeError`, as Python raises for a wrong type.
    """


class ComparisonError(FairallocError, ValueError):
    """Two policies or their residents cannot be compared as asked; the message says why.

    The string form is ``CODE message``. (An unknown name or a value out of range among the
    arguments of a comparison is an :class:`ArgumentError`.)

    Attributes:
        code: A stable code such as ``FA674`` (see ``docs/errors.md``).
        message: The message without the code.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code} {message}")


class AllocationReason(StrEnum):
    """Why an allocation could not be made (:attr:`AllocationError.reason`)."""

    #: The policy has no ``allocation`` section, or not the part the call needs
    #: (``matching``, ``rotation``).
    NO_SECTION = "no-section"
    #: The policy allocates by another mechanism than the one asked for, or combines parts
    #: that the mechanism cannot apply together.
    OTHER_MECHANISM = "other-mechanism"
    #: The allocation section names something that cannot be applied (a rotation that accrues
    #: to an unknown or non-numeric attribute).
    INVALID_SECTION = "invalid-section"
    #: No capacity was given, neither as an argument nor in the policy.
    NO_CAPACITY = "no-capacity"
    #: The reserves need more units than the capacity has.
    RESERVES_EXCEED_CAPACITY = "reserves-exceed-capacity"
    #: Residents are tied at a cut-off (or on their lottery keys) and the policy publishes no
    #: lottery that could decide: neither ids nor row order may.
    UNDECIDED_TIE = "undecided-tie"
    #: The mechanism needs a published lottery seed and the policy has none.
    NO_LOTTERY = "no-lottery"
    #: Points accrued over the rounds would exceed what fairalloc can add exactly.
    SCORE_OUT_OF_RANGE = "score-out-of-range"


class AllocationError(FairallocError, ValueError):
    """An allocation, matching or simulation cannot be made as asked.

    Programs branch on :attr:`reason`, never on the message. The string form is
    ``CODE message``.

    Attributes:
        code: A stable code such as ``FA650`` (see ``docs/errors.md``).
        reason: Why, as an :class:`AllocationReason`.
        message: The message without the code.
        ids: The residents concerned (the tied residents of an undecided tie), else ``()``.
    """

    def __init__(
        self, code: str, reason: AllocationReason, message: str, *, ids: Iterable[str] = ()
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        self.ids = tuple(str(i) for i in ids)
        super().__init__(f"{code} {message}")


class RecordsError(FairallocError, ValueError):
    """A decision log refused an operation or found a record that does not hold.

    Attributes:
        code: A stable code from ``FA700`` to ``FA779`` (see ``docs/errors.md``).
        message: The message without the code.
        record: The sequence number of the record concerned, if any.
        valid: What would be valid.
    """

    def __init__(
        self, code: str, message: str, *, record: int | None = None, valid: str = ""
    ) -> None:
        self.code = code
        self.message = message
        self.record = record
        self.valid = valid
        where = f"record {record}: " if record is not None else ""
        tail = f"\n    valid: {valid}" if valid else ""
        super().__init__(f"{code} {where}{message}{tail}")


@dataclass(slots=True)
class IssueCollector:
    """Accumulates policy issues so that a load reports all of them at once."""

    issues: list[PolicyIssue] = field(default_factory=list)

    def add(self, issue: PolicyIssue) -> None:
        """Record one issue."""
        self.issues.append(issue)

    def raise_if_any(self, cls: type[PolicyError] = PolicyError) -> None:
        """Raise ``cls`` with every recorded issue, if there are any."""
        if self.issues:
            raise cls(self.issues)


class RotationStateError(FairallocError, ValueError):
    """A rotation's state cannot be read or does not fit the round asked for.

    The string form is ``CODE message``; codes ``FA780`` to ``FA789`` (see ``docs/errors.md``).

    Attributes:
        code: The stable code.
        message: The message without the code.
        where: The place in the state document (``residents[3].times_served``), or ``""``.
    """

    def __init__(self, code: str, message: str, *, where: str = "") -> None:
        self.code = code
        self.message = message
        self.where = where
        super().__init__(f"{code} {where + ': ' if where else ''}{message}")


class ReviewError(FairallocError, ValueError):
    """A re-review cannot be opened, replayed or answered as asked.

    The string form is ``CODE message``; codes ``FA790`` to ``FA799`` (see ``docs/errors.md``).

    Attributes:
        code: The stable code.
        message: The message without the code.
        case: The case concerned, if any.
    """

    def __init__(self, code: str, message: str, *, case: str | None = None) -> None:
        self.code = code
        self.message = message
        self.case = case
        super().__init__(f"{code} {'case ' + case + ': ' if case else ''}{message}")


class EventError(FairallocError, ValueError):
    """An event cannot be handled as posted (codes ``FA880`` to ``FA899``, see ``docs/errors.md``).

    Attributes:
        code: The stable code.
        message: The message without the code.
        event: The type of the event concerned, if known.
    """

    def __init__(self, code: str, message: str, *, event: str | None = None) -> None:
        self.code = code
        self.message = message
        self.event = event
        super().__init__(f"{code} {event + ' event: ' if event else ''}{message}")


class UsageError(FairallocError, ValueError):
    """A command was called in a way it cannot run (code ``FA900``; exit status 2).

    Raised by the command line for what argparse cannot see alone: an output file that is one
    of the command's inputs, a suffix that does not fit what the policy produces, an option
    that does not apply to the policy given.
    """

    code = "FA900"


class MissingDependency(FairallocError, ImportError):
    """An optional library a feature needs is not installed (code ``FA910``).

    Attributes:
        module: The missing module.
        extra: The fairalloc extra that installs it.
    """

    code = "FA910"

    def __init__(self, module: str, *, extra: str, feature: str = "") -> None:
        self.module = module
        self.extra = extra
        what = f"{feature} needs" if feature else "this needs"
        super().__init__(
            f"FA910 {what} {module}, which is not installed: pip install 'fairalloc[{extra}]'"
        )


class PublishError(FairallocError, ValueError):
    """A public document cannot be made as asked (code ``FA850``).

    An unknown language or format (``FA850``), a period that is not a quarter, month or year
    (``FA851``), a period in which no round was decided (``FA852``).

    Attributes:
        code: The error's code.
    """

    code = "FA850"

    def __init__(self, message: str, *, code: str = "FA850") -> None:
        self.code = code
        super().__init__(f"{code} {message}")


class PolicyNotInForce(FairallocError, ValueError):
    """A policy is run on a date outside its effective window (code ``FA114``).

    Attributes:
        as_of: The date asked for.
        effective: The first day the policy is in force (None: no start).
        expires: The last day it is in force (None: no end).
    """

    code = "FA114"

    def __init__(self, policy_id: str, as_of: object, effective: object, expires: object) -> None:
        self.as_of = as_of
        self.effective = effective
        self.expires = expires
        window = f"from {effective or 'any date'} until {expires or 'further notice'}"
        super().__init__(
            f"FA114 policy `{policy_id}` is not in force on {as_of}: it is in force {window};"
            " run it on a date in that window, or use the policy in force then"
        )


class ApprovalMissing(FairallocError, ValueError):
    """A policy version is registered without saying who approved it and when (``FA118``)."""

    code = "FA118"

    def __init__(self, policy_id: str, version: str) -> None:
        super().__init__(
            f"FA118 policy `{policy_id}` version {version} records no approval: give"
            " approved_by= and approved_at=, or write `policy.approved: {by, on}`"
        )


class ServiceError(FairallocError, ValueError):
    """The web service refused a request or its configuration (codes ``FA920`` to ``FA949``).

    The service answers it as a problem document (RFC 9457) with :attr:`status`; the
    configuration's errors stop the service before it starts.

    Attributes:
        code: The stable code (see ``docs/errors.md``).
        message: The message without the code.
        status: The HTTP status it is answered with.
        location: Where the problem is: a request part (``body.residents[2].age``,
            ``header Authorization``) or a configuration entry (``tokens[1].sha256``); ``""``
            when nowhere in particular.
    """

    def __init__(self, code: str, message: str, *, status: int = 400, location: str = "") -> None:
        self.code = code
        self.message = message
        self.status = status
        self.location = location
        super().__init__(f"{code} {location + ': ' if location else ''}{message}")
