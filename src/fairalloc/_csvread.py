r"""Reading residents' CSV and Parquet files through Arrow, with every problem located.

Arrow parses the file (in parallel, every cell as text); this module turns whatever goes wrong
into :class:`~fairalloc.errors.PopulationError` issues that name lines. Arrow's rows carry no
line numbers, so lines are found, only when a message needs them, by a scan of the bytes that
follows the same rules as the parser: a record ends at a line break outside quotes (``\\n``,
``\\r\\n`` or ``\\r``); a cell that starts with ``"`` is quoted up to the next lone ``"``
(``""`` inside is one quote); blank lines are skipped.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from fairalloc._population import check_columns
from fairalloc.errors import MAX_LISTED, PopulationError, PopulationIssue

__all__ = ["CsvTable", "LineIndex", "read_csv_bytes", "read_parquet"]

# One cell: quoted (up to the closing quote, or the end of the data when it never comes) and
# then any unquoted rest, or unquoted up to the next comma or line break.
_CELL = rb'(?:"(?:[^"]|"")*(?:"|\Z)[^,\r\n]*|[^,\r\n]*)'
_RECORD = re.compile(_CELL + rb"(?:," + _CELL + rb")*(\r\n|\n|\r|\Z)")
_CELL_RE = re.compile(_CELL)
_UTF8 = frozenset({"utf-8", "utf_8", "utf8", "utf-8-sig", "utf_8_sig", "u8"})
_BOM = b"\xef\xbb\xbf"


@dataclass
class LineIndex:
    """Where each record of a CSV file starts, found by a scan made at most once.

    ``lines[k]`` is the 1-based line of the ``k``-th non-blank record (the header is record 0)
    and ``widths[k]`` its number of cells.
    """

    data: bytes
    _lines: npt.NDArray[np.int64] | None = field(default=None, repr=False)
    _widths: list[int] = field(default_factory=list, repr=False)

    def _scan(self) -> None:
        data = self.data
        buf = np.frombuffer(data, dtype=np.uint8)
        lf = np.flatnonzero(buf == 10)
        cr = np.flatnonzero(buf == 13)
        lone_cr = cr[~np.isin(cr + 1, lf)]
        breaks = np.sort(np.concatenate([lf, lone_cr]))
        starts: list[int] = []
        widths: list[int] = []
        pos = len(_BOM) if data.startswith(_BOM) else 0
        end = len(data)
        while pos < end:
            m = _RECORD.match(data, pos)
            if m is None or m.end() == pos:  # cannot happen: every cell may be empty
                break
            if m.start(1) > pos:  # a blank line is skipped, as the parser does
                starts.append(pos)
                widths.append(_width(data[pos : m.start(1)]))
            pos = m.end()
        self._lines = np.searchsorted(breaks, np.asarray(starts, dtype=np.int64)) + 1
        self._widths = widths

    @property
    def lines(self) -> npt.NDArray[np.int64]:
        """The line of every non-blank record, the header first."""
        if self._lines is None:
            self._scan()
        assert self._lines is not None
        return self._lines

    @property
    def widths(self) -> list[int]:
        """The number of cells of every non-blank record."""
        if self._lines is None:
            self._scan()
        return self._widths


def _width(record: bytes) -> int:
    if b'"' not in record:
        return record.count(b",") + 1
    n, pos = 1, 0
    while True:
        m = _CELL_RE.match(record, pos)
        assert m is not None
        pos = m.end()
        if pos >= len(record):
            return n
        n += 1
        pos += 1  # the comma


@dataclass
class CsvTable:
    """A CSV file read: the column names, one Arrow column each, and the line index.

    Columns are text, except those read as numbers because ``numbers`` asked for it and every
    cell held a plain number (an empty cell is then null).
    """

    names: list[str]
    columns: list[Any]
    lines: LineIndex
    rows: int


def read_csv_bytes(
    data: bytes, source: str, encoding: str = "utf-8", numbers: Mapping[str, str] | None = None
) -> CsvTable:
    """Parse a CSV file's bytes: every cell as text (an empty cell is ``""``).

    Args:
        data: The file's bytes.
        source: How messages name the file.
        encoding: The file's text encoding.
        numbers: Column names to read as numbers where the whole column allows it
            (``"int"`` or ``"float"``); any column that does not parse that way is text.

    Raises:
        PopulationError: ``FA501`` for an empty file, ``FA511`` for bytes that are not text in
            ``encoding`` (with the line), ``FA502`` for rows of another width than the header
            (every such line), ``FA509`` for a column name given twice (every position),
            ``FA512`` for a file that cannot be parsed at all.
    """
    data = _as_utf8(data, source, encoding)
    start = len(_BOM) if data.startswith(_BOM) else 0
    if re.compile(rb"[^\r\n]").search(data, start) is None:
        raise PopulationError(
            [
                PopulationIssue(
                    "FA501", "", "the file is empty: a header row is needed", ids=("line 1",)
                )
            ],
            source=source,
        )
    if b"\x00" in data:
        raise _nul(data, source)
    index = LineIndex(data)
    names = _header(data, start, source)
    check_columns(names, source)
    width = len(names)
    types = {name: pa.string() for name in names}
    for name, kind in (numbers or {}).items():
        if name in types:
            types[name] = pa.int64() if kind == "int" else pa.float64()
    table: Any = None
    invalid: list[str] = []
    if any(t != pa.string() for t in types.values()):
        table, invalid = _parse(data, names, types, quiet=True)
        if table is not None and not _plain_numbers(table, types):
            table = None
    if table is None:
        table, invalid = _parse(data, names, dict.fromkeys(names, pa.string()), quiet=False)
    if table is None:
        raise _unreadable(data, source, invalid)
    if invalid:
        _raise_ragged(index, invalid, source, width)
    columns = [table.column(j) for j in range(width)]
    return CsvTable(names, columns, index, table.num_rows)


def _nul(data: bytes, source: str) -> PopulationError:
    """NUL bytes are no text: a file holding them is binary, or UTF-16 read as UTF-8."""
    at = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0)
    breaks = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    lines = np.unique(np.searchsorted(breaks, at) + 1)
    return PopulationError(
        [
            PopulationIssue(
                "FA511",
                "",
                "NUL bytes, which no text holds (a binary file, or UTF-16 read as UTF-8?)",
                ids=tuple(f"line {k}" for k in lines[:MAX_LISTED]),
                valid="text without NUL bytes (or give the file's encoding, e.g. utf-16)",
                count=len(lines),
            )
        ],
        source=source,
    )


def _header(data: bytes, start: int, source: str) -> list[str]:
    """The header's cells, unquoted as the parser does, without spaces around them."""
    pos = start
    while True:
        m = _RECORD.match(data, pos)
        assert m is not None
        if m.start(1) > pos:
            break
        pos = m.end()
    record = data[pos : m.start(1)]
    cells: list[str] = []
    at = 0
    while True:
        cell = _CELL_RE.match(record, at)
        assert cell is not None
        raw = cell.group()
        if raw.startswith(b'"'):
            quoted = re.match(rb'"((?:[^"]|"")*)"?', raw)
            assert quoted is not None
            raw = quoted.group(1).replace(b'""', b'"') + raw[quoted.end() :]
        try:
            cells.append(raw.decode("utf-8").strip())
        except UnicodeDecodeError as e:
            raise _not_text(data, e, source, "utf-8", offset=pos + at) from None
        at = cell.end()
        if at >= len(record):
            return cells
        at += 1


def _plain_numbers(table: Any, types: Mapping[str, Any]) -> bool:
    """Whether the columns read as numbers hold no NaN or infinity (read from `nan`, `inf`)."""
    import pyarrow.compute as pc

    for j, kind in enumerate(types.values()):
        if pa.types.is_floating(kind):
            col = table.column(j)
            if pc.any(pc.invert(pc.is_finite(col))).as_py():
                return False
    return True


def _as_utf8(data: bytes, source: str, encoding: str) -> bytes:
    try:
        name = codecs.lookup(encoding).name
    except LookupError as e:
        raise PopulationError(
            [
                PopulationIssue(
                    "FA513",
                    "",
                    f"no text encoding is named {encoding!r}",
                    ids=("the whole file",),
                    valid="an encoding Python knows, such as utf-8, cp1252 or utf-16",
                )
            ],
            source=source,
        ) from e
    if name in _UTF8 or encoding.lower() in _UTF8:
        # Checked before parsing: the parser would meet bad bytes in worker threads, and a
        # row it hands back for a decision must be text.
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _not_text(data, e, source, "utf-8") from None
        return data
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise _not_text(data, e, source, encoding) from None
    return text.encode("utf-8")


def _not_text(
    data: bytes, e: UnicodeDecodeError, source: str, encoding: str, offset: int = 0
) -> PopulationError:
    at = offset + e.start
    line = data.count(b"\n", 0, at) + 1
    bad = data[at : offset + e.end]
    name = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
    return PopulationError(
        [
            PopulationIssue(
                "FA511",
                "",
                f"bytes that are not {name} text",
                ids=(f"line {line}",),
                values=(repr(bad),),
                valid=f"text encoded as {name} (or give the file's encoding)",
                count=1,
            )
        ],
        source=source,
    )


def _parse(
    data: bytes, names: list[str], types: Mapping[str, Any], *, quiet: bool
) -> tuple[Any, list[str]]:
    """The data rows (None if Arrow refused the file) and the text of every row of another width.

    ``quiet`` gives up at the first refusal (a typed read that can fall back to text).
    """
    invalid: list[str] = []

    def skip(row: Any) -> str:
        try:
            text = str(row.text)
        except (UnicodeDecodeError, ValueError):  # Arrow decodes the row's text for us
            text = "(not UTF-8)"
        invalid.append(text)
        return "skip"

    fields = [f"f{j}" for j in range(len(names))]
    convert = pacsv.ConvertOptions(
        column_types=dict(zip(fields, types.values(), strict=True)),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        null_values=[""],
    )
    parse = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=skip)
    # A record longer than a block cannot be parsed in blocks: read such a file as one block.
    for block in (1 << 22, len(data) + 1):
        invalid.clear()
        read = pacsv.ReadOptions(column_names=fields, skip_rows_after_names=1, block_size=block)
        try:
            table = pacsv.read_csv(
                pa.py_buffer(data), read_options=read, parse_options=parse, convert_options=convert
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            if quiet:
                return None, []
            continue
        return table, invalid
    return None, []


def _unreadable(data: bytes, source: str, invalid: list[str]) -> PopulationError:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return _not_text(data, e, source, "utf-8")
    last = data.count(b"\n") + 1
    return PopulationError(
        [
            PopulationIssue(
                "FA512",
                "",
                "the file cannot be read as CSV",
                ids=(f"lines 1 to {last}",),
                valid="comma-separated values with a header row",
            )
        ],
        source=source,
    )


def _raise_ragged(index: LineIndex, invalid: list[str], source: str, width: int) -> None:
    widths = index.widths
    bad = [k for k, w in enumerate(widths) if w != width]
    if bad:
        ids = tuple(f"line {index.lines[k]}" for k in bad[:MAX_LISTED])
        values = tuple(str(widths[k]) for k in bad[:MAX_LISTED])
        count = len(bad)
    else:  # the scan found no such row: name the rows by their text
        ids = tuple(f"row {t[:30]!r}" for t in invalid[:MAX_LISTED])
        values = ()
        count = len(invalid)
    raise PopulationError(
        [
            PopulationIssue(
                "FA502",
                "",
                f"rows with other than {width} cells",
                ids=ids,
                values=values,
                valid=f"{width} cells, as in the header",
                count=count,
            )
        ],
        source=source,
    )


def read_parquet(path: Any, source: str) -> pa.Table:
    """A Parquet file as an Arrow table.

    Raises:
        PopulationError: ``FA512`` if the file is not a Parquet file Arrow can read.
    """
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (pa.ArrowException, ValueError) as e:
        raise PopulationError(
            [
                PopulationIssue(
                    "FA512",
                    "",
                    f"the file cannot be read as Parquet: {e}",
                    ids=("the whole file",),
                    valid="a Parquet file",
                )
            ],
            source=source,
        ) from None
