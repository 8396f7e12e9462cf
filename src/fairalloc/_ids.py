"""Resident ids, held once: as an Arrow text array, with Python strings made only where read.

A million ids as Python strings take about 64 MB and a third of a second to make; the engine
needs none of them (it names residents only in error messages), the ranking needs those of the
residents a tie-break by id or a lottery decides, and a result file copies them as a column.
:class:`IdColumn` keeps whichever form it was given (an Arrow ``string`` array from a file, or
an object array of ``str`` from Python code) and makes the other on first use, then keeps it.

Indexing follows numpy: an integer gives one ``str``, an integer array gives an object array
of ``str``, a slice gives an :class:`IdColumn` view of those rows.
"""

from __future__ import annotations

from typing import Any, overload

import numpy as np
import numpy.typing as npt


class IdColumn:
    """One text id per resident (no missing ids), as Arrow text and, on demand, Python ``str``.

    Args:
        values: An Arrow ``string``/``large_string`` array without nulls, an object array of
            ``str``, or another :class:`IdColumn` (shared, not copied).
    """

    __slots__ = ("_arrow", "_objects")

    _arrow: Any
    _objects: npt.NDArray[np.object_] | None

    def __init__(self, values: Any) -> None:
        if isinstance(values, IdColumn):
            self._arrow, self._objects = values._arrow, values._objects
        elif isinstance(values, np.ndarray):
            self._arrow, self._objects = None, values
        elif type(values).__module__.split(".")[0] == "pyarrow":
            self._arrow, self._objects = values, None
        else:
            self._arrow, self._objects = None, np.array(list(values), dtype=object)

    def __getstate__(self) -> tuple[Any, Any]:
        # One form travels: the compact Arrow array when there is one.
        return (self._arrow, None if self._arrow is not None else self._objects)

    def __setstate__(self, state: tuple[Any, Any]) -> None:
        self._arrow, self._objects = state

    def __len__(self) -> int:
        return len(self._objects) if self._objects is not None else len(self._arrow)

    @property
    def objects(self) -> npt.NDArray[np.object_]:
        """Every id as a Python ``str`` (an object array; made on first use, then kept)."""
        if self._objects is None:
            self._objects = np.asarray(self._arrow.to_numpy(zero_copy_only=False), dtype=object)
        return self._objects

    @property
    def arrow(self) -> Any:
        """Every id as one Arrow ``string`` array (made on first use, then kept)."""
        if self._arrow is None:
            import pyarrow as pa

            self._arrow = pa.array(self._objects, type=pa.string())
        return self._arrow

    @overload
    def __getitem__(self, key: int | np.integer[Any]) -> str: ...

    @overload
    def __getitem__(self, key: slice) -> IdColumn: ...

    @overload
    def __getitem__(self, key: npt.NDArray[Any] | list[int]) -> npt.NDArray[np.object_]: ...

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int | np.integer):
            if self._objects is not None:
                return str(self._objects[key])
            i = int(key)
            return str(self._arrow[i + len(self) if i < 0 else i].as_py())
        if isinstance(key, slice):
            if self._objects is not None:
                return IdColumn(self._objects[key])
            start, stop, step = key.indices(len(self))
            if step == 1:
                return IdColumn(self._arrow.slice(start, max(stop - start, 0)))
            return IdColumn(self.take(np.arange(start, stop, step)))
        return self.take(key)

    def take(self, rows: npt.ArrayLike) -> npt.NDArray[np.object_]:
        """The ids at ``rows`` (positions, or a boolean mask) as an object array of ``str``."""
        idx = np.asarray(rows)
        if self._objects is not None:
            return self._objects[idx]  # type: ignore[no-any-return]
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = np.where(idx < 0, idx + len(self), idx) if idx.size and idx.min() < 0 else idx
        return self._arrow.take(idx.astype(np.int64, copy=False)).to_numpy(  # type: ignore[no-any-return]
            zero_copy_only=False
        )

    def select(self, rows: npt.ArrayLike) -> IdColumn:
        """The ids at ``rows`` as a new column, in the form this one holds."""
        idx = np.asarray(rows, dtype=np.intp)
        if self._objects is not None:
            return IdColumn(self._objects[idx])
        return IdColumn(self._arrow.take(idx.astype(np.int64, copy=False)))

    def arrow_take(self, rows: npt.ArrayLike) -> Any:
        """The ids at ``rows`` as an Arrow ``string`` array (for result tables)."""
        idx = np.asarray(rows, dtype=np.int64)
        if self._arrow is None:
            import pyarrow as pa

            return pa.array(self.objects[idx], type=pa.string())
        return self._arrow.take(idx)

    def sort_order(self, rows: npt.ArrayLike | None = None) -> npt.NDArray[np.intp]:
        """Positions that put the ids (of ``rows``, when given) in code-point order.

        Returns indices into ``rows`` when given, else row positions. Code-point order is
        numpy's order of ``str`` and Arrow's byte order of UTF-8 text alike.
        """
        import pyarrow.compute as pc

        text = self.arrow if rows is None else self.arrow_take(rows)
        return pc.sort_indices(text).to_numpy().astype(np.intp)  # type: ignore[no-any-return]

    def __iter__(self) -> Any:
        return iter(self.objects)

    def __repr__(self) -> str:
        return f"<IdColumn of {len(self)} ids>"


#: Ids as either form: an :class:`IdColumn` or an object array of ``str`` (rows of one).
Ids = IdColumn | npt.NDArray[np.object_]
