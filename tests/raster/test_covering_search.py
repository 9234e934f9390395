"""The numba backend's covering faces (step 8) come from marked K-list entries and a sparse search, not a
second pass: they must equal the definition, the reference backend's hard (K = 1, blur 0) pass, bit for bit.

Adversarial scenes target what the sparse search relies on: saturated lists, ties in depth (duplicates,
flat faces at one depth), corners and edges exactly on pixel centres, back faces, faces behind the camera,
batched images, every covering mode (``diffras.raster._covering_numba``), tiles of every size and the
multi-threaded kernel. Dense meshes cross-check the search against the numba hard pass.
"""
import math
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import diffras.raster._covering_numba as cn
from diffras.raster import RasterSettings, rasterize_visibility
from diffras.raster._visibility_numba import cover_mode
from diffras.raster.visibility import covering_lost, visible_faces

D = torch.float64
LOST = "faces_per_pixel: .* lost their covering face"


@pytest.fixture(autouse=True)
def _numba_threads(monkeypatch):
    # Small scenes normally run on one thread; force the multi-threaded path that large ones take.
    import diffras.raster._visibility_numba as vn

    monkeypatch.setattr(vn, "SERIAL_WORK", 0)


def _triple(backend, fv, first, num, size, K, **kw):
    s = RasterSettings(size, faces_per_pixel=K, backend=backend, **kw)
    return visible_faces(fv, torch.as_tensor(first), torch.as_tensor(num), s)


def _check(fv, first, num, size, K, bin_sizes=(None, 1, 3, 0), **kw):
    """numba's (lists, covering, lost) == reference's, and the kept/strict lists through the public entry."""
    kw.setdefault("perspective_correct", False)
    kw.setdefault("clip_barycentric_coords", False)
    p2f, cov, lost = _triple("reference", fv, first, num, size, K, **kw)
    for bin_size in bin_sizes:
        a, c, l = _triple("numba", fv, first, num, size, K, bin_size=bin_size, **kw)
        assert torch.equal(a, p2f), f"lists differ, bin_size={bin_size} {kw}"
        if cov is None:
            assert c is None and l is None
            continue
        bad = (c != cov).nonzero()
        assert bad.numel() == 0, f"covering differs at {bad[:3].tolist()}, bin_size={bin_size} {kw}"
        assert torch.equal(l, covering_lost(p2f, cov)) and torch.equal(l, lost)
    return p2f, cov, lost


def _grid(k, n, S):
    """NDC coordinate ``(n - k) / S``: odd k are pixel centres (``pixel_center((k - 1) / 2)``), even k
    pixel borders; k may run past the image."""
    return (n - k) / S


@st.composite
def grid_scenes(draw):
    """Faces with corners on pixel centres and borders (edges through centres: edge value exactly 0),
    flat faces at shared depths (ties), exact duplicates, reversed windings, big faces behind and in
    front; two images over overlapping face ranges."""
    H, W = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    S = float(min(H, W))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    F = draw(st.integers(2, 14))
    faces = []
    for _ in range(F):
        kind = int(torch.randint(0, 5, (1,), generator=g))
        if kind == 0 and faces:  # exact duplicate of an earlier face
            faces.append([list(c) for c in faces[int(torch.randint(0, len(faces), (1,), generator=g))]])
            continue
        ks = torch.randint(-2, 2 * max(H, W) + 3, (3, 2), generator=g).tolist()
        xy = [(_grid(kx, W, S), _grid(ky, H, S)) for kx, ky in ks]
        if kind == 1:  # flat, at a depth shared with other faces
            zs = [float(torch.randint(1, 4, (1,), generator=g)) * 0.5] * 3
        elif kind == 2:  # one corner behind the camera (dropped by the rule)
            zs = [-0.5, 1.0, 2.0]
        else:
            zs = (torch.randint(1, 9, (3,), generator=g).double() * 0.25).tolist()
        faces.append([[x, y, z] for (x, y), z in zip(xy, zs)])
    big = [[-9.0, -9.0, 2.5], [9.0, -9.0, 2.5], [0.0, 12.0, 2.5]]  # counter-clockwise, covers everything
    faces += [big, [big[0], big[2], big[1]]]  # and its clockwise twin at the same depth
    fv = torch.tensor(faces, dtype=D)
    kw = dict(
        blur_radius=draw(st.sampled_from([0.0, (1.0 / S) ** 2, (2.5 / S) ** 2, 0.3])),
        perspective_correct=draw(st.booleans()),
        clip_barycentric_coords=draw(st.booleans()),
        cull_backfaces=draw(st.booleans()),
    )
    cut = draw(st.integers(0, fv.shape[0]))
    return fv, [0, cut], [fv.shape[0], fv.shape[0] - cut], (H, W), draw(st.integers(1, 4)), kw


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grid_scenes())
def test_covering_matches_reference_on_grid_scenes(scene):
    fv, first, num, size, K, kw = scene
    _check(fv, first, num, size, K, **kw)


def _crowded(K, z_near, z_cover, flat=True):
    """K + 2 small near faces around pixel (2, 2) of a 5x5 image, each touching its centre only through
    the blur, and a big face covering everything: every pixel's list saturates."""
    faces = []
    for k in range(K + 2):
        a = 2 * math.pi * k / (K + 2)
        c, s = math.cos(a), math.sin(a)
        pts = [(0.05, -0.1), (0.3, 0.0), (0.05, 0.1)]
        zs = [z_near] * 3 if flat else [z_near, z_near + 0.5, z_near]
        faces.append([[x * c - y * s, x * s + y * c, z] for (x, y), z in zip(pts, zs)])
    faces.append([[-9.0, -9.0, z_cover], [9.0, -9.0, z_cover], [0.0, 12.0, z_cover]])
    faces.append([[-9.0, -9.0, z_cover], [9.0, -9.0, z_cover], [0.0, 12.0, z_cover]])  # tied duplicate
    return torch.tensor(faces, dtype=D)


@pytest.mark.parametrize("K", [1, 2, 3])
@pytest.mark.parametrize("persp,clip", [(False, False), (True, False), (True, True), (False, True)])
def test_saturated_lists_find_the_tied_covering_face(K, persp, clip):
    fv = _crowded(K, 1.0, 2.0, flat=not persp)
    F = fv.shape[0]
    kw = dict(blur_radius=0.05, perspective_correct=persp, clip_barycentric_coords=clip)
    p2f, cov, lost = _check(fv, [0], [F], (5, 5), K, **kw)
    # Face F - 2 and its duplicate F - 1 tie everywhere: the lower index covers every pixel, and the centre
    # pixel's saturated list (near faces only) really lost it.
    assert (cov == F - 2).all()
    assert bool(lost[0, 2, 2]) and not (p2f[0, 2, 2] == F - 2).any()
    keep = rasterize_visibility(fv, torch.tensor([0]), torch.tensor([F]), 5, faces_per_pixel=K, **kw)
    assert keep[0, 2, 2, -1] == F - 2 and torch.equal(keep[0, 2, 2, :-1], p2f[0, 2, 2, :-1])
    with pytest.warns(UserWarning, match=LOST) as rec:
        rasterize_visibility(fv, torch.tensor([0]), torch.tensor([F]), 5, faces_per_pixel=K, keep_covering=False, **kw)
    assert f" {int(lost.sum())} covered pixel(s)" in str(rec[0].message)


def test_modes_are_chosen_as_documented():
    fv = _crowded(2, 1.0, 2.0)
    np_fv = fv.reshape(-1, 9).numpy()
    mode = lambda **kw: cover_mode(RasterSettings(5, **kw), np_fv)  # noqa: E731
    assert mode(blur_radius=0.0, clip_barycentric_coords=True) == cn.NO_COVER
    assert mode(blur_radius=0.1, clip_barycentric_coords=False) == cn.COVER_FULL_WITHOUT
    assert mode(blur_radius=0.1, clip_barycentric_coords=True, perspective_correct=True) == cn.COVER_FULL_WITHOUT
    assert mode(blur_radius=0.1, clip_barycentric_coords=True, perspective_correct=False) == cn.COVER_FULL
    huge = cover_mode(RasterSettings(5, blur_radius=0.1, clip_barycentric_coords=True, perspective_correct=False),
                      np_fv * 1e120)
    assert huge == cn.COVER_ALL


@pytest.mark.parametrize("persp,clip", [(False, True), (True, True), (False, False)])
def test_overflowing_depths_match_reference(persp, clip):
    # Coordinates near the float64 limit: edge values and depths overflow to inf/NaN in places, where
    # an inside face can fail the clipped test (mode 3 searches every pixel). Whatever the rule gives
    # there, numba must give the same.
    covered = []
    for xy_scale, z_scale in ((1e150, 1.0), (1e150, 1e160), (3e153, 1.0)):
        fv = _crowded(2, 1.0, 2.0, flat=False)
        fv[..., :2] *= xy_scale
        fv[..., 2] *= z_scale
        F = fv.shape[0]
        _, cov, _ = _check(fv, [0], [F], (4, 5), 2, blur_radius=0.05, perspective_correct=persp,
                           clip_barycentric_coords=clip)
        covered.append(bool((cov >= 0).any()))
    assert covered[0] and not covered[2]  # both regimes occur: finite depths, and overflow everywhere


def test_k1_with_blur_on_a_batch():
    fv = torch.cat([_crowded(1, 1.0, 2.0), _crowded(3, 0.5, 0.75, flat=False)])
    n = fv.shape[0] // 2
    for clip in (False, True):
        p2f, cov, lost = _check(fv, [0, n, 0], [n, n, 2 * n], (6, 5), 1, blur_radius=0.02,
                                clip_barycentric_coords=clip, perspective_correct=True)
        assert lost.any() and (cov >= 0).all()


def _mesh_face_verts(mesh, size, mesh_dir=None):
    from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
    from diffras.ops import ico_sphere
    from diffras.raster.mesh_rasterizer import project_verts_padded

    if mesh == "dragon":
        import trimesh

        from diffras.ops import normalize_to_unit_sphere
        from diffras.structures import Meshes

        tm = trimesh.load(mesh_dir / "dragon" / "dragon_100k.ply", process=False, force="mesh")
        v = torch.tensor(tm.vertices, dtype=torch.float32)
        m = normalize_to_unit_sphere(Meshes([v], [torch.tensor(tm.faces, dtype=torch.int64)]))
    else:
        m = ico_sphere(int(mesh[3:]))
    R, T = look_at_view_transform(2.7, 10.0, 30.0)
    cam = FoVPerspectiveCameras(R=R, T=T, fov=60.0)
    packed = project_verts_padded(m, cam, size).reshape(-1, 3)
    return packed[m.faces_packed()].double()


@pytest.mark.parametrize(
    "mesh,kw",
    [
        ("ico4", dict(perspective_correct=True, clip_barycentric_coords=True)),
        ("ico4", dict(perspective_correct=False, clip_barycentric_coords=True, cull_backfaces=True)),
        ("ico4", dict(perspective_correct=False, clip_barycentric_coords=False)),
        ("dragon", dict(perspective_correct=True, clip_barycentric_coords=True)),
    ],
)
def test_dense_mesh_covering_equals_the_hard_pass(mesh, kw, request):
    # Many tiles, lists saturated on most covered pixels: the covering faces found by the search equal the
    # numba hard pass's (the definition; that pass is checked against the reference elsewhere).
    mesh_dir = request.getfixturevalue("mesh_dir") if mesh == "dragon" else None
    size = (80, 96)
    fv = _mesh_face_verts(mesh, size, mesh_dir)
    first, num = torch.tensor([0, 0]), torch.tensor([fv.shape[0], fv.shape[0] // 3])
    blur = math.log(1 / 1e-4 - 1) * 1e-4
    p2f, cov, lost = _triple("numba", fv, first, num, size, 8, blur_radius=blur, **kw)
    hard = _triple("numba", fv, first, num, size, 1, blur_radius=0.0, perspective_correct=kw["perspective_correct"],
                   cull_backfaces=kw.get("cull_backfaces", False))[0][..., 0]
    assert torch.equal(cov, hard)
    assert torch.equal(lost, covering_lost(p2f, cov))
    assert int(lost.sum()) > 100  # the search really found lost covering faces on many pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # keep_covering=True never warns
        keep = rasterize_visibility(fv, first, num, size, faces_per_pixel=8, blur_radius=blur, **kw)
    assert (keep == hard[..., None]).any(-1)[hard >= 0].all()
