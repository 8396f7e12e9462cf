"""Decision tables in policy documents: rows of conditions over named inputs, one output each.

A decision table (as in DMN) names its ``inputs`` (expressions: attributes, derived values,
grades, totals) and lists ``rows``. Each row gives a condition (a *cell*) for some inputs and
an ``output``; an input a row does not mention matches any value. The hit policy says which row
applies: ``unique`` (exactly one row may match any combination of values) or ``first`` (the
first matching row, in the order written).

This module describes structure only; :mod:`fairalloc._tables` checks cells against the
inputs' types, checks the table for gaps, overlaps and shadowed rows, and compiles it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Cell", "DecisionTable", "TableRow"]

#: One cell: ``-`` (any value), a value (a number, ``true``/``false`` or a level), a list of
#: values (any of them), a comparison ``"< 40"``, ``">= moderate"``, ``"!= 0"`` or a range
#: ``"45..60"`` / ``"mild..severe"`` (both ends included).
Cell = bool | float | str | list[bool | float | str]

_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TableRow(_Model):
    """One row: the cells it gives (by input name) and its output.

    In a file a row is written flat, ``{adl: mild, mental: [intact, mild], output: mild}``;
    the keys other than ``output`` and ``title`` are the cells.
    """

    cells: dict[str, Cell] = Field(default_factory=dict)
    output: float | str
    title: str | dict[Literal["en", "zh-CN"], str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, v: Any) -> Any:
        # `{adl: mild, output: mild}` is short for `{cells: {adl: mild}, output: mild}`.
        if isinstance(v, dict) and "cells" not in v:
            cells = {k: c for k, c in v.items() if k not in ("output", "title")}
            rest = {k: c for k, c in v.items() if k in ("output", "title")}
            return {**rest, "cells": cells}
        return v

    @field_validator("output", mode="before")
    @classmethod
    def _no_bool_output(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("an output is a number or a name, not true/false")
        return v


class DecisionTable(_Model):
    """A decision table: named input expressions, rows of cells, and a hit policy.

    Attributes:
        hit: ``unique`` (default; every combination of input values matches exactly one row)
            or ``first`` (the first matching row applies; every row must be reachable).
        inputs: Input name → expression (an attribute, derived value, ``grade(PATH)``,
            ``total(PATH)`` or any expression giving a number, date, level or true/false).
        rows: The rows, in order.
    """

    hit: Literal["unique", "first"] = "unique"
    inputs: dict[str, str] = Field(min_length=1)
    rows: list[TableRow] = Field(min_length=1)

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, v: dict[str, str]) -> dict[str, str]:
        import re

        for name in v:
            if not re.match(_NAME, name) or name in ("output", "title", "cells"):
                raise ValueError(
                    f"input name `{name}` must be a name (letters, digits, _) other than"
                    " output, title and cells"
                )
        return v

    @model_validator(mode="after")
    def _known_inputs(self) -> DecisionTable:
        for i, row in enumerate(self.rows):
            unknown = [k for k in row.cells if k not in self.inputs]
            if unknown:
                raise ValueError(
                    f"row {i} names {', '.join(unknown)}, which"
                    f" {'is not an input' if len(unknown) == 1 else 'are not inputs'}"
                    f" (inputs: {', '.join(self.inputs)})"
                )
        return self
