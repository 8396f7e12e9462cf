"""Merkle trees as Certificate Transparency builds them (RFC 9162, section 2.1).

* leaf hash: ``SHA-256(0x00 || leaf data)``; node hash: ``SHA-256(0x01 || left || right)``;
* the tree over ``n`` leaves splits at the largest power of two below ``n``; the empty tree's
  hash is ``SHA-256("")``;
* an inclusion proof is the list of sibling hashes from the leaf up (RFC 9162 2.1.3); a
  consistency proof shows that a tree of ``m`` leaves is a prefix of a tree of ``n`` leaves
  (RFC 9162 2.1.4).

Building level by level and carrying an odd last node up unchanged gives exactly the tree of
the RFC's recursive definition, which is how :class:`Tree` computes a million leaves at once.
The verification functions use nothing but :mod:`hashlib`, and are the recipe given to
residents and auditors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from itertools import repeat
from operator import methodcaller

from fairalloc.errors import RecordsError

__all__ = [
    "Tree",
    "consistency_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

_digest = methodcaller("digest")
_sha256 = hashlib.sha256
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    pairs = map(bytes.__add__, repeat(b"\x01"), map(bytes.__add__, level[0::2], level[1::2]))
    up = list(map(_digest, map(_sha256, pairs)))
    if len(level) % 2:
        up.append(level[-1])
    return up


class Tree:
    """A Merkle tree over leaf hashes, every level kept for proofs.

    Args:
        leaves: The leaf hashes (32 bytes each), in tree order.

    Examples:
        >>> t = Tree([leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")])
        >>> root_from_inclusion(2, 3, leaf_hash(b"c"), t.inclusion(2)) == t.root
        True
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.levels: list[Sequence[bytes]] = [leaves]
        while len(self.levels[-1]) > 1:
            self.levels.append(_next_level(self.levels[-1]))

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self.levels[0])

    @property
    def root(self) -> bytes:
        """The tree hash (``SHA-256("")`` for no leaves)."""
        top = self.levels[-1]
        return top[0] if len(top) else EMPTY_ROOT

    def inclusion(self, index: int) -> list[bytes]:
        """The inclusion proof (audit path) of the leaf at ``index``."""
        if not 0 <= index < self.size:
            raise RecordsError("FA704", f"leaf {index} is not in a tree of {self.size}")
        path = []
        for level in self.levels[:-1]:
            sib = index ^ 1
            if sib < len(level):
                path.append(level[sib])
            index >>= 1
        return path


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """The RFC 9162 tree hash over ``leaves`` (leaf hashes)."""
    level: Sequence[bytes] = leaves
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root an inclusion proof leads to (RFC 9162 2.1.3.2), or ``None`` if malformed."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``path`` proves ``leaf`` at ``index`` in the tree of ``size`` leaves ``root``."""
    return root_from_inclusion(index, size, leaf, path) == root


def consistency_proof(leaves: Sequence[bytes], m: int) -> list[bytes]:
    """The proof that the first ``m`` of ``leaves`` form a prefix tree (RFC 9162 2.1.4.1)."""
    n = len(leaves)
    if not 0 < m <= n:
        raise RecordsError("FA704", f"no consistency proof from {m} to {n} leaves")

    @cache
    def mth(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return leaves[lo]
        k = _split(hi - lo)
        return node_hash(mth(lo, lo + k), mth(lo + k, hi))

    def subproof(m: int, lo: int, hi: int, *, whole: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [mth(lo, hi)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, lo, lo + k, whole=whole), mth(lo + k, hi)]
        return [*subproof(m - k, lo + k, hi, whole=False), mth(lo, lo + k)]

    return subproof(m, 0, n, whole=True)


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def verify_consistency(
    m: int, n: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree ``old_root`` of ``m`` leaves is a prefix of ``new_root``.

    RFC 9162 2.1.4.2, with :mod:`hashlib` only.
    """
    if m == n:
        return old_root == new_root and not proof
    if not 0 < m < n or not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:  # m is a power of two: the old root is itself a node of the proof
        path.insert(0, old_root)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = hashlib.sha256(b"\x01" + c + fr).digest()
            sr = hashlib.sha256(b"\x01" + c + sr).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hashlib.sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
