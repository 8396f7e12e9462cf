r"""The state of a rotation between rounds: what one round hands to the next.

A :class:`RotationState` holds, per resident id who ever took part, the bookkeeping a rotation
carries from round to round (times served, rounds waited, first served, ...), the values of the
attributes the rotation ``accrue``\\ s for the residents still present, and the number of rounds
run. :func:`fairalloc.simulate` starts from one and returns one; :func:`fairalloc.run_round`
runs the next round from one. Its JSON form is canonical: the same state always gives the same
bytes, so its SHA-256 digest can be recorded and compared.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic import ValidationError as _PydanticError

from fairalloc.errors import RotationStateError

__all__ = ["STATE_SCHEMA", "ResidentState", "RotationState"]

#: The ``schema`` value of a rotation state's JSON form.
STATE_SCHEMA = "fairalloc.rotation-state/1"


@dataclass(frozen=True, slots=True)
class ResidentState:
    """One resident's record in a rotation.

    Attributes:
        id: The resident's id.
        arrived: The round before which the resident arrived (0: present from the start).
        departed: The round before which the resident left (0: still present).
        times_served: Times served.
        rounds_served: The rounds in which the resident was served, in order.
        waited_first: Rounds waited before the first service (-1: never served).
        longest_wait: The longest wait so far (a wait in progress counted as it stands).
        current_wait: Rounds waited since the last service (or since arriving).
        eligible_rounds: Rounds in which the resident was eligible.
        accrued: The values of the attributes the rotation accrues, as they stand after the
            last round (present residents only), encoded as numbers.
    """

    id: str
    arrived: int = 0
    departed: int = 0
    times_served: int = 0
    rounds_served: tuple[int, ...] = ()
    waited_first: int = -1
    longest_wait: int = 0
    current_wait: int = 0
    eligible_rounds: int = 0
    accrued: Mapping[str, float] = field(default_factory=dict)

    @property
    def first_served(self) -> int:
        """The first round the resident was served (0: never)."""
        return self.rounds_served[0] if self.rounds_served else 0

    def to_dict(self) -> dict[str, Any]:
        """As plain values (``None`` for a round that did not happen)."""
        return {
            "id": self.id,
            "arrived": self.arrived,
            "departed": self.departed or None,
            "times_served": self.times_served,
            "rounds_served": list(self.rounds_served),
            "first_served": self.first_served or None,
            "waited_before_first": self.waited_first if self.waited_first >= 0 else None,
            "longest_wait": self.longest_wait,
            "current_wait": self.current_wait,
            "eligible_rounds": self.eligible_rounds,
            "accrued": {k: _number(v) for k, v in sorted(self.accrued.items())},
        }


@dataclass(frozen=True, slots=True)
class RotationState:
    """Where a rotation stands after a number of rounds.

    Build one with :func:`fairalloc.simulate` or :func:`fairalloc.run_round` (``.state``), or
    read one with :meth:`from_json`; :meth:`empty` is the state before the first round.

    Attributes:
        policy_id: The id of the policy whose rotation this is.
        policy_version: The version that ran the last round.
        round: Rounds run so far (the next round is ``round + 1``).
        residents: Every resident who ever took part, sorted by id.
    """

    policy_id: str
    policy_version: str
    round: int = 0
    residents: tuple[ResidentState, ...] = ()
    #: Each resident's record by id, built once (a lookup per resident must not walk them all).
    _by_id: dict[str, ResidentState] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def empty(cls, policy_id: str, policy_version: str = "") -> RotationState:
        """The state before the first round of the policy ``policy_id``."""
        return cls(policy_id, policy_version)

    def __post_init__(self) -> None:
        _check(self)
        object.__setattr__(self, "_by_id", {r.id: r for r in self.residents})

    # -- views -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.residents)

    def get(self, resident_id: str) -> ResidentState | None:
        """The record of ``resident_id``, or ``None`` if the resident never took part."""
        return self._index().get(str(resident_id))

    def present(self) -> list[str]:
        """The ids of the residents present after the last round, sorted."""
        return [r.id for r in self.residents if not r.departed]

    def _index(self) -> dict[str, ResidentState]:
        return self._by_id

    # -- the canonical form ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """As plain values, the form of the JSON schema :data:`STATE_SCHEMA`."""
        return {
            "schema": STATE_SCHEMA,
            "policy": {"id": self.policy_id, "version": self.policy_version},
            "round": self.round,
            "residents": [r.to_dict() for r in self.residents],
        }

    def to_json(self) -> str:
        """The canonical JSON form: sorted keys, no spaces, UTF-8 text.

        The same state always gives the same text.
        """
        return json.dumps(
            self.to_dict(),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form (UTF-8), as 64 hex digits.

        This is the commitment to the state that a decision log records with a round.
        """
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_json(cls, text: str | bytes) -> RotationState:
        """Read a state written by :meth:`to_json` (any key order or spacing).

        Raises:
            RotationStateError: ``FA780`` if the text is not JSON, does not have the form of a
                rotation state, or contradicts itself (the message names the place).
        """
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RotationStateError("FA780", f"not JSON: {e}") from None
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> RotationState:
        """Read a state from plain values (the form of :meth:`to_dict`).

        Raises:
            RotationStateError: ``FA780`` as for :meth:`from_json`.
        """
        try:
            m = _StateDoc.model_validate(doc)
        except _PydanticError as e:
            err = e.errors()[0]
            where = ".".join(
                f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]
            ).replace(".[", "[")
            raise RotationStateError(
                "FA780", f"{err['msg']} (a {STATE_SCHEMA} document expected)", where=where
            ) from None
        residents = tuple(
            sorted(
                (
                    ResidentState(
                        id=r.id,
                        arrived=r.arrived,
                        departed=r.departed or 0,
                        times_served=r.times_served,
                        rounds_served=tuple(r.rounds_served),
                        waited_first=-1 if r.waited_before_first is None else r.waited_before_first,
                        longest_wait=r.longest_wait,
                        current_wait=r.current_wait,
                        eligible_rounds=r.eligible_rounds,
                        accrued={k: float(v) for k, v in r.accrued.items()},
                    )
                    for r in m.residents
                ),
                key=lambda r: r.id,
            )
        )
        return cls(m.policy.id, m.policy.version, m.round, residents)


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def _check(s: RotationState) -> None:
    """Refuse a state that contradicts itself (``FA780``, naming the resident and field)."""
    seen: set[str] = set()
    last = ""
    for k, r in enumerate(s.residents):
        where = f"residents[{k}]"

        def bad(what: str, message: str, where: str = where) -> RotationStateError:
            return RotationStateError("FA780", message, where=f"{where}.{what}")

        if r.id in seen:
            raise bad("id", f"resident {r.id!r} is listed twice")
        if r.id < last:
            raise bad("id", "residents must be sorted by id")
        seen.add(r.id)
        last = r.id
        if not 0 <= r.arrived <= s.round:
            raise bad("arrived", f"must be a round from 0 to {s.round}, got {r.arrived}")
        if r.departed and not r.arrived < r.departed <= s.round + 1:
            raise bad("departed", f"must be after arrival ({r.arrived}) and at most {s.round + 1}")
        if r.times_served != len(r.rounds_served):
            raise bad(
                "times_served",
                f"{r.times_served}, but {len(r.rounds_served)} rounds served are listed",
            )
        end = (r.departed - 1) if r.departed else s.round
        rounds = list(r.rounds_served)
        if rounds != sorted(set(rounds)) or any(not max(r.arrived, 1) <= x <= end for x in rounds):
            raise bad(
                "rounds_served",
                f"must be distinct rounds in order, from {max(r.arrived, 1)} to {end}",
            )
        if (r.waited_first >= 0) != bool(rounds) or r.waited_first < -1:
            raise bad("waited_before_first", "must be given exactly when the resident was served")
        if not 0 <= r.current_wait <= r.longest_wait or r.waited_first > r.longest_wait:
            raise bad("longest_wait", "must be at least the current wait and the first wait")
        if not r.times_served <= r.eligible_rounds <= max(0, end - max(r.arrived, 1) + 1):
            raise bad(
                "eligible_rounds",
                "must be at least the times served and at most the rounds present",
            )
        if r.departed and r.accrued:
            raise bad("accrued", "a resident who left keeps no accrued values")
        for name, v in r.accrued.items():
            if not math.isfinite(v):
                raise bad(f"accrued.{name}", f"must be a finite number, got {v!r}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _PolicyRef(_Strict):
    id: StrictStr
    version: StrictStr


class _ResidentDoc(_Strict):
    id: StrictStr = Field(min_length=1)
    arrived: StrictInt = Field(ge=0)
    departed: StrictInt | None = Field(default=None, ge=1)
    times_served: StrictInt = Field(ge=0)
    rounds_served: list[StrictInt]
    first_served: StrictInt | None = Field(default=None, ge=1)
    waited_before_first: StrictInt | None = Field(default=None, ge=0)
    longest_wait: StrictInt = Field(ge=0)
    current_wait: StrictInt = Field(ge=0)
    eligible_rounds: StrictInt = Field(ge=0)
    accrued: dict[StrictStr, StrictInt | StrictFloat]

    @model_validator(mode="after")
    def _first(self) -> _ResidentDoc:
        first = self.rounds_served[0] if self.rounds_served else None
        if self.first_served != first:
            raise ValueError(f"first_served must be the first of rounds_served ({first})")
        return self


class _StateDoc(_Strict):
    schema_: StrictStr = Field(alias="schema", pattern=f"^{STATE_SCHEMA}$")
    policy: _PolicyRef
    round: StrictInt = Field(ge=0)
    residents: list[_ResidentDoc]
