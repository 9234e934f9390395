"""rasterize(): conventions, layouts, closed forms, culling, empty input, bad input."""

import pytest
import torch

from diffras.raster import rasterize, rasterize_visibility

TRI = torch.tensor([[0, 1, 2]])


def _tri(*corners, dtype=torch.float32):
    return torch.tensor(corners, dtype=dtype)


def test_orientation_top_left_of_ndc_is_row0_col0():
    # +X left, +Y up: a small triangle at large +x, +y lands at the top-left of the image.
    v = _tri([1.0, 1.0, 1.0], [0.6, 1.0, 1.0], [1.0, 0.6, 1.0])
    frags = rasterize(v, TRI, 10, backend="reference")
    hit = (frags.pix_to_face[0, ..., 0] >= 0).nonzero()
    assert len(hit) > 0
    assert hit[:, 0].max() < 3 and hit[:, 1].max() < 3
    assert frags.pix_to_face[0, 0, 0, 0] == 0


def test_non_square_image_long_side_spans_beyond_one():
    # W > H: x in NDC spans [-W/H, W/H]; a face at x in [1.2, 1.45] is visible at the left columns.
    v = _tri([1.45, 0.2, 1.0], [1.2, 0.2, 1.0], [1.45, -0.2, 1.0])
    frags = rasterize(v, TRI, (8, 12), backend="reference")
    cols = (frags.pix_to_face[0, ..., 0] >= 0).nonzero()[:, 1]
    assert len(cols) > 0 and cols.max() <= 1
    # Pixel centre of column j: x = (W - 2j - 1) / min(H, W).
    assert (12 - 2 * cols.min().item() - 1) / 8 <= 1.45


def test_covered_pixel_count_matches_exact_area():
    H = W = 96
    v = _tri([0.71, -0.53, 2.0], [-0.83, -0.3, 2.0], [0.12, 0.88, 2.0], dtype=torch.float64)
    frags = rasterize(v, TRI, (H, W))
    count = int((frags.pix_to_face >= 0).sum())
    xy = v[:, :2]
    area_ndc = 0.5 * abs(float((xy[1, 0] - xy[0, 0]) * (xy[2, 1] - xy[0, 1]) - (xy[2, 0] - xy[0, 0]) * (xy[1, 1] - xy[0, 1])))
    px = 2.0 / min(H, W)
    area_px = area_ndc / px**2
    perim_px = sum(float((xy[i] - xy[(i + 1) % 3]).norm()) for i in range(3)) / px
    # Only pixels crossed by the boundary can be misclassified: at most ~perimeter of them.
    assert abs(count - area_px) <= perim_px + 4
    assert abs(count - area_px) / area_px < 0.05


def test_shared_and_packed_layouts_agree():
    g = torch.Generator().manual_seed(3)
    N, V = 2, 5
    verts = torch.cat([torch.rand(N, V, 2, generator=g) * 2 - 1, torch.rand(N, V, 1, generator=g) + 1], -1)
    faces = torch.tensor([[0, 1, 2], [2, 3, 4], [0, 2, 4]])
    a = rasterize(verts, faces, (7, 9), faces_per_pixel=3, blur_radius=0.01, backend="reference")
    packed_faces = torch.cat([faces, faces + V])
    b = rasterize(verts.reshape(-1, 3), packed_faces, (7, 9), num_faces_per_mesh=torch.tensor([3, 3]),
                  faces_per_pixel=3, blur_radius=0.01, backend="reference")
    assert a.pix_to_face.shape == (2, 7, 9, 3)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    # Image 1 only ever sees faces 3..5 (packed indices n * F + f).
    p = a.pix_to_face[1]
    assert ((p == -1) | (p >= 3)).all()


def test_matches_visibility_pix_to_face_and_backends_agree():
    g = torch.Generator().manual_seed(5)
    fv = torch.cat([torch.rand(20, 3, 2, generator=g) * 2.2 - 1.1, torch.rand(20, 3, 1, generator=g) + 0.5], -1)
    kw = dict(faces_per_pixel=4, blur_radius=0.003, perspective_correct=True)
    ref = rasterize(fv.reshape(-1, 3), torch.arange(60).view(20, 3), (11, 13), backend="reference", **kw)
    direct = rasterize_visibility(fv, torch.tensor([0]), torch.tensor([20]), (11, 13), backend="reference",
                                  clip_barycentric_coords=True, **kw)
    assert torch.equal(ref.pix_to_face, direct)
    for backend in ("torch", "numba"):
        pytest.importorskip(f"diffras.raster._visibility_{backend}")
        other = rasterize(fv.reshape(-1, 3), torch.arange(60).view(20, 3), (11, 13), backend=backend, **kw)
        for x, y in zip(ref, other):
            torch.testing.assert_close(x, y)


def test_k_larger_than_faces_at_pixel():
    v = torch.tensor([[0.5, 0.5, 1.0], [-0.5, 0.5, 1.0], [0.0, -0.5, 1.0],
                      [0.5, 0.5, 2.0], [-0.5, 0.5, 2.0], [0.0, -0.5, 2.0]])
    frags = rasterize(v, torch.tensor([[0, 1, 2], [3, 4, 5]]), 8, faces_per_pixel=5, backend="reference")
    centre = frags.pix_to_face[0, 4, 4]
    assert centre.tolist() == [0, 1, -1, -1, -1]
    assert frags.zbuf[0, 4, 4].tolist() == [1.0, 2.0, -1.0, -1.0, -1.0]


def test_cull_backfaces():
    ccw = _tri([0.5, 0.5, 1.0], [-0.5, 0.5, 1.0], [0.0, -0.5, 1.0])
    # PyTorch3D's face_area = edge(v0, v1, v2); faces with face_area < 0 are back faces.
    area = (ccw[0, 0] - ccw[1, 0]) * (ccw[2, 1] - ccw[1, 1]) - (ccw[0, 1] - ccw[1, 1]) * (ccw[2, 0] - ccw[1, 0])
    front, back = (ccw, ccw[[0, 2, 1]]) if area > 0 else (ccw[[0, 2, 1]], ccw)
    assert (rasterize(front, TRI, 8, cull_backfaces=True).pix_to_face >= 0).any()
    assert (rasterize(back, TRI, 8, cull_backfaces=True).pix_to_face == -1).all()
    assert (rasterize(back, TRI, 8, cull_backfaces=False).pix_to_face >= 0).any()


def test_cull_to_frustum_changes_nothing_visible_and_drops_outside_faces():
    g = torch.Generator().manual_seed(7)
    centres = torch.rand(40, 1, 2, generator=g) * 6 - 3
    fv = torch.cat([centres + torch.rand(40, 3, 2, generator=g) * 0.6 - 0.3, torch.rand(40, 3, 1, generator=g) + 1], -1)
    kw = dict(faces_per_pixel=3, blur_radius=0.01)
    a = rasterize(fv.reshape(-1, 3), torch.arange(120).view(40, 3), (9, 15), cull_to_frustum=True, **kw)
    b = rasterize(fv.reshape(-1, 3), torch.arange(120).view(40, 3), (9, 15), cull_to_frustum=False, **kw)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def test_empty_faces_and_empty_batch():
    v = torch.rand(4, 3)
    frags = rasterize(v, torch.zeros(0, 3, dtype=torch.int64), (5, 6), faces_per_pixel=2)
    assert frags.pix_to_face.shape == (1, 5, 6, 2) and (frags.pix_to_face == -1).all()
    assert (frags.zbuf == -1).all() and frags.bary_coords.shape == (1, 5, 6, 2, 3)
    frags = rasterize(torch.rand(0, 3, 3), TRI, 4)
    assert frags.pix_to_face.shape == (0, 4, 4, 1)
    # A heterogeneous packed batch with an empty mesh in the middle.
    v = _tri([0.5, 0.5, 1.0], [-0.5, 0.5, 1.0], [0.0, -0.5, 1.0])
    v = torch.cat([v, v])
    frags = rasterize(v, torch.tensor([[0, 1, 2], [3, 4, 5]]), 6, num_faces_per_mesh=torch.tensor([1, 0, 1]))
    assert (frags.pix_to_face[1] == -1).all()
    assert set(frags.pix_to_face[2].unique().tolist()) == {-1, 1}


def test_float64_in_float64_out():
    v = _tri([0.5, 0.5, 1.0], [-0.5, 0.5, 1.0], [0.0, -0.5, 1.0], dtype=torch.float64)
    frags = rasterize(v, TRI, 6)
    assert frags.zbuf.dtype == frags.bary_coords.dtype == frags.dists.dtype == torch.float64


GOOD_V = _tri([0.5, 0.5, 1.0], [-0.5, 0.5, 1.0], [0.0, -0.5, 1.0])


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(verts=GOOD_V * float("nan")), ValueError, "verts"),
        (dict(verts=GOOD_V.clone().fill_(float("inf"))), ValueError, "verts"),
        (dict(verts=GOOD_V.long()), TypeError, "verts"),
        (dict(verts=GOOD_V[:, :2]), ValueError, "verts"),
        (dict(verts=[[0.0, 0.0, 1.0]]), TypeError, "verts"),
        (dict(faces=torch.tensor([[0, 1, 3]])), ValueError, "faces"),
        (dict(faces=torch.tensor([[0, 1, -1]])), ValueError, "faces"),
        (dict(faces=torch.tensor([[0.0, 1.0, 2.0]])), TypeError, "faces"),
        (dict(faces=torch.tensor([0, 1, 2])), ValueError, "faces"),
        (dict(image_size=0), ValueError, "image_size"),
        (dict(image_size=(4, -1)), ValueError, "image_size"),
        (dict(image_size=10**6), ValueError, "image_size"),
        (dict(image_size=4.5), TypeError, "image_size"),
        (dict(faces_per_pixel=0), ValueError, "faces_per_pixel"),
        (dict(blur_radius=-0.1), ValueError, "blur_radius"),
        (dict(blur_radius=float("nan")), ValueError, "blur_radius"),
        (dict(z_clip_value=0.0), ValueError, "z_clip_value"),
        (dict(backend="cuda-magic"), ValueError, "backend"),
        (dict(perspective_correct=1), TypeError, "perspective_correct"),
        (dict(num_faces_per_mesh=torch.tensor([2])), ValueError, "num_faces_per_mesh"),
        (dict(num_faces_per_mesh=torch.tensor([-1, 2])), ValueError, "num_faces_per_mesh"),
        (dict(faces=TRI.to("meta")), ValueError, "faces"),
        (dict(keep_covering="yes"), TypeError, "keep_covering"),
        (dict(fragments="cuda"), ValueError, "fragments"),
        (dict(verts=GOOD_V.half(), fragments="fused"), ValueError, "fragments"),
    ],
)
def test_bad_input(kwargs, exc, name):
    args = dict(verts=GOOD_V, faces=TRI, image_size=8)
    args.update(kwargs)
    v, f, s = args.pop("verts"), args.pop("faces"), args.pop("image_size")
    with pytest.raises(exc, match=name):
        rasterize(v, f, s, **args)


@pytest.mark.parametrize("fragments, device_dtype, fused", [
    ("auto", torch.float32, True), ("auto", torch.float64, True), ("auto", torch.float16, False),
    ("torch", torch.float32, False), ("fused", torch.float64, True),
])
@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_fragments_setting_chooses_the_kernel(monkeypatch, fragments, device_dtype, fused, backend):
    # The fragment path follows `fragments` alone, not the visibility backend.
    import diffras.raster._fragments_numba as fn

    calls = []
    real = fn.fused_fragments_packed
    monkeypatch.setattr(fn, "fused_fragments_packed", lambda *a, **k: calls.append(1) or real(*a, **k))
    v = GOOD_V.to(device_dtype)
    frags = rasterize(v, TRI, 8, backend=backend, fragments=fragments, faces_per_pixel=2, blur_radius=0.01)
    assert bool(calls) == fused
    ref = rasterize(v.double(), TRI, 8, fragments="torch", faces_per_pixel=2, blur_radius=0.01)
    assert torch.equal(frags.pix_to_face, ref.pix_to_face) and (ref.pix_to_face >= 0).sum() > 10
    tol = 1e-3 if device_dtype == torch.float16 else 1e-5
    for a, b in list(zip(frags, ref))[1:]:
        torch.testing.assert_close(a.double(), b, rtol=tol, atol=tol)
