"""Meshes indexing, extend, joins, copies and devices; textures carried through (duck-typed fake)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffras.structures import Meshes, join_meshes_as_batch, join_meshes_as_scene

sys.path.insert(0, str(Path(__file__).parent))
from _mesh_batches import mesh_batches, random_lists  # noqa: E402


class FakeTextures:
    """Minimal textures object following the contract: one tag tensor (N,) recording mesh identity."""

    def __init__(self, tags: torch.Tensor):
        self.tags = tags
        self.calls = []

    def __len__(self):
        return self.tags.shape[0]

    @property
    def device(self):
        return self.tags.device

    def clone(self):
        return FakeTextures(self.tags.clone())

    def detach(self):
        return FakeTextures(self.tags.detach())

    def to(self, device):
        return FakeTextures(self.tags.to(device))

    def extend(self, n):
        return FakeTextures(self.tags.repeat_interleave(n))

    def __getitem__(self, index):
        t = self.tags[index]
        return FakeTextures(t.reshape(-1))

    def join_batch(self, others):
        return FakeTextures(torch.cat([self.tags] + [o.tags for o in others]))

    def join_scene(self):
        return FakeTextures(self.tags.sum().reshape(1))


def _same_mesh(a, b, i, j):
    va, fa = a.get_mesh_verts_faces(i)
    vb, fb = b.get_mesh_verts_faces(j)
    return torch.equal(va, vb) and torch.equal(fa, fb)


@settings(max_examples=20, deadline=None)
@given(mesh_batches(), st.data())
def test_getitem_all_index_kinds(batch, data):
    verts, faces = batch
    n = len(verts)
    m = Meshes(verts, faces, textures=FakeTextures(torch.arange(n) * 10))
    idx = data.draw(st.lists(st.integers(-n, n - 1), min_size=0, max_size=5))
    mask = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    start, stop = sorted(data.draw(st.lists(st.integers(0, n), min_size=2, max_size=2)))
    cases = [
        (idx, [i % n for i in idx]),
        (torch.tensor(idx, dtype=torch.int64), [i % n for i in idx]),
        (torch.tensor(mask), [i for i in range(n) if mask[i]]),
        (slice(start, stop), list(range(start, stop))),
        (slice(None, None, -1), list(range(n))[::-1]),
    ]
    for index, expected in cases:
        sub = m[index]
        assert len(sub) == len(expected)
        for j, i in enumerate(expected):
            assert _same_mesh(sub, m, j, i)
        assert sub.textures.tags.tolist() == [10 * i for i in expected]
        # the packed faces of the sub-batch index its own packed vertices
        ref = Meshes([verts[i] for i in expected], [faces[i] for i in expected]) if expected else None
        if ref is not None:
            assert torch.equal(sub.faces_packed(), ref.faces_packed())
    k = data.draw(st.integers(-n, n - 1))
    one = m[k]
    assert len(one) == 1 and _same_mesh(one, m, 0, k % n)


def test_getitem_gradient_and_errors():
    verts, faces = random_lists([(4, 3), (5, 2), (3, 1)], 0, dtype=torch.float64)
    leaves = [v.requires_grad_(True) for v in verts]
    m = Meshes(leaves, faces)
    m[[2, 0]].verts_normals_packed().sum().backward()
    assert leaves[1].grad is None or leaves[1].grad.abs().sum() == 0
    assert leaves[0].grad is not None and leaves[2].grad is not None
    with pytest.raises(IndexError):
        m[3]
    with pytest.raises(IndexError):
        m[[0, -4]]
    with pytest.raises(IndexError):
        m[torch.tensor([5])]
    with pytest.raises(IndexError, match="index"):
        m[torch.tensor([True, False])]
    with pytest.raises(TypeError, match="index"):
        m[1.5]
    with pytest.raises(TypeError, match="index"):
        m[torch.tensor([0.0])]
    with pytest.raises(TypeError, match="index"):
        m[True]


@settings(max_examples=20, deadline=None)
@given(mesh_batches(max_n=3), st.integers(1, 3))
def test_extend(batch, k):
    verts, faces = batch
    n = len(verts)
    m = Meshes(verts, faces, textures=FakeTextures(torch.arange(n)))
    e = m.extend(k)
    assert len(e) == n * k
    for i in range(n):
        for r in range(k):
            assert _same_mesh(e, m, i * k + r, i)
    assert e.textures.tags.tolist() == [i for i in range(n) for _ in range(k)]


def test_extend_copies_and_is_differentiable():
    verts, faces = random_lists([(4, 3)], 0, dtype=torch.float64)
    v = verts[0].requires_grad_(True)
    e = Meshes([v], faces).extend(3)
    assert e.verts_packed().data_ptr() != v.data_ptr()
    e.verts_packed().sum().backward()
    torch.testing.assert_close(v.grad, torch.full_like(v, 3.0))
    with pytest.raises(ValueError, match="n"):
        Meshes([v], faces).extend(0)
    with pytest.raises(TypeError, match="n"):
        Meshes([v], faces).extend(2.0)


@settings(max_examples=20, deadline=None)
@given(mesh_batches(max_n=3), mesh_batches(max_n=3))
def test_join_as_batch_and_scene(b1, b2):
    m1 = Meshes(*b1, textures=FakeTextures(torch.arange(len(b1[0]))))
    m2 = Meshes(*b2, textures=FakeTextures(100 + torch.arange(len(b2[0]))))
    j = join_meshes_as_batch([m1, m2])
    ref = Meshes(b1[0] + b2[0], b1[1] + b2[1])
    assert len(j) == len(m1) + len(m2)
    assert torch.equal(j.verts_packed(), ref.verts_packed())
    assert torch.equal(j.faces_packed(), ref.faces_packed())
    assert torch.equal(j.faces_padded(), ref.faces_padded())
    assert j.textures.tags.tolist() == m1.textures.tags.tolist() + m2.textures.tags.tolist()
    s = join_meshes_as_scene([m1, m2])
    assert len(s) == 1
    assert torch.equal(s.verts_list()[0], ref.verts_packed())
    assert torch.equal(s.faces_list()[0], ref.faces_packed())
    assert s.textures.tags.tolist() == [int(j.textures.tags.sum())]
    assert join_meshes_as_scene(j, include_textures=False).textures is None
    assert torch.equal(join_meshes_as_scene(j).faces_packed(), s.faces_packed())


def test_join_gradients_and_errors():
    verts, faces = random_lists([(4, 3), (3, 1)], 0, dtype=torch.float64)
    leaves = [v.requires_grad_(True) for v in verts]
    a, b = Meshes(leaves[:1], faces[:1]), Meshes(leaves[1:], faces[1:])
    join_meshes_as_scene([a, b]).verts_normals_packed().pow(2).sum().backward()
    assert all(v.grad is not None for v in leaves)
    with pytest.raises(TypeError, match="meshes"):
        join_meshes_as_batch([])
    with pytest.raises(TypeError, match="meshes"):
        join_meshes_as_batch(a)
    with pytest.raises(TypeError, match=r"meshes\[1\]"):
        join_meshes_as_batch([a, "b"])
    with pytest.raises(ValueError, match="textures"):
        join_meshes_as_batch([a, Meshes(verts[1:], faces[1:], textures=FakeTextures(torch.zeros(1)))])
    with pytest.raises(TypeError, match=r"meshes\[1\]"):
        join_meshes_as_batch([a, Meshes([verts[1].detach().float()], faces[1:])])
    with pytest.raises(TypeError, match="meshes"):
        join_meshes_as_scene(3)
    with pytest.raises(TypeError, match="include_textures"):
        join_meshes_as_batch([a, b], include_textures="no")
    mixed = [a, Meshes(verts[1:], faces[1:], textures=FakeTextures(torch.zeros(1)))]
    assert join_meshes_as_batch(mixed, include_textures=False).textures is None
    with pytest.raises(TypeError, match="include_textures"):
        join_meshes_as_scene(a, include_textures=1)


def test_split():
    verts, faces = random_lists([(4, 3), (3, 1), (5, 2)], 0)
    m = Meshes(verts, faces, textures=FakeTextures(torch.arange(3)))
    parts = m.split([1, 0, 2])
    assert [len(p) for p in parts] == [1, 0, 2]
    assert _same_mesh(parts[0], m, 0, 0) and _same_mesh(parts[2], m, 1, 2)
    assert parts[2].textures.tags.tolist() == [1, 2]
    with pytest.raises(ValueError, match="split_sizes"):
        m.split([1, 1])
    with pytest.raises(ValueError, match=r"split_sizes\[0\]"):
        m.split([-1, 4])
    with pytest.raises(TypeError, match="split_sizes"):
        m.split(3)


def test_clone_detach_to():
    verts, faces = random_lists([(4, 3), (3, 1)], 0)
    leaves = [v.requires_grad_(True) for v in verts]
    m = Meshes(leaves, faces, textures=FakeTextures(torch.tensor([1, 2])))
    c = m.clone()
    assert c.verts_packed().data_ptr() != m.verts_packed().data_ptr()
    assert c.faces_packed().data_ptr() != m.faces_packed().data_ptr()
    assert torch.equal(c.verts_packed(), m.verts_packed()) and c.textures is not m.textures
    assert c.textures.tags.tolist() == [1, 2]
    c.verts_packed().sum().backward()
    assert leaves[0].grad is not None  # clone is differentiable
    d = m.detach()
    assert not d.verts_packed().requires_grad and torch.equal(d.faces_packed(), m.faces_packed())
    assert d.textures.tags.tolist() == [1, 2]
    assert m.to(m.device) is m
    assert m.cpu() is m
    m64 = m.to(dtype=torch.float64)
    assert m64.dtype == torch.float64 and m64.verts_normals_packed().dtype == torch.float64
    assert len(m) == 2 and "Meshes(N=2" in repr(m)


def test_textures_batch_size_checked():
    verts, faces = random_lists([(4, 3), (3, 1)], 0)
    with pytest.raises(ValueError, match="textures"):
        Meshes(verts, faces, textures=FakeTextures(torch.zeros(3)))
    with pytest.raises(TypeError, match="textures"):
        Meshes(verts, faces, textures=5)
    m = Meshes(verts, faces)
    with pytest.raises(ValueError, match="textures"):
        m.textures = FakeTextures(torch.zeros(1))
    with pytest.raises(ValueError, match="textures.*device"):
        m.textures = FakeTextures(torch.zeros(2, device="meta"))
    m.textures = FakeTextures(torch.zeros(2))
    assert len(m.textures) == 2
    # the topology-preserving ops share the textures object
    assert m.offset_verts(torch.zeros(3)).textures is m.textures
    assert m.update_padded(m.verts_padded()).textures is m.textures


@pytest.mark.skipif(not hasattr(torch.backends, "mps") and not torch.cuda.is_available(), reason="no second device")
def test_to_other_device():  # pragma: no cover - only where a GPU exists
    dev = "cuda" if torch.cuda.is_available() else "mps"
    if dev == "mps" and not torch.backends.mps.is_available():
        pytest.skip("no second device")
    verts, faces = random_lists([(4, 3), (3, 1)], 0)
    m = Meshes(verts, faces).to(dev)
    assert m.device.type == dev and m.faces_packed().device.type == dev
    assert m.verts_normals_packed().device.type == dev


def test_docstring_examples():
    import doctest

    import diffras.structures.meshes as mod

    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
