"""Mesh regularisers against loop-based numpy versions of PyTorch3D's definitions.

The references build their own edge lists and face adjacency from the raw face lists (never from
``Meshes``), compute angles with arccos and areas with cross products (the code uses Heron's formula and
the law of cosines), and loop over vertices, edges and faces.
"""
import itertools
import math

import numpy as np
import pytest
import torch

from diffras.losses import cot_laplacian, laplacian, mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from diffras.losses.mesh import _laplacian_constants, _laplacian_vectors
from diffras.structures import Meshes


# ---------------------------------------------------------------------------------------------- fixtures
def _grid(n, seed):
    """An (n x n)-vertex open grid with bumpy z: boundary edges, obtuse angles, valence 3..6."""
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    v = np.stack([xs.ravel(), ys.ravel(), 0.3 * rng.standard_normal(n * n)], 1) + 0.2 * rng.standard_normal((n * n, 3))
    f = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, (i + 1) * n + j, (i + 1) * n + j + 1, i * n + j + 1
            f += [[a, b, c], [a, c, d]]
    return v, np.array(f)


def _octahedron(seed):
    rng = np.random.default_rng(seed)
    v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    v += 0.1 * rng.standard_normal(v.shape)
    f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    return v, f


def _fan_with_isolated(seed):
    """Five faces around the edge (0, 1) (a non-manifold edge shared by 5 faces) plus an isolated vertex 7."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((8, 3))
    f = np.array([[0, 1, 2], [1, 0, 3], [0, 1, 4], [0, 5, 1], [6, 1, 0]])
    return v, f


def _batch(dtype=torch.float64, seed=0):
    parts = [_grid(4, seed), _octahedron(seed + 1), _fan_with_isolated(seed + 2), _grid(3, seed + 3)]
    verts = [torch.tensor(v, dtype=dtype) for v, _ in parts]
    faces = [torch.tensor(f, dtype=torch.int64) for _, f in parts]
    return verts, faces


# ---------------------------------------------------------------------------------------------- references
def _edges(f):
    return sorted({tuple(sorted((int(a), int(b)))) for tri in f for a, b in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0]))})


def _np_edge_loss(parts, target):
    total = 0.0
    for v, f in parts:
        e = _edges(f)
        if e:
            total += sum((np.linalg.norm(v[a] - v[b]) - target) ** 2 for a, b in e) / len(e)
    return total / len(parts)


def _angle(p, q, r):
    """Angle at p of triangle (p, q, r)."""
    u, w = q - p, r - p
    return math.acos(np.clip(u @ w / (np.linalg.norm(u) * np.linalg.norm(w)), -1, 1))


def _np_smoothing(parts, method):
    total = 0.0
    for v, f in parts:
        V = len(v)
        if V == 0:
            continue
        nbrs = {i: set() for i in range(V)}
        for a, b in _edges(f):
            nbrs[a].add(b)
            nbrs[b].add(a)
        w = {}
        area = np.zeros(V)
        for tri in f:
            for k in range(3):
                i, j, o = tri[(k + 1) % 3], tri[(k + 2) % 3], tri[k]
                c = 1.0 / math.tan(_angle(v[o], v[i], v[j]))
                w[(i, j)] = w.get((i, j), 0.0) + c
                w[(j, i)] = w.get((j, i), 0.0) + c
            a2 = 0.5 * np.linalg.norm(np.cross(v[tri[1]] - v[tri[0]], v[tri[2]] - v[tri[0]]))
            for k in range(3):
                area[tri[k]] += a2
        s = 0.0
        for i in range(V):
            if method == "uniform":
                d = (sum(v[j] for j in nbrs[i]) / len(nbrs[i]) if nbrs[i] else 0.0) - v[i]
            else:
                lv = sum((w[(i, j)] * v[j] for j in nbrs[i]), np.zeros(3))
                rs = sum(w[(i, j)] for j in nbrs[i])
                if method == "cot":
                    d = lv * (1.0 / rs if rs > 0 else rs) - v[i]
                else:
                    d = (lv - rs * v[i]) * (0.25 / area[i] if area[i] > 0 else 0.0)
            s += np.linalg.norm(d)
        total += s / V
    return total / len(parts)


def _np_normal_consistency(parts):
    total = 0.0
    for v, f in parts:
        by_edge = {}
        for tri in f:
            for k in range(3):
                a, b = sorted((int(tri[(k + 1) % 3]), int(tri[(k + 2) % 3])))
                by_edge.setdefault((a, b), []).append(int(tri[k]))
        terms = []
        for (a, b), opp in by_edge.items():
            for p, q in itertools.combinations(opp, 2):
                n0 = np.cross(v[b] - v[a], v[p] - v[a])
                n1 = np.cross(v[q] - v[a], v[b] - v[a])
                terms.append(1 - n0 @ n1 / (np.linalg.norm(n0) * np.linalg.norm(n1)))
        if terms:
            total += sum(terms) / len(terms)
    return total / len(parts)


def _parts(verts, faces):
    return [(v.detach().numpy(), f.numpy()) for v, f in zip(verts, faces)]


# ---------------------------------------------------------------------------------------------- values
@pytest.mark.parametrize("target", [0.0, 0.7])
def test_edge_loss_matches_bruteforce(target):
    verts, faces = _batch()
    got = mesh_edge_loss(Meshes(verts, faces), target_length=target)
    assert got.dtype == torch.float64 and got.dim() == 0
    np.testing.assert_allclose(got.item(), _np_edge_loss(_parts(verts, faces), target), rtol=1e-12)


@pytest.mark.parametrize("method", ["uniform", "cot", "cotcurv"])
def test_laplacian_smoothing_matches_bruteforce(method):
    verts, faces = _batch()
    got = mesh_laplacian_smoothing(Meshes(verts, faces), method=method)
    np.testing.assert_allclose(got.item(), _np_smoothing(_parts(verts, faces), method), rtol=1e-9)


def test_normal_consistency_matches_bruteforce():
    verts, faces = _batch()
    got = mesh_normal_consistency(Meshes(verts, faces))
    np.testing.assert_allclose(got.item(), _np_normal_consistency(_parts(verts, faces)), rtol=1e-12)


def test_closed_forms():
    # Regular tetrahedron: adjacent outward normals meet at cos = -1/3, so every pair gives 4/3.
    v = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    m = Meshes([v], [f])
    assert mesh_normal_consistency(m).item() == pytest.approx(4 / 3)
    assert mesh_edge_loss(m).item() == pytest.approx(8.0)  # every edge has length 2*sqrt(2)
    assert mesh_edge_loss(m, target_length=2 * math.sqrt(2)).item() == pytest.approx(0.0, abs=1e-12)
    # Uniform: each vertex's neighbour centroid is -v/3, so |d| = |v| * 4/3 = 4/sqrt(3).
    assert mesh_laplacian_smoothing(m).item() == pytest.approx(4 / math.sqrt(3))
    # Flat regular grid: the cot Laplacian of interior vertices vanishes, normal consistency is 0.
    xs, ys = torch.meshgrid(torch.arange(5.0), torch.arange(5.0), indexing="ij")
    gv = torch.stack([xs.ravel(), ys.ravel(), torch.zeros(25)], 1).double()
    _, gf = _grid(5, 0)
    g = Meshes([gv], [torch.tensor(gf)])
    assert mesh_normal_consistency(g).item() == pytest.approx(0.0, abs=1e-12)
    cot = _laplacian_vectors(gv, _laplacian_constants(gv, g.faces_packed(), g.edges_packed(), "cotcurv"), "cotcurv")
    interior = [i * 5 + j for i in range(1, 4) for j in range(1, 4)]
    assert cot[interior].abs().max().item() < 1e-12


def test_each_mesh_counts_equally():
    # A mesh and a 4x refined copy of its scale: per-mesh weighting means the batch loss is the mean.
    verts, faces = _batch()
    a = Meshes(verts[:1], faces[:1])
    b = Meshes(verts[1:2], faces[1:2])
    ab = Meshes(verts[:2], faces[:2])
    for fn in (mesh_edge_loss, mesh_normal_consistency, mesh_laplacian_smoothing):
        assert fn(ab).item() == pytest.approx(0.5 * (fn(a).item() + fn(b).item()), rel=1e-12)


def test_empty_and_faceless_meshes():
    v = torch.zeros(0, 3, dtype=torch.float64, requires_grad=True)
    empty = Meshes([v], [torch.zeros(0, 3, dtype=torch.int64)])
    for fn in (mesh_edge_loss, mesh_normal_consistency, mesh_laplacian_smoothing):
        out = fn(empty)
        assert out.item() == 0.0
        out.backward()  # still attached to the (empty) vertices
    # An empty mesh in a batch still counts in N (PyTorch3D's weighting).
    verts, faces = _batch()
    full = Meshes(verts[:1], faces[:1])
    mixed = Meshes([verts[0], torch.zeros(0, 3, dtype=torch.float64)], [faces[0], torch.zeros(0, 3, dtype=torch.int64)])
    for fn in (mesh_edge_loss, mesh_normal_consistency, mesh_laplacian_smoothing):
        assert fn(mixed).item() == pytest.approx(0.5 * fn(full).item(), rel=1e-12)


def test_real_mesh_matches_bruteforce(mesh_dir):
    trimesh = pytest.importorskip("trimesh")
    tm = trimesh.load(mesh_dir / "teapot" / "teapot_pytorch3d.obj", process=False, force="mesh")
    v = torch.tensor(np.asarray(tm.vertices), dtype=torch.float64)
    f = torch.tensor(np.asarray(tm.faces), dtype=torch.int64)
    m = Meshes([v], [f])
    parts = _parts([v], [f])
    np.testing.assert_allclose(mesh_edge_loss(m).item(), _np_edge_loss(parts, 0.0), rtol=1e-10)
    np.testing.assert_allclose(mesh_normal_consistency(m).item(), _np_normal_consistency(parts), rtol=1e-9)
    np.testing.assert_allclose(mesh_laplacian_smoothing(m, "cot").item(), _np_smoothing(parts, "cot"), rtol=1e-8)


# ---------------------------------------------------------------------------------------------- gradients
def _grad_batch():
    # Small on purpose: gradcheck differentiates input by input (the octahedron and the 5-face fan).
    verts, faces = _batch(seed=5)
    return [v.clone().requires_grad_(True) for v in verts[1:3]], faces[1:3]


def test_gradcheck_edge_and_normal_consistency_and_uniform():
    verts, faces = _grad_batch()
    for fn in (lambda m: mesh_edge_loss(m, 0.5), mesh_normal_consistency, mesh_laplacian_smoothing):
        assert torch.autograd.gradcheck(lambda *vs: fn(Meshes(list(vs), faces)), tuple(verts))


@pytest.mark.parametrize("method", ["uniform", "cot", "cotcurv"])
def test_laplacian_gradient_treats_weights_as_constants(method):
    verts, faces = _grad_batch()
    m = Meshes(verts, faces)
    vp = m.verts_packed().detach()
    consts = _laplacian_constants(vp, m.faces_packed(), m.edges_packed(), method)
    idx = m.verts_packed_to_mesh_idx()
    nv = m.num_verts_per_mesh()[idx].double()

    def frozen(x):
        return (_laplacian_vectors(x, consts, method).norm(dim=1) / nv).sum() / 2

    x = vp.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(frozen, (x,))
    # The public loss must give exactly the frozen-weight gradient, whatever the weights' own dependence.
    grads = torch.autograd.grad(mesh_laplacian_smoothing(m, method), verts)
    ref = torch.autograd.grad(frozen(x), x)[0]
    torch.testing.assert_close(torch.cat(grads), ref)


def test_sparse_matrices_match_index_add_path():
    verts, faces = _batch()
    m = Meshes(verts, faces)
    vp, fp, ep = m.verts_packed(), m.faces_packed(), m.edges_packed()
    L = laplacian(vp, ep)
    assert L.is_sparse and L.dtype == torch.float64
    d = _laplacian_vectors(vp, _laplacian_constants(vp, fp, ep, "uniform"), "uniform")
    torch.testing.assert_close(torch.sparse.mm(L, vp), d)
    Lc, inv_areas = cot_laplacian(vp, fp)
    dense = Lc.to_dense()
    torch.testing.assert_close(dense, dense.T)
    assert (dense.diagonal() == 0).all()
    d = _laplacian_vectors(vp, _laplacian_constants(vp, fp, ep, "cotcurv"), "cotcurv")
    ref = (torch.sparse.mm(Lc, vp) - dense.sum(1, keepdim=True) * vp) * 0.25 * inv_areas
    torch.testing.assert_close(ref, d)
    # a right triangle: cot(90) = 0 on the hypotenuse, cot(45) = 1 on the legs
    tri = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    Lt, ia = cot_laplacian(tri, torch.tensor([[0, 1, 2]]))
    torch.testing.assert_close(Lt.to_dense(), torch.tensor([[0.0, 1, 1], [1, 0, 0], [1, 0, 0]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(ia.view(-1), torch.full((3,), 2.0))


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_input_named():
    verts, faces = _batch()
    m = Meshes(verts, faces)
    for fn in (mesh_edge_loss, mesh_normal_consistency, mesh_laplacian_smoothing):
        with pytest.raises(TypeError, match="meshes"):
            fn(verts[0])
    with pytest.raises(ValueError, match="method"):
        mesh_laplacian_smoothing(m, method="cotan")
    with pytest.raises(TypeError, match="target_length"):
        mesh_edge_loss(m, target_length="1")
    with pytest.raises(ValueError, match="target_length"):
        mesh_edge_loss(m, target_length=float("nan"))
    with pytest.raises(ValueError, match="edges"):
        laplacian(verts[0], torch.tensor([[0, 99]]))
    with pytest.raises(ValueError, match="faces"):
        cot_laplacian(verts[0], torch.tensor([[0, 1, 99]]))
    with pytest.raises(TypeError, match="faces"):
        cot_laplacian(verts[0], torch.tensor([[0.0, 1.0, 2.0]]))
    with pytest.raises(ValueError, match="verts"):
        cot_laplacian(verts[0][:, :2], faces[0])
    with pytest.raises(ValueError, match="eps"):
        cot_laplacian(verts[0], faces[0], eps=0.0)


def test_float32_matches_float64():
    verts, faces = _batch()
    m64 = Meshes(verts, faces)
    m32 = Meshes([v.float() for v in verts], faces)
    for fn in (mesh_edge_loss, mesh_normal_consistency, mesh_laplacian_smoothing,
               lambda m: mesh_laplacian_smoothing(m, "cot"), lambda m: mesh_laplacian_smoothing(m, "cotcurv")):
        a, b = fn(m32), fn(m64)
        assert a.dtype == torch.float32
        assert a.item() == pytest.approx(b.item(), rel=1e-4)


def test_device_mismatch_named():
    # No second real device on CI: the "meta" device is enough to exercise the check.
    verts, faces = _batch()
    with pytest.raises(ValueError, match="edges"):
        laplacian(verts[0], torch.tensor([[0, 1]], device="meta"))
    with pytest.raises(ValueError, match="faces"):
        cot_laplacian(verts[0], faces[0].to("meta"))


# ---------------------------------------------------------------------------------------------- cached topology
from diffras.losses import topology  # noqa: E402
from diffras.ops import ico_sphere  # noqa: E402

_LOSSES = (lambda m: mesh_edge_loss(m, 0.3), mesh_normal_consistency, mesh_laplacian_smoothing)


def _fresh(m):
    """The same meshes with a new faces tensor: nothing cached for it (cache cleared too)."""
    topology.clear_topology_cache()
    return Meshes(m.verts_list(), [f.clone() for f in m.faces_list()])


def test_cached_topology_follows_moving_vertices():
    # A fitting loop: the faces tensor is shared by every step's mesh, the vertices change.
    topology.clear_topology_cache()
    verts, faces = _batch()
    src = Meshes(verts, faces)
    gen = torch.Generator().manual_seed(0)
    for step in range(3):
        off = (0.3 * torch.randn(src.verts_packed().shape, generator=gen, dtype=torch.float64)).requires_grad_(True)
        moved = src.offset_verts(off)
        assert moved.faces_packed() is src.faces_packed()
        parts = _parts(moved.verts_list(), faces)
        refs = (_np_edge_loss(parts, 0.3), _np_normal_consistency(parts), _np_smoothing(parts, "uniform"))
        for fn, ref in zip(_LOSSES, refs):
            got = fn(moved)
            np.testing.assert_allclose(got.item(), ref, rtol=1e-12)
            (g,) = torch.autograd.grad(got, off)
            # Uncached: a new faces tensor and an empty cache give the same value and gradient.
            off2 = off.detach().clone().requires_grad_(True)
            again = _fresh(src.offset_verts(off2))
            want = fn(again)
            (g2,) = torch.autograd.grad(want, off2)
            assert got.item() == pytest.approx(want.item(), rel=1e-14)
            torch.testing.assert_close(g, g2, rtol=1e-12, atol=1e-14)
        assert len(topology._CACHE) >= 1


def test_cached_topology_built_once_per_faces_tensor(monkeypatch):
    topology.clear_topology_cache()
    calls = []
    build = topology._build
    monkeypatch.setattr(topology, "_build", lambda m, item, dtype: calls.append(item) or build(m, item, dtype))
    src = ico_sphere(2)
    for step in range(4):
        m = src.offset_verts(torch.full((3,), 0.1 * step))
        for fn in _LOSSES:
            fn(m)
    assert sorted(calls) == ["edge", "pairs", "uniform", "vert"]  # each item once, not once per step
    # A new Meshes built from the lists packs a new faces tensor: its own entry, built again.
    calls.clear()
    rebuilt = Meshes(src.verts_list(), src.faces_list())
    assert rebuilt.faces_packed() is not src.faces_packed()
    for fn in _LOSSES:
        fn(rebuilt)
    assert sorted(calls) == ["edge", "pairs", "uniform", "vert"]
    # The same faces in another vertex dtype: the weights are stored per dtype.
    calls.clear()
    m64 = Meshes._from_packed(src.verts_packed().double(), src.faces_packed(), src.num_verts_per_mesh(),
                              src.num_faces_per_mesh())
    for fn in _LOSSES:
        assert fn(m64).dtype == torch.float64
    assert sorted(calls) == ["edge", "pairs", "uniform", "vert"]


def test_different_meshes_do_not_share_an_entry():
    topology.clear_topology_cache()
    verts, faces = _batch()
    a = Meshes(verts[:2], faces[:2])
    b = Meshes(verts[2:], faces[2:])
    single = Meshes(verts[:1], faces[:1])
    # Interleaved calls: each batch keeps its own lists and weights.
    for m, vs, fs in [(a, verts[:2], faces[:2]), (b, verts[2:], faces[2:]), (single, verts[:1], faces[:1]),
                      (a, verts[:2], faces[:2]), (b, verts[2:], faces[2:])]:
        parts = _parts(vs, fs)
        np.testing.assert_allclose(mesh_edge_loss(m).item(), _np_edge_loss(parts, 0.0), rtol=1e-12)
        np.testing.assert_allclose(mesh_normal_consistency(m).item(), _np_normal_consistency(parts), rtol=1e-12)
        np.testing.assert_allclose(mesh_laplacian_smoothing(m).item(), _np_smoothing(parts, "uniform"), rtol=1e-9)
    assert len({id(m.faces_packed()) for m in (a, b, single)}) == 3


def test_faces_changed_in_place_rebuild():
    topology.clear_topology_cache()
    v, f = _grid(4, 7)
    verts, faces = torch.tensor(v), torch.tensor(f)
    before = [fn(Meshes([verts], [faces])).item() for fn in _LOSSES]
    faces[3, 2] = 0  # the same tensor object, edited: other edges, other face pairs
    m = Meshes([verts], [faces])
    assert m.faces_packed() is faces  # what the cache is keyed by
    parts = _parts([verts], [faces])
    refs = (_np_edge_loss(parts, 0.3), _np_normal_consistency(parts), _np_smoothing(parts, "uniform"))
    for fn, ref, old in zip(_LOSSES, refs, before):
        got = fn(m).item()
        np.testing.assert_allclose(got, ref, rtol=1e-12)
        assert got != pytest.approx(old, rel=1e-6)


def test_inference_mode_stores_nothing_and_training_still_works():
    topology.clear_topology_cache()
    src = ico_sphere(1)
    with torch.inference_mode():
        # On a copy: Meshes's own index caches made here would be inference tensors (not this test's topic).
        for fn in _LOSSES:
            fn(src.offset_verts(torch.zeros(3)))
    assert len(topology._CACHE) == 0
    off = torch.zeros_like(src.verts_packed(), requires_grad=True)
    loss = sum(fn(src.offset_verts(off)) for fn in _LOSSES)
    loss.backward()
    assert off.grad is not None and torch.isfinite(off.grad).all()


def test_dead_faces_entry_is_dropped():
    topology.clear_topology_cache()
    m = ico_sphere(1)
    mesh_edge_loss(m)
    assert len(topology._CACHE) == 1
    del m
    import gc

    gc.collect()
    assert len(topology._CACHE) == 0
