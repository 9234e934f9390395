"""Near-plane clipping: fragments of clipped pieces map back to the original face exactly."""
import numpy as np
import pytest
import torch

from diffras.raster import rasterize
from diffras.raster.clip import clip_faces

FOCAL = 1.2


def _project(view):
    """Pinhole projection to (x_ndc, y_ndc, z_view), as a FoV camera does (x_ndc = f x / z)."""
    return torch.cat([FOCAL * view[..., :2] / view[..., 2:3], view[..., 2:3]], -1)


def _ray_hit(view_tri, px, py):
    """Depth where the pixel's ray (x/z = px/f, y/z = py/f) meets the triangle's plane, and the
    view-space barycentrics of that point (independent: 3x3 linear solve)."""
    d = np.array([px / FOCAL, py / FOCAL, 1.0])
    A = np.stack([view_tri[0] - view_tri[2], view_tri[1] - view_tri[2], -d], 1)
    a, b, t = np.linalg.solve(A, -view_tri[2])
    return t, np.array([a, b, 1 - a - b])


@pytest.mark.parametrize("order", [(0, 1, 2), (1, 2, 0), (2, 0, 1)])
@pytest.mark.parametrize("n_behind", [1, 2])
def test_clipped_fragments_lie_on_the_original_face(order, n_behind):
    if n_behind == 1:
        tri = np.array([[0.2, 0.1, -0.5], [0.9, 0.2, 2.0], [-0.6, 0.7, 2.5]])
    else:
        tri = np.array([[0.9, -0.8, -0.5], [-0.9, -0.2, 0.2], [-0.1, 0.5, 1.2]])
    tri = tri[list(order)]
    view = torch.tensor(tri, dtype=torch.float64)
    z_clip = 0.5
    H, W = 24, 20
    frags = rasterize(_project(view), torch.tensor([[0, 1, 2]]), (H, W), perspective_correct=True,
                      z_clip_value=z_clip, backend="reference")
    S = min(H, W)
    n_filled = 0
    for i in range(H):
        for j in range(W):
            px, py = (W - 2 * j - 1) / S, (H - 2 * i - 1) / S
            t, bary = _ray_hit(tri, px, py)
            inside = (bary > 1e-9).all() and t >= z_clip + 1e-9
            f = int(frags.pix_to_face[0, i, j, 0])
            if abs(t - z_clip) < 1e-6 or (np.abs(bary) < 1e-6).any():
                continue  # on a boundary: either answer is right
            assert (f == 0) == inside, (i, j, t, bary)
            if f == 0:
                n_filled += 1
                assert frags.zbuf[0, i, j, 0].item() == pytest.approx(t, rel=1e-9)
                np.testing.assert_allclose(frags.bary_coords[0, i, j, 0].numpy(), bary, atol=1e-9)
    assert n_filled > 10


def test_clip_without_crossing_is_a_no_op_and_culls_faces_behind_the_plane():
    view = torch.tensor([[0.3, 0.2, 2.0], [-0.4, 0.3, 2.5], [0.0, -0.4, 3.0],
                         [0.3, 0.2, 0.3], [-0.4, 0.3, 0.3], [0.0, -0.4, 0.4]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    a = rasterize(_project(view), faces, 16, faces_per_pixel=2, perspective_correct=True, z_clip_value=0.5,
                  backend="reference")
    b = rasterize(_project(view[:3]), faces[:1], 16, faces_per_pixel=2, perspective_correct=True, backend="reference")
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def test_quad_pieces_never_both_in_a_pixel_list():
    view = torch.tensor([[0.05, 0.0, -0.5], [0.9, 0.3, 2.0], [-0.7, 0.6, 2.5]], dtype=torch.float64)
    frags = rasterize(_project(view), torch.tensor([[0, 1, 2]]), 20, faces_per_pixel=4, blur_radius=0.02,
                      perspective_correct=True, z_clip_value=0.4, backend="reference")
    p2f = frags.pix_to_face
    assert (p2f[..., 0] == 0).sum() > 20
    assert (p2f[..., 1:] == -1).all()  # one original face: at most one slot per pixel
    m = p2f >= 0
    assert torch.isfinite(frags.bary_coords[m]).all() and (frags.bary_coords[m] >= 0).all()


def test_clip_faces_pieces_keep_winding_and_layout():
    view = torch.tensor([[[0.2, 0.1, -0.5], [0.9, 0.2, 2.0], [-0.6, 0.7, 2.5]],     # case 4
                         [[0.3, 0.2, 2.0], [-0.4, 0.3, 2.5], [0.0, -0.4, 3.0]],     # case 1
                         [[0.3, 0.2, -2.0], [-0.4, 0.3, -2.5], [0.0, -0.4, -3.0]],  # case 2
                         [[0.4, -0.3, -0.5], [-0.3, 0.1, 0.2], [-0.2, 0.6, 2.5]]],  # case 3
                        dtype=torch.float64)
    fv = _project(view)
    c = clip_faces(fv, torch.tensor([0, 2]), torch.tensor([2, 2]), 0.5, perspective_correct=True)
    assert c.to_original.tolist() == [0, 0, 1, 3]
    assert c.num_faces_per_mesh.tolist() == [3, 1] and c.mesh_to_face_first_idx.tolist() == [0, 3]
    assert c.neighbor.tolist() == [1, 0, -1, -1]
    assert (c.face_verts[..., 2] >= 0.5 - 1e-12).all()

    def normal(t):
        return torch.linalg.cross(t[1] - t[0], t[2] - t[0])

    # Conversion rows are barycentrics of the piece corners: they reproduce the view-space corners,
    # and the pieces keep the original face's winding (same normal direction in view space).
    for piece, conv, orig in zip(c.face_verts, c.conversion, c.to_original):
        corners_view = conv @ view[orig]
        torch.testing.assert_close(_project(corners_view), piece)
        assert torch.dot(normal(corners_view), normal(view[orig])) > 0
