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
    """One text id per resident (no missing ids), held as given and made ``str`` on demand.

    Args:
        values: An Arrow ``string``/``large_string`` array without nulls; an object array of
            ``str``; an integer array (whole-number ids, whose text is their decimal digits);
            or another :class:`IdColumn` (shared, not copied).
    """

    __slots__ = ("_arrow", "_numbers", "_objects", "_order")

    _arrow: Any
    _objects: npt.NDArray[np.object_] | None
    _numbers: npt.NDArray[np.int64] | None
    _order: npt.NDArray[np.intp] | None

    def __init__(self, values: Any) -> None:
        self._arrow, self._objects, self._numbers = None, None, None
        self._order = None
        if isinstance(values, IdColumn):
            self._arrow, self._objects = values._arrow, values._objects
            self._numbers, self._order = values._numbers, values._order
        elif isinstance(values, np.ndarray) and values.dtype.kind in "iu":
            self._numbers = values.astype(np.int64, copy=False)
        elif isinstance(values, np.ndarray):
            self._objects = values if values.dtype == object else values.astype(object)
        elif type(values).__module__.split(".")[0] == "pyarrow":
            self._arrow = values
        else:
            self._objects = np.array(list(values), dtype=object)

    def __getstate__(self) -> tuple[Any, Any, Any]:
        # One form travels, the most compact held: numbers, else Arrow text, else str.
        if self._numbers is not None:
            return (None, None, self._numbers)
        if self._arrow is not None:
            return (self._arrow, None, None)
        return (None, self._objects, None)

    def __setstate__(self, state: tuple[Any, Any, Any]) -> None:
        self._arrow, self._objects, self._numbers = state
        self._order = None

    def __len__(self) -> int:
        for form in (self._numbers, self._objects, self._arrow):
            if form is not None:
                return len(form)
        raise AssertionError("an IdColumn holds one form at least")

    @property
    def objects(self) -> npt.NDArray[np.object_]:
        """Every id as a Python ``str`` (an object array; made on first use, then kept)."""
        if self._objects is None:
            if self._numbers is not None:
                self._objects = _strings(self._numbers)
            else:
                text = self._arrow.to_numpy(zero_copy_only=False)
                self._objects = np.asarray(text, dtype=object)
        return self._objects

    @property
    def arrow(self) -> Any:
        """Every id as one Arrow ``string`` array (made on first use, then kept)."""
        if self._arrow is None:
            if self._numbers is not None:
                self._arrow = _digits(self._numbers)
            else:
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
            if self._numbers is not None:
                return str(int(self._numbers[key]))
            i = int(key)
            return str(self._arrow[i + len(self) if i < 0 else i].as_py())
        if isinstance(key, slice):
            if self._objects is not None:
                return IdColumn(self._objects[key])
            if self._numbers is not None:
                return IdColumn(self._numbers[key])
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
        if self._numbers is not None:
            return _strings(self._numbers[idx])
        idx = np.where(idx < 0, idx + len(self), idx) if idx.size and idx.min() < 0 else idx
        taken = self.arrow.take(idx.astype(np.int64, copy=False))
        return np.asarray(taken.to_numpy(zero_copy_only=False), dtype=object)

    def select(self, rows: npt.ArrayLike) -> IdColumn:
        """The ids at ``rows`` as a new column, in the form this one holds."""
        idx = np.asarray(rows, dtype=np.intp)
        if self._objects is not None:
            out = IdColumn(self._objects[idx])
        elif self._numbers is not None:
            out = IdColumn(self._numbers[idx])
        else:
            out = IdColumn(self._arrow.take(idx.astype(np.int64, copy=False)))
        if self._order is not None and np.array_equal(idx, self._order):
            # Taken in id order: the new column's order is known without a look.
            order = np.arange(len(idx), dtype=np.intp)
            order.flags.writeable = False
            out._order = order
        return out

    def arrow_take(self, rows: npt.ArrayLike) -> Any:
        """The ids at ``rows`` as an Arrow ``string`` array (for result tables)."""
        idx = np.asarray(rows, dtype=np.int64)
        if self._arrow is not None:
            return self._arrow.take(idx)
        if self._numbers is not None:
            return _digits(self._numbers[idx])
        import pyarrow as pa

        return pa.array(self.objects[idx], type=pa.string())

    def sort_order(self, rows: npt.ArrayLike | None = None) -> npt.NDArray[np.intp]:
        """Positions that put the ids (of ``rows``, when given) in code-point order.

        Returns indices into ``rows`` when given, else row positions. Code-point order is
        numpy's order of ``str`` and Arrow's byte order of UTF-8 text alike. The order of the
        whole column is worked out once and kept (ids do not change); ids already in order
        (as after a :meth:`~fairalloc.Population.take` of this order) cost one comparison pass.
        """
        if rows is None and self._order is not None:
            return self._order
        import pyarrow.compute as pc

        text = self.arrow if rows is None else self.arrow_take(rows)
        n = len(text)
        if n < 2 or pc.all(pc.less_equal(text.slice(0, n - 1), text.slice(1))).as_py():
            order = np.arange(n, dtype=np.intp)
        else:
            order = np.asarray(pc.sort_indices(text).to_numpy(), dtype=np.intp)
        if rows is None:
            order.flags.writeable = False
            self._order = order
        return order

    def __iter__(self) -> Any:
        return iter(self.objects)

    def __repr__(self) -> str:
        return f"<IdColumn of {len(self)} ids>"


def _strings(numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
    """Whole numbers as an object array of their decimal digits (0.14 µs each, no Arrow)."""
    out = np.empty(len(numbers), dtype=object)
    out[:] = [str(v) for v in numbers.tolist()]
    return out


def _digits(numbers: npt.NDArray[np.int64]) -> Any:
    """Whole numbers as Arrow text, their decimal digits (``-7`` is ``"-7"``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    data = pa.Array.from_buffers(
        pa.int64(), len(numbers), [None, pa.py_buffer(np.ascontiguousarray(numbers))]
    )
    return pc.cast(data, pa.string())


#: Ids as either form: an :class:`IdColumn` or an object array of ``str`` (rows of one).
Ids = IdColumn | npt.NDArray[np.object_]
