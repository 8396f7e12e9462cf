"""Hiding commitments to residents' rows and outcomes, and the policy's canonical hash.

A resident's leaf is the RFC 9162 leaf hash of ``nonce || message``::

    leaf = SHA-256(0x00 || nonce || message)

where ``nonce`` is 32 random bytes drawn for that leaf alone and ``message`` the canonical JSON
of the resident's row (at a freeze) or outcome (at a decision). Without the nonce, the leaf
says nothing about the message, however few the plausible messages are; with it (the
resident's receipt, or the operator's private openings) anyone recomputes the leaf with
``hashlib``. Leaves are in the order of the residents' ids (code points, i.e. UTF-8 bytes).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from collections.abc import Iterable, Sized
from operator import methodcaller
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fairalloc._ids import IdColumn, Ids
from fairalloc.errors import RecordsError
from fairalloc.records._canonical import bare_array, bare_texts, canonical, json_text

if TYPE_CHECKING:
    from fairalloc._population import Population
    from fairalloc.allocation import Allocation
    from fairalloc.policy._model import Policy

__all__ = [
    "NONCE_BYTES",
    "commit",
    "fingerprint",
    "id_order",
    "leaf_of",
    "outcome_array",
    "outcome_messages",
    "policy_hash",
    "recommit",
    "row_array",
    "row_messages",
]

NONCE_BYTES = 32
_digest = methodcaller("digest")


def policy_hash(policy: Policy) -> str:
    """The SHA-256 (hex) of the policy document's canonical JSON.

    Formatting, comments, key order and values written out although they are the defaults
    do not change it; any change of meaning does.
    """
    doc = policy.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return hashlib.sha256(canonical(doc)).hexdigest()


def id_order(ids: Ids) -> npt.NDArray[np.intp]:
    """Row positions in leaf order: by id, in code-point order (:meth:`IdColumn.sort_order`)."""
    return IdColumn(ids).sort_order()


def row_messages(population: Population, order: npt.NDArray[np.intp]) -> list[bytes]:
    """Each resident's canonical row (every attribute of the policy), in ``order``."""
    return row_array(population, order).to_pylist()  # type: ignore[no-any-return]


def row_array(
    population: Population, order: npt.NDArray[np.intp], nonces: bytes | None = None
) -> Any:
    """:func:`row_messages` as one Arrow binary array, written column by column.

    With ``nonces``, each row comes framed for its leaf, behind ``0x00 || nonce``.
    """
    schema = population.schema
    keys = sorted(population.schema_attributes, key=lambda k: k.encode("utf-16-be"))
    # Attributes of few values (yes/no, categories, ordinals) are coded; a run of them next
    # to each other in key order is written once per combination that occurs, not per row.
    coded: dict[str, tuple[npt.NDArray[np.int64], list[str]]] = {}
    for name in keys:
        attr = schema.attributes[name]
        if attr.type in ("category", "ordinal") and name != schema.id_attribute:
            levels = [json_text(v) for v in attr.levels or []]
            coded[name] = (population.columns[name][order].astype(np.int64), levels)
        elif attr.type == "bool":
            values = population.decode(name)[order].astype(bool)
            coded[name] = (values.astype(np.int64), ["false", "true"])
    # The pieces joined row by row: literal text between the values, written once.
    pieces: list[Any] = [] if nonces is None else [_frames(nonces, len(order))]
    text = "{"
    first = True
    for is_coded, group in itertools.groupby(keys, key=lambda k: k in coded):
        run = list(group)
        if is_coded:
            for piece in _combined_runs(run, coded):
                text += "" if first else ","
                pieces += [text, piece]
                text, first = "", False
            continue
        for name in run:
            attr = schema.attributes[name]
            if name == schema.id_attribute:
                values, quote = _id_texts(population.id_column, order), True
            else:
                values, quote = bare_array(population.decode(name)[order], attr.type)
            text += ("" if first else ",") + json_text(name) + (':"' if quote else ":")
            pieces += [text, values]
            text, first = ('"' if quote else ""), False
    pieces.append(text + "}")
    return _join(pieces, len(order))


#: Combinations of coded values found by marking (below this many, or four per row) rather
#: than by sorting (0: always sorting).
_MARKED = 1 << 16


def _combined_runs(
    run: list[str], coded: dict[str, tuple[npt.NDArray[np.int64], list[str]]]
) -> list[Any]:
    """The ``"key":value,...`` texts of a run of coded attributes, one list per sub-run.

    A sub-run's codes are combined into one number (mixed radix, kept below 2**62); each
    combination that occurs is written once and taken by every row that has it.
    """
    out: list[Any] = []
    k = 0
    while k < len(run):
        j, size = k, 1
        while j < len(run) and (j == k or size * len(coded[run[j]][1]) < 2**62):
            size *= len(coded[run[j]][1])
            j += 1
        sub = run[k:j]
        combined = np.zeros(len(coded[sub[0]][0]), dtype=np.int64)
        for name in sub:
            codes, levels = coded[name]
            combined = combined * len(levels) + codes
        if _MARKED and size <= max(4 * len(combined), _MARKED):
            # Few enough combinations to mark: which occur, and each row's rank among them,
            # by one pass each instead of a sort.
            seen = np.zeros(size, dtype=bool)
            seen[combined] = True
            uniq = np.flatnonzero(seen)
            rank = np.cumsum(seen) - 1
            inverse = rank[combined]
        else:
            uniq, inverse = np.unique(combined, return_inverse=True)
        texts = []
        for value in uniq.tolist():
            items = []
            for name in reversed(sub):
                levels = coded[name][1]
                value, code = divmod(value, len(levels))
                items.append(json_text(name) + ":" + levels[code])
            texts.append(",".join(reversed(items)))
        out.append(pa.array(texts, type=pa.string()).take(pa.array(inverse.reshape(-1))))
        k = j
    return out


def outcome_messages(allocation: Allocation, order: npt.NDArray[np.intp]) -> list[bytes]:
    """Each resident's canonical outcome, in ``order``.

    An outcome is ``{"category", "eligible", "id", "position", "rank", "score_micro",
    "served"}``: the category served in (or ``null``), whether eligible, the id, the place in
    the allocation's order and in the ranking (``null`` when none), the score in millionths and
    whether served.
    """
    return outcome_array(allocation, order).to_pylist()  # type: ignore[no-any-return]


def outcome_array(
    allocation: Allocation, order: npt.NDArray[np.intp], nonces: bytes | None = None
) -> Any:
    """:func:`outcome_messages` as one Arrow binary array, written column by column.

    Category and eligibility open the message and served closes it: each combination is
    written once; the numbers are written by Arrow (a position or rank of 0 is none); the
    pieces are joined row by row by Arrow, with no Python object per resident. With
    ``nonces``, each message comes framed for its leaf, behind ``0x00 || nonce``
    (:func:`framed_leaves` hashes them).
    """
    ev = allocation.evaluation
    cats = ["null", *(json_text(c) for c in allocation.categories)]
    head = pa.array(
        [f'{{"category":{c},"eligible":{e},"id":"' for c in cats for e in ("false", "true")]
    )
    pick = (allocation.category[order].astype(np.int64) + 1) * 2 + ev.eligible[order]
    served = pa.array(["false}", "true}"]).take(pa.array(allocation.served[order].astype(np.int8)))
    pieces = [
        head.take(pa.array(pick)),
        _id_texts(ev.id_column, order),
        '","position":',
        _number_array(allocation.position[order]),
        ',"rank":',
        _number_array(ev.ranking.rank[order]),
        ',"score_micro":',
        _number_array(ev.score_micro[order], zero_is_none=False),
        ',"served":',
        served,
    ]
    if nonces is not None:
        pieces.insert(0, _frames(nonces, len(order)))
    return _join(pieces, len(order))


def _join(pieces: list[Any], n: int) -> Any:
    """Each row's pieces (Arrow arrays, or text written in every row) joined, as binary.

    Arrow's ``binary`` (32-bit offsets) joins twice as fast as ``large_binary``, and text
    becomes binary without a copy: it is used unless the whole passes 2 GiB.
    """
    size = 0
    for p in pieces:
        size += len(p.encode("utf-8")) * n if isinstance(p, str) else _bytes_in(p)
    kind = pa.binary() if size < 2**31 - 1 else pa.large_binary()
    return pc.binary_join_element_wise(
        *(
            pa.scalar(p.encode("utf-8"), type=kind) if isinstance(p, str) else p.cast(kind)
            for p in pieces
        ),
        pa.scalar(b"", type=kind),
    )


def _bytes_in(array: Any) -> int:
    if pa.types.is_fixed_size_binary(array.type):
        return int(array.type.byte_width) * len(array)
    return int(pc.sum(pc.binary_length(array)).as_py() or 0)


#: A character JSON writes escaped inside a string (with ``ensure_ascii=False``).
_ESCAPED = r'["\\\x00-\x1f]'


def _id_texts(ids: IdColumn, order: npt.NDArray[np.intp]) -> Any:
    """The ids at ``order`` as the inside of JSON strings (Arrow text)."""
    text = ids.arrow_take(order)
    if not pc.any(pc.match_substring_regex(text, _ESCAPED)).as_py():
        return text  # nothing to escape: the ids are their own JSON text
    return pa.array(bare_texts(ids[order], "str")[0], type=pa.string())


def _frames(nonces: bytes, n: int) -> Any:
    """``0x00 || nonce`` for each of ``n`` leaves, as Arrow binary."""
    if len(nonces) != n * NONCE_BYTES:
        raise RecordsError("FA705", f"{len(nonces) // NONCE_BYTES} nonces for {n} messages")
    framed = np.zeros((n, NONCE_BYTES + 1), dtype=np.uint8)
    framed[:, 1:] = np.frombuffer(nonces, dtype=np.uint8).reshape(n, NONCE_BYTES)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(NONCE_BYTES + 1), n, [None, pa.py_buffer(framed)]
    )


def framed_leaves(framed: Any) -> list[bytes]:
    """The leaves of messages framed behind their ``0x00 || nonce`` in one Arrow array.

    Each is hashed where it lies in the array's buffer: no Python object per message but the
    view hashed and the leaf.
    """
    n = len(framed)
    if framed.null_count:
        raise RecordsError("FA705", "a message is missing (null)")
    if not n:
        return []
    width = 8 if pa.types.is_large_binary(framed.type) else 4
    offsets = np.frombuffer(
        framed.buffers()[1],
        dtype=np.int64 if width == 8 else np.int32,
        count=n + 1,
        offset=framed.offset * width,
    )
    data = memoryview(framed.buffers()[2])
    sha256 = hashlib.sha256
    return [sha256(data[a:b]).digest() for a, b in itertools.pairwise(offsets.tolist())]


def _number_array(values: npt.NDArray[Any], *, zero_is_none: bool = True) -> Any:
    """Whole numbers as decimal text (Arrow); with ``zero_is_none``, 0 as ``null``."""
    numbers = values.astype(np.int64)
    mask = numbers == 0 if zero_is_none else None
    return pc.fill_null(pc.cast(pa.array(numbers, mask=mask), pa.string()), "null")


def fingerprint(population: Population, order: npt.NDArray[np.intp]) -> str:
    """A SHA-256 over the population's columns in leaf order, for the operator's store only.

    Equal fingerprints mean equal canonical rows, so data already checked against a freeze
    need not be committed again row by row. It is a plain hash of residents' data: it is kept
    with the private openings and never published.
    """
    h = hashlib.sha256(b"fairalloc population fingerprint 2\x00")
    h.update(policy_hash(population.schema).encode("ascii"))
    # The ids as fixed-width UTF-32 (the width is the longest id's): the same ids give the
    # same bytes in any process, without a Python string per resident. (Ids hold no control
    # characters, so the padding NULs cannot be part of one.)
    ids = np.ascontiguousarray(population.id_column[order].astype(str))
    h.update(f"\x00ids\x00{ids.dtype.str}\x00".encode())
    h.update(ids.tobytes())
    for name in sorted(population.columns):
        col = np.ascontiguousarray(population.columns[name][order])
        h.update(f"\x00{name}\x00{col.dtype.str}\x00".encode())
        h.update(col.tobytes() if col.dtype != object else json.dumps(col.tolist()).encode())
    return h.hexdigest()


def commit(messages: Iterable[bytes], n: int | None = None) -> tuple[bytes, list[bytes]]:
    """Fresh nonces for ``messages`` and their leaves: ``(nonces, leaf hashes)``.

    ``messages`` may be an iterator (each is hashed and let go) when ``n`` gives their number.
    """
    count = len(messages) if isinstance(messages, Sized) else n
    if count is None:
        raise RecordsError("FA705", "commit() needs n, the number of messages, for an iterator")
    nonces = secrets.token_bytes(NONCE_BYTES * count)
    return nonces, recommit(messages, nonces)


def recommit(messages: Iterable[bytes], nonces: bytes) -> list[bytes]:
    """The leaves of ``messages`` under the given nonces (32 bytes each, in order).

    ``messages`` may be an iterator: the nonces then say how many there are at most.
    """
    framed = getattr(messages, "framed", lambda _: None)(nonces)
    if framed is not None:
        return framed_leaves(framed)
    n = len(messages) if isinstance(messages, Sized) else len(nonces) // NONCE_BYTES
    framed = np.zeros((n, NONCE_BYTES + 1), dtype=np.uint8)
    framed[:, 1:] = np.frombuffer(nonces, dtype=np.uint8, count=n * NONCE_BYTES).reshape(
        n, NONCE_BYTES
    )
    blob = framed.tobytes()
    w = NONCE_BYTES + 1
    prefixes = [blob[i : i + w] for i in range(0, n * w, w)]
    stream = iter(messages)
    leaves = list(map(_digest, map(hashlib.sha256, map(bytes.__add__, prefixes, stream))))
    if len(leaves) != n or next(stream, None) is not None:
        raise RecordsError("FA705", f"{n} nonces for another number of messages")
    return leaves


def leaf_of(nonce: bytes, message: bytes) -> bytes:
    """One leaf: ``SHA-256(0x00 || nonce || message)``."""
    return hashlib.sha256(b"\x00" + nonce + message).digest()
