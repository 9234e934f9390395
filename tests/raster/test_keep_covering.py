"""Step 8 of the visibility rule: the K list keeps each pixel's covering face (``keep_covering``).

Closed-form scenes, a brute-force check of the rule on random scenes, the strict rule's warning, the
near-plane-clipped path, and dense real meshes where PyTorch3D's strict K-nearest list drops covering faces.
"""
import math
import warnings
from dataclasses import replace

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffras.raster import RasterSettings, rasterize, rasterize_meshes, rasterize_visibility
from diffras.raster._visibility_reference import pixel_face_depth

D = torch.float64
BACKENDS = ["reference", "numba", "torch"]
LOST = "faces_per_pixel: .* lost their covering face"


def _ring_scene(K):
    """A big far face covering the whole 9x9 image (face K) behind K small near faces placed around the
    centre pixel (NDC (0, 0)) without covering it, each 0.02 from it: within blur_radius 0.01."""
    faces = []
    for k in range(K):
        a = 2 * math.pi * k / K
        c, s = math.cos(a), math.sin(a)
        # Triangle with its near edge perpendicular to direction a at distance 0.02 from the centre.
        pts = [(0.02, -0.05), (0.12, 0.0), (0.02, 0.05)]
        faces.append([[x * c - y * s, x * s + y * c, 1.0] for x, y in pts])
    faces.append([[-50.0, -50.0, 3.0], [50.0, -50.0, 3.0], [0.0, 80.0, 3.0]])
    return torch.tensor(faces, dtype=D)


def _vis(fv, size, backend, **kw):
    F = fv.shape[0]
    return rasterize_visibility(fv, torch.tensor([0]), torch.tensor([F]), size, backend=backend, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_covering_face_takes_the_last_slot(backend):
    K = 3
    fv = _ring_scene(K)
    kw = dict(faces_per_pixel=K, blur_radius=0.01)
    with pytest.warns(UserWarning, match=LOST) as rec:
        strict = _vis(fv, 9, backend, keep_covering=False, **kw)[0]
    assert len(rec) == 1  # once per call
    keep = _vis(fv, 9, backend, **kw)[0]
    # The centre pixel: the K near faces (tied in depth: by index) push the covering face out.
    assert strict[4, 4].tolist() == [0, 1, 2]
    assert keep[4, 4].tolist() == [0, 1, K]
    # Only last slots ever change, and only to the covering face, which is then everywhere.
    assert torch.equal(keep[..., :-1], strict[..., :-1])
    changed = keep[..., -1] != strict[..., -1]
    assert changed.any() and (keep[..., -1][changed] == K).all()
    assert ((keep == K).any(-1)).all()
    n_lost = int(((strict != K).all(-1)).sum())
    assert f" {n_lost} covered pixel(s)" in str(rec[0].message)


def test_no_change_and_no_warning_without_loss():
    fv = _ring_scene(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big_k = _vis(fv, 9, "numba", faces_per_pixel=4, blur_radius=0.01, keep_covering=False)
        hard = _vis(fv, 9, "numba", faces_per_pixel=2, keep_covering=False)  # blur 0: nothing to lose
    assert torch.equal(big_k, _vis(fv, 9, "numba", faces_per_pixel=4, blur_radius=0.01))
    assert torch.equal(hard, _vis(fv, 9, "numba", faces_per_pixel=2))


def _brute_force_lists(fv, first, num, size, K, blur, flags):
    """Steps 1-8 written out once more: per pixel, every touching face, sorted; the covering face (the
    nearest face containing the centre, by its unclipped depth)."""
    H, W = size
    S = float(min(H, W))
    faces = fv.reshape(-1, 9).tolist()
    strict = torch.full((len(first), H, W, K), -1, dtype=torch.int64)
    keep = strict.clone()
    for n, (lo, cnt) in enumerate(zip(first, num)):
        for i in range(H):
            for j in range(W):
                px, py = (W - 2.0 * j - 1.0) / S, (H - 2.0 * i - 1.0) / S
                hits, cover = [], []
                for f in range(lo, lo + cnt):
                    hit = pixel_face_depth(px, py, faces[f], blur, *flags)
                    if hit is not None:
                        hits.append((hit[0], f))
                    # Covering: inside the face (step 6), ranked by the unclipped depth.
                    hard = pixel_face_depth(px, py, faces[f], 0.0, flags[0], False, flags[2])
                    if hard is not None:
                        assert hard[1] and hit is not None and hit[1]  # inside, and touching with blur
                        cover.append((hard[0], f))
                hits.sort()
                lst = [f for _, f in hits[:K]]
                strict[n, i, j, : len(lst)] = torch.tensor(lst, dtype=torch.int64)
                cover = min(cover)[1] if cover else None
                if cover is not None and cover not in lst:
                    lst[-1] = cover
                keep[n, i, j, : len(lst)] = torch.tensor(lst, dtype=torch.int64)
    return strict, keep


@st.composite
def stacked_scenes(draw):
    """Random faces plus a few big far faces, so that near blurred faces often crowd covering ones out."""
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    F = draw(st.integers(1, 14))
    centre = torch.rand(F, 1, 2, generator=g, dtype=D) * 2 - 1
    xy = centre + (torch.rand(F, 3, 2, generator=g, dtype=D) - 0.5) * (torch.rand(F, 1, 1, generator=g, dtype=D) * 0.8)
    z = torch.rand(F, 3, 1, generator=g, dtype=D) * 2 + 0.2
    big = torch.tensor([[[-4.0, -4.0], [4.0, -4.0], [0.0, 5.0]]], dtype=D).expand(2, 3, 2)
    zb = torch.rand(2, 3, 1, generator=g, dtype=D) + 2.5
    fv = torch.cat([torch.cat([xy, z], -1), torch.cat([big, zb], -1)])
    if draw(st.booleans()):
        fv = fv[torch.randperm(fv.shape[0], generator=g)]
    H, W = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kw = dict(
        faces_per_pixel=draw(st.integers(1, 4)),
        blur_radius=draw(st.sampled_from([1e-3, 0.01, 0.05])),
        perspective_correct=draw(st.booleans()),
        clip_barycentric_coords=draw(st.booleans()),
        cull_backfaces=draw(st.booleans()),
    )
    return fv, (H, W), kw


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacked_scenes())
def test_every_backend_follows_the_rule(scene):
    fv, size, kw = scene
    flags = (kw["perspective_correct"], kw["clip_barycentric_coords"], kw["cull_backfaces"])
    first, num = [0, 0], [fv.shape[0], fv.shape[0] - 2]  # two images: with and without the big faces
    strict, keep = _brute_force_lists(fv, first, num, size, kw["faces_per_pixel"], kw["blur_radius"], flags)
    for b in BACKENDS:
        args = (fv, torch.tensor(first), torch.tensor(num), size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert torch.equal(rasterize_visibility(*args, backend=b, keep_covering=False, **kw), strict), b
        assert torch.equal(rasterize_visibility(*args, backend=b, **kw), keep), b


def test_kept_face_has_its_own_fragment_values():
    # The fragment of the covering face in the last slot equals that of the face rasterized alone.
    K = 3
    fv = _ring_scene(K).to(torch.float32)
    verts, faces = fv.reshape(-1, 3), torch.arange(3 * (K + 1)).view(-1, 3)
    for fragments in ("fused", "torch"):
        frags = rasterize(verts, faces, 9, faces_per_pixel=K, blur_radius=0.01, fragments=fragments)
        alone = rasterize(verts, faces[K:], 9, faces_per_pixel=1, fragments=fragments)
        assert frags.pix_to_face[0, 4, 4].tolist() == [0, 1, K]
        torch.testing.assert_close(frags.zbuf[0, 4, 4, -1], alone.zbuf[0, 4, 4, 0])
        torch.testing.assert_close(frags.bary_coords[0, 4, 4, -1], alone.bary_coords[0, 4, 4, 0])
        torch.testing.assert_close(frags.dists[0, 4, 4, -1], alone.dists[0, 4, 4, 0])


def test_near_plane_clipped_covering_face_is_kept():
    # The covering face crosses the near plane (two pieces after clipping); K near faces crowd it out.
    K = 3
    fv = _ring_scene(K)
    fv[K, 0, 2] = 0.1  # one corner in front of the camera but behind z_clip_value = 0.5
    verts, faces = fv.reshape(-1, 3), torch.arange(3 * (K + 1)).view(-1, 3)
    kw = dict(faces_per_pixel=K, blur_radius=0.01, z_clip_value=0.5)
    with pytest.warns(UserWarning, match=LOST):
        strict = rasterize(verts, faces, 9, keep_covering=False, **kw)
    keep = rasterize(verts, faces, 9, **kw)
    alone = rasterize(verts, faces[K:], 9, z_clip_value=0.5)
    assert strict.pix_to_face[0, 4, 4].tolist() == [0, 1, 2]
    assert keep.pix_to_face[0, 4, 4].tolist() == [0, 1, K]
    covered = alone.pix_to_face[0, ..., 0] == 0
    assert covered.sum() > 40 and ((keep.pix_to_face[0] == K).any(-1) == covered).all()
    torch.testing.assert_close(keep.zbuf[0, 4, 4, -1], alone.zbuf[0, 4, 4, 0])
    torch.testing.assert_close(keep.bary_coords[0, 4, 4, -1], alone.bary_coords[0, 4, 4, 0])
    for backend in ("reference", "torch"):
        other = rasterize(verts, faces, 9, backend=backend, **kw)
        for a, b in zip(keep, other):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def _dragon(mesh_dir):
    import trimesh

    from diffras.structures import Meshes

    tm = trimesh.load(mesh_dir / "dragon" / "dragon_100k.ply", process=False, force="mesh")
    v = torch.tensor(tm.vertices, dtype=torch.float32)
    v = v - (v.min(0).values + v.max(0).values) / 2
    return Meshes([v / v.norm(dim=1).max()], [torch.tensor(tm.faces, dtype=torch.int64)])


@pytest.mark.parametrize("mesh", ["ico5", "dragon"])
def test_dense_mesh_every_covered_pixel_keeps_its_face(mesh, request):
    from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
    from diffras.ops import ico_sphere

    meshes = ico_sphere(5) if mesh == "ico5" else _dragon(request.getfixturevalue("mesh_dir"))
    R, T = look_at_view_transform(2.7, 10.0, 30.0)
    cam = FoVPerspectiveCameras(R=R, T=T, fov=60.0)
    size = 96
    # The SoftRas setting of the issue: sigma = 1e-4, K = 8.
    soft = RasterSettings(size, faces_per_pixel=8, blur_radius=math.log(1 / 1e-4 - 1) * 1e-4)
    hard = rasterize_meshes(meshes, cam, RasterSettings(size)).pix_to_face[0, ..., 0]
    covered = hard >= 0
    with pytest.warns(UserWarning, match=LOST) as rec:
        strict = rasterize_meshes(meshes, cam, replace(soft, keep_covering=False))
    has_own = (strict.pix_to_face[0] == hard[..., None]).any(-1)
    n_lost = int((covered & ~has_own).sum())
    # PyTorch3D's strict rule really drops covering faces here (the see-through renders).
    assert n_lost > 0.05 * int(covered.sum()) and f" {n_lost} covered pixel(s)" in str(rec[0].message)
    keep = rasterize_meshes(meshes, cam, soft).pix_to_face[0]
    assert (keep == hard[..., None]).any(-1)[covered].all()
    # Nothing else moves: the first K - 1 slots are the strict ones.
    assert torch.equal(keep[..., :-1], strict.pix_to_face[0, ..., :-1])
