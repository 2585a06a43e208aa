"""RFC 6962 hashing, proofs and their verification, against the RFC's own recursion
and the Certificate Transparency test vectors."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.domain import merkle

# Leaves and roots of the certificate-transparency project's tree tests.
CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def stored_tree(size: int) -> tuple[list[bytes], dict[merkle.Node, bytes]]:
    """Leaves and every stored node, built the way the log builds them."""
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    nodes: dict[merkle.Node, bytes] = {}
    tree = merkle.CompactRange()
    for i, leaf in enumerate(leaves):
        nodes[(0, i)] = leaf
        nodes.update(tree.append(leaf))
    return leaves, nodes


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_certificate_transparency_vectors(size):
    leaves = [merkle.leaf_hash(x) for x in CT_INPUTS[:size]]
    assert merkle.root_of(leaves).hex() == CT_ROOTS[size - 1]


def test_the_empty_tree_has_the_hash_of_nothing():
    assert merkle.root_of([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@given(st.integers(min_value=1, max_value=300))
def test_stored_nodes_give_the_rfc_root_of_every_size(size):
    leaves, nodes = stored_tree(size)
    assert merkle.range_hash(0, size, nodes) == merkle.reference_root(leaves)


@given(st.data())
def test_inclusion_proofs_verify_and_catch_a_wrong_leaf(data):
    size = data.draw(st.integers(min_value=1, max_value=300))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    leaves, nodes = stored_tree(size)
    root = merkle.reference_root(leaves)
    path = [
        merkle.range_hash(lo, hi, nodes)
        for lo, hi in merkle.inclusion_ranges(index, size)
    ]
    assert merkle.verify_inclusion(
        leaf=leaves[index], index=index, size=size, path=path, root=root
    )
    assert not merkle.verify_inclusion(
        leaf=merkle.leaf_hash(b"forged"), index=index, size=size, path=path, root=root
    )
    if size > 1:
        other = (index + 1) % size
        assert not merkle.verify_inclusion(
            leaf=leaves[index], index=other, size=size, path=path, root=root
        )


@given(st.data())
def test_consistency_proofs_verify_and_catch_a_rewritten_past(data):
    new_size = data.draw(st.integers(min_value=1, max_value=300))
    old_size = data.draw(st.integers(min_value=1, max_value=new_size))
    leaves, nodes = stored_tree(new_size)
    proof = [
        merkle.range_hash(lo, hi, nodes)
        for lo, hi in merkle.consistency_ranges(old_size, new_size)
    ]
    old_root = merkle.reference_root(leaves[:old_size])
    new_root = merkle.reference_root(leaves)
    assert merkle.verify_consistency(
        old_size=old_size,
        new_size=new_size,
        old_root=old_root,
        new_root=new_root,
        proof=proof,
    )
    rewritten = [merkle.leaf_hash(b"rewritten"), *leaves[1:old_size]]
    assert not merkle.verify_consistency(
        old_size=old_size,
        new_size=new_size,
        old_root=merkle.reference_root(rewritten),
        new_root=new_root,
        proof=proof,
    )


def test_push_grows_the_tree_as_append_does():
    """Verify's ``push`` keeps the same right edge as ``append`` at every size, so
    every prefix has the RFC's root."""
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(70)]
    appended, pushed = merkle.CompactRange(), merkle.CompactRange()
    for size, leaf in enumerate(leaves, start=1):
        appended.append(leaf)
        pushed.push(leaf)
        assert (pushed.size, pushed._edge) == (appended.size, appended._edge)
        assert pushed.root() == merkle.reference_root(leaves[:size])


def test_a_tree_resumes_from_its_stored_right_edge():
    leaves, nodes = stored_tree(45)
    for size in range(46):
        edge = merkle.CompactRange.edge_nodes(size)
        tree = merkle.CompactRange(
            size, {level: nodes[(level, i)] for level, i in edge}
        )
        for leaf in leaves[size:]:
            tree.append(leaf)
        assert tree.root() == merkle.reference_root(leaves)


def test_ranges_that_no_rfc_tree_has_are_refused():
    with pytest.raises(ValueError, match="not a subtree"):
        merkle.pieces(1, 3)
    with pytest.raises(ValueError, match="not in a tree"):
        merkle.inclusion_ranges(5, 5)
