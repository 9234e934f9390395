"""Every visibility backend returns exactly the reference backend's pix_to_face."""
import math
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffras.raster.settings import RasterSettings
from diffras.raster.visibility import rasterize_visibility, visible_faces

BACKENDS = ["numba", "torch"]
FLAGS = [
    dict(),
    dict(perspective_correct=True),
    dict(clip_barycentric_coords=True),
    dict(perspective_correct=True, clip_barycentric_coords=True, cull_backfaces=True),
    dict(cull_backfaces=True),
]


@pytest.fixture(autouse=True)
def _numba_threads(monkeypatch):
    # Small scenes normally run on one thread; force the multi-threaded path that large ones take.
    import diffras.raster._visibility_numba as vn

    monkeypatch.setattr(vn, "SERIAL_WORK", 0)


def _run(backend, fv, first, num, image_size, **kw):
    return rasterize_visibility(fv, torch.as_tensor(first), torch.as_tensor(num), image_size, backend=backend, **kw)


def _covering(backend, fv, first, num, image_size, **kw):
    """The covering faces of step 8 (None when blur_radius == 0), from the backend's hard pass."""
    kw = {k: v for k, v in kw.items() if k != "faces_per_pixel"}
    kw.setdefault("perspective_correct", False)  # rasterize_visibility's defaults
    kw.setdefault("clip_barycentric_coords", False)
    s = RasterSettings(image_size, backend=backend, **kw)
    return visible_faces(fv, torch.as_tensor(first), torch.as_tensor(num), s)[1]


def _check(fv, first, num, image_size, backends=BACKENDS, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the strict rule's warning about lost covering faces
        ref = _run("reference", fv, first, num, image_size, **kw)
        ref_cov = _covering("reference", fv, first, num, image_size, **kw)
        for b in backends:
            for bin_size in (None, 3, 0):
                out = _run(b, fv, first, num, image_size, bin_size=bin_size, **kw)
                assert out.dtype == torch.int64 and out.shape == ref.shape
                bad = (out != ref).nonzero()
                assert bad.numel() == 0, f"{b} bin_size={bin_size} {kw}: first mismatch at {bad[:3].tolist()}"
            cov = _covering(b, fv, first, num, image_size, **kw)
            assert (cov is None) == (ref_cov is None)
            assert cov is None or torch.equal(cov, ref_cov), f"{b} {kw}: covering faces differ"
    return ref


@st.composite
def scenes(draw):
    n = draw(st.integers(1, 3))
    counts = [draw(st.integers(0, 12)) for _ in range(n)]
    F = sum(counts)
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(F, 1, 2, generator=g, dtype=torch.float64) * 2.4 - 1.2
    scale = torch.rand(F, 1, 1, generator=g, dtype=torch.float64) ** 2 * 1.5
    xy = centre + (torch.rand(F, 3, 2, generator=g, dtype=torch.float64) - 0.5) * scale
    z = torch.rand(F, 3, 1, generator=g, dtype=torch.float64) * 3.0 - 0.3
    flat = torch.rand(F, 1, 1, generator=g) < 0.3  # some faces parallel to the image plane (ties)
    z = torch.where(flat, z.abs().mean(1, keepdim=True).round(decimals=1) + 0.1, z)
    fv = torch.cat([xy, z], -1)
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    first = [sum(counts[:i]) for i in range(n)]
    H, W = draw(st.integers(1, 11)), draw(st.integers(1, 11))
    kw = dict(draw(st.sampled_from(FLAGS)))
    kw["faces_per_pixel"] = draw(st.integers(1, 5))
    kw["blur_radius"] = draw(st.sampled_from([0.0, 1e-4, 0.01, 0.1]))
    kw["keep_covering"] = draw(st.booleans())
    return fv.to(dtype), first, counts, (H, W), kw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_backends_match_reference_random(scene):
    fv, first, num, size, kw = scene
    _check(fv, first, num, size, **kw)


def _tri(xy, z):
    return [[x, y, zz] for (x, y), zz in zip(xy, z)]


@pytest.mark.parametrize("kw", FLAGS)
@pytest.mark.parametrize("blur", [0.0, 0.02])
def test_adversarial_scene(kw, blur):
    T = [(0.6, -0.5), (-0.7, -0.4), (0.1, 0.8)]
    faces = [
        _tri(T, [1.0, 1.0, 1.0]),
        _tri(T, [1.0, 1.0, 1.0]),  # exact duplicate: depth tie, lower index first
        _tri(T[::-1], [1.0, 1.0, 1.0]),  # back-facing copy
        _tri([(-0.5, -0.5), (0.0, 0.0), (0.5, 0.5)], [1.0, 1.0, 1.0]),  # zero area
        _tri([(-0.9, 0.0), (0.9, 1e-3), (0.9, -1e-3)], [0.5, 2.0, 2.0]),  # sliver
        _tri([(-0.9, 0.3), (0.9, 0.3), (0.0, 0.3 + 1e-9)], [1.0, 1.0, 1.0]),  # edge-on (almost zero area)
        _tri([(-0.8, -0.8), (0.8, -0.8), (0.0, 0.8)], [-0.5, 2.0, 2.0]),  # crossing z = 0
        _tri([(-0.8, -0.8), (0.8, -0.8), (0.0, 0.8)], [-0.5, -2.0, -2.0]),  # behind the camera
        _tri([(-50.0, -50.0), (50.0, -50.0), (0.0, 80.0)], [3.0, 3.0, 3.0]),  # covers the whole screen
        _tri([(-50.0, 50.0), (50.0, 50.0), (0.0, -80.0)], [0.2, 9.0, 9.0]),  # whole screen, slanted
        _tri([(0.3, 0.3), (0.31, 0.3), (0.3, 0.31)], [0.9, 0.9, 0.9]),  # sub-pixel
        _tri([(0.25, 0.25), (0.25, 0.25), (0.35, 0.35)], [0.9, 0.9, 0.9]),  # repeated corner
        _tri([(1.0, 1.0), (0.6, 1.0), (1.0, 0.6)], [1.5, 1.5, 1.5]),  # corner on pixel-centre lines
    ]
    fv = torch.tensor(faces, dtype=torch.float64)
    F = fv.shape[0]
    for size in [(8, 8), (9, 6), (5, 12)]:
        ref = _check(fv, [0], [F], size, faces_per_pixel=F + 2, blur_radius=blur, **kw)
        assert (ref[..., 0] >= 0).all()  # the whole-screen faces cover everything
        # K larger than the faces at any pixel: trailing slots stay empty.
        assert (ref[..., -1] == -1).all()


def test_dense_tile_never_drops_faces():
    # Thousands of sub-pixel faces in one tile: bins must grow, max_faces_per_bin notwithstanding.
    g = torch.Generator().manual_seed(1)
    F = 3000
    c = torch.rand(F, 1, 2, generator=g, dtype=torch.float64) * 0.6 - 0.3
    fv = torch.cat([c + torch.rand(F, 3, 2, generator=g, dtype=torch.float64) * 0.08,
                    torch.rand(F, 1, 1, generator=g, dtype=torch.float64).expand(F, 3, 1) + 0.5], -1)
    kw = dict(faces_per_pixel=4, blur_radius=1e-3)
    ref = _run("reference", fv, [0], [F], 10, **kw)
    for b in BACKENDS:
        for bin_size, mfpb in ((None, None), (4, 1), (16, 10)):
            out = _run(b, fv, [0], [F], 10, bin_size=bin_size, max_faces_per_bin=mfpb, **kw)
            assert torch.equal(out, ref)
    assert (ref[..., -1] >= 0).sum() >= 9  # the tile really is dense


def test_heterogeneous_batch_and_auto_backend():
    g = torch.Generator().manual_seed(2)
    fv = torch.rand(20, 3, 3, generator=g) * 2 - 1
    fv[..., 2] = fv[..., 2].abs() + 0.5
    first, num = torch.tensor([0, 5, 5]), torch.tensor([5, 0, 15])
    ref = _run("reference", fv, first, num, (7, 9), faces_per_pixel=3)
    auto = _run("auto", fv, first, num, (7, 9), faces_per_pixel=3)
    assert torch.equal(auto, ref)
    assert (ref[1] == -1).all()
    assert ((ref[0] >= 0) <= True).all() and ref[0].max() < 5 and (ref[2][ref[2] >= 0] >= 5).all()



def test_torch_chunks_and_partial_reductions(monkeypatch):
    # Tiny chunks: faces straddle chunk borders and the K-nearest reduction runs many times.
    import diffras.raster._visibility_torch as vt

    monkeypatch.setattr(vt, "CHUNK", 7)
    g = torch.Generator().manual_seed(3)
    fv = torch.rand(40, 3, 3, generator=g, dtype=torch.float64) * 2 - 1
    fv[..., 2] = fv[..., 2].abs() + 0.2
    fv[0] = torch.tensor([[-5.0, -5.0, 2.0], [5.0, -5.0, 2.0], [0.0, 5.0, 2.0]])  # covers everything
    for kw in (dict(faces_per_pixel=3), dict(faces_per_pixel=2, blur_radius=0.01, perspective_correct=True)):
        ref = _run("reference", fv, [0, 10], [25, 30], (6, 7), **kw)
        assert torch.equal(_run("torch", fv, [0, 10], [25, 30], (6, 7), **kw), ref)


def _ico_sphere_face_verts(level, dist=2.7):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "visibility.py"
    spec = importlib.util.spec_from_file_location("_bench_visibility", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.sphere_face_verts(level, dist=dist)


@pytest.mark.parametrize(
    "kw",
    [
        dict(faces_per_pixel=1),
        dict(faces_per_pixel=8, blur_radius=math.log(1 / 1e-4 - 1) * 1e-4, perspective_correct=True),
        dict(faces_per_pixel=4, blur_radius=2e-3, clip_barycentric_coords=True, perspective_correct=True),
        dict(faces_per_pixel=3, blur_radius=1e-3, cull_backfaces=True),
        dict(faces_per_pixel=1, perspective_correct=True),
        dict(faces_per_pixel=2, perspective_correct=True, clip_barycentric_coords=True),
    ],
)
def test_numba_and_torch_agree_on_a_sphere(kw):
    # Two independent implementations, each checked against the reference on small scenes, must agree
    # on a scene with many tiles, full per-pixel buffers and every early-rejection path.
    fv = _ico_sphere_face_verts(3)
    first, num = torch.tensor([0, 0]), torch.tensor([fv.shape[0], fv.shape[0] // 2])
    a = _run("numba", fv, first, num, (70, 90), **kw)
    b = _run("torch", fv, first, num, (70, 90), **kw)
    assert torch.equal(a, b)
    cov_a = _covering("numba", fv, first, num, (70, 90), **kw)
    cov_b = _covering("torch", fv, first, num, (70, 90), **kw)
    assert (cov_a is None) == (cov_b is None) == (kw.get("blur_radius", 0.0) == 0.0)
    assert cov_a is None or (torch.equal(cov_a, cov_b) and (cov_a >= 0).sum() > 100)
    assert (a[0, ..., -1] >= 0).sum() > 100


def test_numba_serial_and_parallel_paths_agree(monkeypatch):
    import diffras.raster._visibility_numba as vn

    fv = _ico_sphere_face_verts(2)
    kw = dict(faces_per_pixel=4, blur_radius=1e-3, perspective_correct=True)
    par = _run("numba", fv, [0], [fv.shape[0]], 40, **kw)
    monkeypatch.setattr(vn, "SERIAL_WORK", 1 << 40)
    assert torch.equal(_run("numba", fv, [0], [fv.shape[0]], 40, **kw), par)
    assert torch.equal(_run("reference", fv[:60], [0], [60], 12, **kw), _run("numba", fv[:60], [0], [60], 12, **kw))


@pytest.mark.parametrize("kw", FLAGS)
def test_full_tiles_with_stacked_layers(kw):
    # Layers covering whole tiles (so per-pixel buffers fill and whole-tile rejection kicks in),
    # slanted so that depth order changes across the image, plus small faces in between.
    g = torch.Generator().manual_seed(4)
    big = torch.tensor([[-3.0, -3.0], [3.0, -3.0], [0.0, 3.0]], dtype=torch.float64)
    layers = []
    for _ in range(10):
        z = torch.rand(3, 1, generator=g, dtype=torch.float64) * 2 + 0.5
        layers.append(torch.cat([big + torch.rand(1, 2, generator=g, dtype=torch.float64) * 0.5, z], 1))
    small = torch.rand(30, 3, 3, generator=g, dtype=torch.float64) * 2 - 1
    small[..., 2] = small[..., 2].abs() * 2 + 0.3
    fv = torch.cat([torch.stack(layers), small])
    for blur in (0.0, 0.01):
        _check(fv, [0], [fv.shape[0]], (9, 7), faces_per_pixel=3, blur_radius=blur, **kw)
