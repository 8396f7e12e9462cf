"""Files in and out: atomic writes, the guard against overwriting inputs, tables through Arrow.

Every file the library writes goes through :func:`atomic_write`: the content is written to a
temporary file in the target's folder, flushed and synced to disk, then renamed over the target
in one step (``os.replace``). A process killed mid-write leaves the previous file as it was, and
a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal, overload

import numpy as np

from fairalloc.errors import OutputError

__all__ = [
    "atomic_write",
    "check_not_input",
    "csv_bytes",
    "write_bytes",
    "write_table",
    "write_text",
]


@overload
@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: Literal["w"] = "w", *, encoding: str = "utf-8"
) -> Iterator[IO[str]]: ...
@overload
@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: Literal["wb"], *, encoding: str = "utf-8"
) -> Iterator[IO[bytes]]: ...
@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w", *, encoding: str = "utf-8"
) -> Iterator[IO[Any]]:
    r"""Open ``path`` for writing so that it changes all at once, or not at all.

    The file object is a temporary file beside ``path``; when the ``with`` block ends without an
    exception it is flushed, synced and renamed over ``path``. If the block raises (or the
    process dies), ``path`` keeps its previous content and the temporary file is removed.

    Args:
        path: The file to write.
        mode: ``"w"`` (text, with ``encoding``, line ends kept as written) or ``"wb"``.
        encoding: The text encoding for ``"w"``.

    Raises:
        OutputError: ``FA802`` if the folder does not exist or cannot be written.

    Examples:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_write(target) as fh:
        ...     _ = fh.write("all or nothing")
        >>> target.read_text()
        'all or nothing'
    """
    if mode not in ("w", "wb"):
        raise OutputError(
            "FA803", str(path), f"cannot open for writing in mode {mode!r}", "'w' or 'wb'"
        )
    target = Path(path)
    folder = target.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise OutputError(
            "FA802",
            str(target),
            f"cannot write here: {e.strerror or e}",
            "write into an existing folder you may write to",
        ) from e
    try:
        if mode == "wb":
            fh: IO[Any] = os.fdopen(fd, "wb")
        else:
            fh = os.fdopen(fd, "w", encoding=encoding, newline="")
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _keep_mode(target, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(folder)


def _keep_mode(target: Path, tmp: str) -> None:
    """Give the new file the old one's permissions (mkstemp makes it private), or the umask's."""
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, encoding=encoding) as fh:
        fh.write(text)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def check_not_input(
    out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None]
) -> None:
    """Refuse an output path that is one of a command's own inputs.

    Paths are compared as files, not as text: ``./data.csv``, ``data.csv`` and a hard or
    symbolic link to the same file are one file.

    Args:
        out: The path about to be written.
        inputs: The paths the command read (``None`` entries are skipped).

    Raises:
        OutputError: ``FA801`` if ``out`` is one of ``inputs``.

    Examples:
        >>> check_not_input("result.csv", ["policy.yaml", "residents.csv"])
        >>> try:
        ...     check_not_input("./residents.csv", ["policy.yaml", "residents.csv"])
        ... except OutputError as e:
        ...     print(e.code)
        FA801
    """
    target = Path(out)
    for given in inputs:
        if given is None:
            continue
        source = Path(given)
        if _same_file(target, source):
            raise OutputError(
                "FA801",
                str(out),
                "would overwrite an input of this command",
                "write the output to another file",
            )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return os.path.abspath(a) == os.path.abspath(b)


def write_table(
    path: str | os.PathLike[str],
    columns: Mapping[str, Any],
    *,
    text_columns: Iterable[str] = (),
    escape_formulas: bool = True,
    file_format: str | None = None,
) -> None:
    r"""Write columns as CSV or Parquet through Arrow, atomically.

    CSV is laid out as Python's ``csv`` module writes it (a cell is quoted only when it holds a
    comma, a quote or a line break; ``\n`` ends lines), numbers as Python writes them
    (``repr`` of floats), flags as ``True``/``False``, missing values as empty cells.

    Args:
        path: The file; ``.parquet`` writes Parquet, anything else CSV (unless ``file_format``).
        columns: Name to values (numpy arrays, lists or Arrow arrays; ``None`` is missing), in
            output order.
        text_columns: The columns holding text from the data or the policy (ids, names): in CSV
            these cells are neutralised against formula injection unless ``escape_formulas`` is
            false. Numeric columns are never changed.
        escape_formulas: Neutralise formula starts in text cells (CSV only).
        file_format: ``"csv"`` or ``"parquet"``; by default taken from the suffix.
    """
    import pyarrow as pa

    fmt = file_format or ("parquet" if Path(path).suffix.lower() == ".parquet" else "csv")
    arrays = {k: _arrow(v) for k, v in columns.items()}
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pa.table(arrays)
        _write_with(path, lambda sink: pq.write_table(table, sink))
        return
    texts = set(text_columns)
    with atomic_write(path, "wb") as fh:
        fh.write(csv_bytes(arrays, texts if escape_formulas else set()))


def _arrow(values: Any) -> Any:
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(values, from_pandas=False)


def csv_bytes(arrays: Mapping[str, Any], escape: set[str]) -> bytes:
    """Columns as CSV bytes (header first), vectorized; cells of ``escape`` neutralised."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from fairalloc._escape import csv_column, csv_text

    head = ",".join(_quoted(csv_text(k) if escape else k) for k in arrays) + "\n"
    if not arrays:
        return head.encode("utf-8")
    cells = []
    for name, col in arrays.items():
        text = _as_text(col)
        if name in escape:
            text = csv_column(text)
        if _is_text(col.type):  # numbers and flags never hold a comma, quote or line break
            needs = pc.match_substring_regex(text, r'[,"\r\n]')
            if pc.any(needs).as_py():
                quoted = pc.binary_join_element_wise(
                    '"', pc.replace_substring(text, '"', '""'), '"', ""
                )
                text = pc.if_else(needs, quoted, text)
        cells.append(pc.fill_null(text, ""))
    rows = pc.binary_join_element_wise(*cells, pa.scalar(","))
    lines = pc.binary_join_element_wise(rows, "\n", "").cast(pa.large_string())
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset :]
    data = lines.buffers()[2]
    body = b"" if data is None else data.to_pybytes()[offsets[0] : offsets[len(lines)]]
    return head.encode("utf-8") + body


def _quoted(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _as_text(col: Any) -> Any:
    """A column's cells as Python's csv module writes them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = col.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return col.cast(pa.string())
    if pa.types.is_boolean(kind):
        return pc.if_else(col, "True", "False")
    if pa.types.is_floating(kind):
        return _float_text(col)
    if pa.types.is_integer(kind) or pa.types.is_null(kind):
        return col.cast(pa.string())
    return pa.array([None if v is None else str(v) for v in col.to_pylist()], type=pa.string())


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _float_text(col: Any) -> Any:
    """Floats as Python's ``repr`` writes them; each distinct value formatted once."""
    import pyarrow as pa

    values = np.asarray(col.fill_null(0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
    # Distinct bit patterns, so that -0.0 and 0.0 (equal as numbers) keep their own text.
    distinct, where = np.unique(values.view(np.int64), return_inverse=True)
    if len(distinct) * 2 < len(values):
        shown = list(map(repr, distinct.view(np.float64).tolist()))
        text = pa.array(shown, type=pa.string()).take(where.ravel())
    else:
        text = pa.array(list(map(repr, values.tolist())), type=pa.string())
    if col.null_count:
        import pyarrow.compute as pc

        text = pc.if_else(col.is_null(), pa.scalar(None, pa.string()), text)
    return text


def _write_with(path: str | os.PathLike[str], write: Callable[[Any], None]) -> None:
    with atomic_write(path, "wb") as fh:
        write(fh)
