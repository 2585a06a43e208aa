"""RFC 6962 Merkle tree hashing, proofs and their verification. Pure: no I/O.

Leaves are numbered from 0; the log entry with ``seq`` n is leaf n - 1. A stored tree
keeps the hash of every *perfect* subtree, addressed as ``(level, index)``: the node
covering leaves ``[index * 2**level, (index + 1) * 2**level)``. Every subtree the RFC's
recursion visits starts at a multiple of its largest power-of-two part, so any tree
hash or proof can be assembled from at most ``2 * log2(n)`` stored nodes.
"""

import hashlib
from collections.abc import Callable, Iterable, Mapping

Node = tuple[int, int]
"""``(level, index)`` of a perfect subtree."""
Range = tuple[int, int]
"""Leaves ``[lo, hi)``."""


_sha256 = hashlib.sha256


def leaf_hash(content: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + content).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def pieces(lo: int, hi: int) -> list[Node]:
    """The perfect subtrees whose right fold is MTH(D[lo:hi]), largest first."""
    if hi <= lo:
        raise ValueError(f"empty range [{lo}, {hi})")
    result: list[Node] = []
    while lo < hi:
        size = hi - lo
        level = size.bit_length() - 1
        if lo % (1 << level):
            raise ValueError(f"[{lo}, {hi}) is not a subtree of any RFC 6962 tree")
        result.append((level, lo >> level))
        lo += 1 << level
    return result


def fold(hashes: list[bytes]) -> bytes:
    """Combine the hashes of ``pieces()`` (largest first) into the subtree hash."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes form the audit path of leaf ``index`` (RFC 6962
    2.1.1), in the order the path lists them (nearest the leaf first)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The subtrees whose hashes form the consistency proof from ``old_size`` to
    ``new_size`` (RFC 6962 2.1.2), in the order the proof lists them."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size}")
    proof: list[Range] = []

    def subproof(m: int, lo: int, hi: int, complete: bool) -> None:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append((lo, hi))
            return
        k = _split(n)
        if m <= k:
            subproof(m, lo, lo + k, complete)
            proof.append((lo + k, hi))
        else:
            subproof(m - k, lo + k, hi, False)
            proof.append((lo, lo + k))

    if old_size < new_size:
        subproof(old_size, 0, new_size, True)
    return proof


def nodes_for(ranges: Iterable[Range]) -> set[Node]:
    return {node for lo, hi in ranges for node in pieces(lo, hi)}


def range_hash(lo: int, hi: int, nodes: Mapping[Node, bytes]) -> bytes:
    return fold([nodes[node] for node in pieces(lo, hi)])


class CompactRange:
    """The right edge of a growing tree: the root of every prefix in O(log n) memory,
    and the perfect subtrees that each appended leaf completes."""

    def __init__(self, size: int = 0, edge: Mapping[int, bytes] | None = None) -> None:
        self.size = size
        self._edge = dict(edge or {})  # level -> hash of the pending left subtree
        expected = {level for level in range(size.bit_length()) if size >> level & 1}
        if set(self._edge) != expected:
            raise ValueError(f"a tree of size {size} has edge levels {expected}")

    @staticmethod
    def edge_nodes(size: int) -> list[Node]:
        """The stored nodes that ``CompactRange(size, edge)`` needs."""
        return [
            (level, (size >> level) - 1)
            for level in range(size.bit_length())
            if size >> level & 1
        ]

    def append(self, leaf: bytes) -> list[tuple[Node, bytes]]:
        """Add a leaf hash; return the perfect subtrees (level >= 1) it completed."""
        index, digest, level = self.size, leaf, 0
        completed: list[tuple[Node, bytes]] = []
        while index >> level & 1:
            digest = node_hash(self._edge.pop(level), digest)
            level += 1
            completed.append(((level, index >> level), digest))
        self._edge[level] = digest
        self.size += 1
        return completed

    def push(self, leaf: bytes) -> None:
        """``append`` without listing the completed subtrees: verify adds a leaf
        per entry and needs only the roots."""
        index, digest, level, edge = self.size, leaf, 0, self._edge
        while index >> level & 1:
            digest = _sha256(b"\x01" + edge.pop(level) + digest).digest()
            level += 1
        edge[level] = digest
        self.size = index + 1

    def root(self) -> bytes:
        if self.size == 0:
            return EMPTY_ROOT
        return fold([self._edge[level] for level in sorted(self._edge, reverse=True)])


def root_of(leaves: Iterable[bytes]) -> bytes:
    tree = CompactRange()
    for leaf in leaves:
        tree.append(leaf)
    return tree.root()


def verify_inclusion(
    *, leaf: bytes, index: int, size: int, path: list[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does ``path`` prove leaf ``index`` in the tree ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    *,
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: list[bytes],
) -> bool:
    """RFC 9162 2.1.4.2: is the tree ``new_root`` an append-only extension of
    ``old_root``?"""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 6962 writes it, recursively: the yardstick for tests."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


NodeLookup = Callable[[set[Node]], Mapping[Node, bytes]]
