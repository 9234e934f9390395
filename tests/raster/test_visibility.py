"""rasterize_visibility: the reference backend against closed forms, and input validation."""
import math

import pytest
import torch

from diffras.raster.pixels import pixel_centers_ndc
from diffras.raster.visibility import rasterize_visibility


def _one(fv, image_size=8, **kw):
    fv = torch.as_tensor(fv, dtype=torch.float64).reshape(-1, 3, 3)
    F = fv.shape[0]
    return rasterize_visibility(fv, torch.tensor([0]), torch.tensor([F]), image_size, backend="reference", **kw)[0]


# Front-facing in PyTorch3D's sense: counter-clockwise on screen (NDC +X points left), so clockwise in
# the (x, y) numbers themselves.
TRI = [[0.6, -0.5, 1.0], [-0.7, -0.4, 1.0], [0.1, 0.8, 1.0]]


def _inside_halfplanes(xy, tri):
    # Independent test: pixel centre strictly on the same side of every directed edge.
    v = torch.tensor(tri, dtype=torch.float64)[:, :2]
    pos = torch.ones(xy.shape[:-1], dtype=torch.bool)
    neg = pos.clone()
    for a, b in ((0, 1), (1, 2), (2, 0)):
        d = v[b] - v[a]
        cross = d[0] * (xy[..., 1] - v[a, 1]) - d[1] * (xy[..., 0] - v[a, 0])
        pos &= cross > 0
        neg &= cross < 0
    return pos | neg


@pytest.mark.parametrize("image_size", [(9, 9), (7, 12), (12, 5)])
def test_reference_single_triangle_matches_halfplanes(image_size):
    p2f = _one(TRI, image_size)
    xy = pixel_centers_ndc(image_size, dtype=torch.float64)
    expected = torch.where(_inside_halfplanes(xy, TRI), 0, -1)
    assert torch.equal(p2f[..., 0], expected)
    assert expected.eq(0).any()


def test_reference_depth_order_and_ties():
    near = [[x, y, 1.0] for x, y, _ in TRI]
    far = [[x, y, 3.0] for x, y, _ in TRI]
    p2f = _one([far, near, near], 9, faces_per_pixel=4)
    covered = p2f[..., 0] >= 0
    assert covered.any()
    # The two near copies tie: lower index first; the far face last; then empty.
    assert torch.equal(p2f[covered], torch.tensor([1, 2, 0, -1]).expand(int(covered.sum()), 4))


def test_reference_behind_camera_and_culling():
    assert (_one([[x, y, -0.5 if i == 0 else 1.0] for i, (x, y, _) in enumerate(TRI)]) == -1).all()
    cw = TRI[::-1]
    assert (_one(cw)[..., 0] >= 0).any()
    assert (_one(cw, cull_backfaces=True) == -1).all()
    assert (_one(TRI, cull_backfaces=True)[..., 0] >= 0).any()


def test_reference_degenerate_face_never_drawn():
    line = [[-1.0, -1.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
    assert (_one(line, blur_radius=0.1) == -1).all()


def test_reference_blur_reaches_outside_pixels():
    # One pixel centre (column 4, row 4 of a 9x9 image is NDC (0, 0)); a triangle ending left of it.
    tri = [[0.3, -0.5, 1.0], [0.05, -0.5, 1.0], [0.05, 0.5, 1.0]]  # not covering x = 0
    assert _one(tri, 9)[4, 4, 0] == -1
    d2 = 0.05**2
    assert _one(tri, 9, blur_radius=d2 * 1.01)[4, 4, 0] == 0
    assert _one(tri, 9, blur_radius=d2 * 0.99)[4, 4, 0] == -1


def _good():
    fv = torch.tensor([TRI], dtype=torch.float32)
    return fv, torch.tensor([0]), torch.tensor([1])


@pytest.mark.parametrize(
    "change, exc, match",
    [
        (dict(face_verts=[1.0]), TypeError, "face_verts"),
        (dict(face_verts=torch.zeros(1, 3, 2)), ValueError, "face_verts"),
        (dict(face_verts=torch.zeros(1, 3, 3, dtype=torch.int64)), TypeError, "face_verts"),
        (dict(face_verts=torch.full((1, 3, 3), math.nan)), ValueError, "face_verts"),
        (dict(face_verts=torch.full((1, 3, 3), math.inf)), ValueError, "face_verts"),
        (dict(first=torch.tensor([0.0])), TypeError, "mesh_to_face_first_idx"),
        (dict(first=torch.tensor([[0]])), ValueError, "mesh_to_face_first_idx"),
        (dict(first=torch.tensor([2])), ValueError, "mesh_to_face_first_idx"),
        (dict(first=torch.tensor([-1])), ValueError, "mesh_to_face_first_idx"),
        (dict(num=torch.tensor([1, 1])), ValueError, "num_faces_per_mesh"),
        (dict(num=torch.tensor([-1])), ValueError, "num_faces_per_mesh"),
        (dict(num=torch.tensor([2])), ValueError, "num_faces_per_mesh"),
        (dict(image_size=0), ValueError, "image_size"),
        (dict(image_size=(4, 4, 4)), ValueError, "image_size"),
        (dict(image_size=2.5), TypeError, "image_size"),
        (dict(faces_per_pixel=0), ValueError, "faces_per_pixel"),
        (dict(faces_per_pixel=1.0), TypeError, "faces_per_pixel"),
        (dict(blur_radius=-1e-3), ValueError, "blur_radius"),
        (dict(blur_radius=math.nan), ValueError, "blur_radius"),
        (dict(perspective_correct=1), TypeError, "perspective_correct"),
        (dict(clip_barycentric_coords=None), TypeError, "clip_barycentric_coords"),
        (dict(cull_backfaces="yes"), TypeError, "cull_backfaces"),
        (dict(backend="cuda"), ValueError, "backend"),
        (dict(bin_size=-1), ValueError, "bin_size"),
        (dict(max_faces_per_bin=0), ValueError, "max_faces_per_bin"),
    ],
)
def test_bad_input_names_the_argument(change, exc, match):
    fv, first, num = _good()
    fv = change.pop("face_verts", fv)
    first = change.pop("first", first)
    num = change.pop("num", num)
    image_size = change.pop("image_size", 8)
    with pytest.raises(exc, match=match):
        rasterize_visibility(fv, first, num, image_size, backend=change.pop("backend", "reference"), **change)


def test_empty_batch_and_empty_mesh():
    fv, _, _ = _good()
    empty = torch.zeros(0, dtype=torch.int64)
    out = rasterize_visibility(fv, empty, empty, (3, 4), backend="reference")
    assert out.shape == (0, 3, 4, 1) and out.dtype == torch.int64
    out = rasterize_visibility(fv, torch.tensor([0, 1]), torch.tensor([1, 0]), 6, backend="reference")
    assert (out[1] == -1).all() and (out[0] >= 0).any()


def test_device_mismatch_names_the_argument():
    fv, first, num = _good()
    with pytest.raises(ValueError, match="mesh_to_face_first_idx"):
        rasterize_visibility(fv, first.to("meta"), num, 8)
    with pytest.raises(ValueError, match="num_faces_per_mesh"):
        rasterize_visibility(fv, first, num.to("meta"), 8)


def test_float32_and_float64_inputs_agree():
    fv, first, num = _good()
    a = rasterize_visibility(fv, first, num, (5, 7), backend="reference", blur_radius=0.01, faces_per_pixel=2)
    b = rasterize_visibility(fv.double(), first, num, (5, 7), backend="reference", blur_radius=0.01, faces_per_pixel=2)
    assert torch.equal(a, b) and a.device == fv.device
