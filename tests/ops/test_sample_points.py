"""sample_points_from_meshes: on the surface, area-proportional, uniform in a face, differentiable."""
from __future__ import annotations

import math

import pytest
import torch

from diffras.ops import ico_sphere, sample_points_from_meshes
from diffras.structures import Meshes


def _on_surface(points, verts, faces, tol=1e-5):
    """(P,) bool: the point lies in some triangle (brute force over faces)."""
    a, b, c = verts[faces].double().unbind(1)  # (F, 3)
    p = points.double().unsqueeze(1)  # (P, 1, 3)
    n = torch.linalg.cross(b - a, c - a, dim=-1)
    n = n / n.norm(dim=-1, keepdim=True)
    dist = ((p - a) * n).sum(-1).abs()  # (P, F) distance to the plane
    q = p - ((p - a) * n).sum(-1, keepdim=True) * n
    # barycentrics of the projection by sub-triangle areas (signed along n)
    def signed(x, y, z):
        x, y, z = torch.broadcast_tensors(x, y, z)
        return (torch.linalg.cross(y - x, z - x, dim=-1) * n).sum(-1)
    total = signed(a, b, c)
    w0, w1, w2 = signed(q, b, c) / total, signed(a, q, c) / total, signed(a, b, q) / total
    inside = (w0 >= -tol) & (w1 >= -tol) & (w2 >= -tol)
    return ((dist < tol) & inside).any(1)


def test_points_lie_on_the_surface_and_normals_match():
    m = Meshes([ico_sphere(1).verts_packed(), torch.rand(6, 3)],
               [ico_sphere(1).faces_packed(), torch.tensor([[0, 1, 2], [3, 4, 5], [0, 2, 4]])])
    pts, nrm = sample_points_from_meshes(m, 300, return_normals=True)
    assert pts.shape == (2, 300, 3) and nrm.shape == (2, 300, 3)
    for i in range(2):
        v, f = m.get_mesh_verts_faces(i)
        assert _on_surface(pts[i], v, f).all()
    torch.testing.assert_close(nrm.norm(dim=-1), torch.ones(2, 300))
    # on the sphere every sampled normal points outward, near the point's direction
    assert ((nrm[0] * pts[0]).sum(-1) > 0.9).all()


def test_area_proportional_choice():
    # two faces, areas 1 (z = 0) and 3 (z = 1)
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 1], [3, 0, 1], [0, 2, 1]])
    m = Meshes([v], [torch.tensor([[0, 1, 2], [3, 4, 5]])])
    torch.testing.assert_close(m.faces_areas_packed(), torch.tensor([1.0, 3.0]))
    p = 20000
    pts = sample_points_from_meshes(m, p)[0]
    frac = (pts[:, 2] > 0.5).double().mean().item()
    sigma = math.sqrt(0.75 * 0.25 / p)
    assert abs(frac - 0.75) < 5 * sigma


def test_uniform_within_a_triangle():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    m = Meshes([v], [torch.tensor([[0, 1, 2]])])
    p = 20000
    pts = sample_points_from_meshes(m, p)[0]
    # mean is the centroid; each of the 4 midpoint sub-triangles gets 1/4 of the points
    torch.testing.assert_close(pts.mean(0), torch.tensor([1 / 3, 1 / 3, 0.0]), atol=0.01, rtol=0)
    x, y = pts[:, 0], pts[:, 1]
    corner = [(x + y < 0.5), (x > 0.5), (y > 0.5)]
    sigma = math.sqrt(0.25 * 0.75 / p)
    for c in corner:
        assert abs(c.double().mean().item() - 0.25) < 5 * sigma


def test_empty_meshes_give_zeros():
    v = torch.rand(4, 3)
    m = Meshes([v, torch.zeros(0, 3), v], [torch.tensor([[0, 1, 2]]), torch.zeros(0, 3, dtype=torch.int64),
                                           torch.zeros(0, 3, dtype=torch.int64)])
    pts, nrm = sample_points_from_meshes(m, 50, return_normals=True)
    assert pts[0].abs().sum() > 0
    assert torch.equal(pts[1:], torch.zeros(2, 50, 3)) and torch.equal(nrm[1:], torch.zeros(2, 50, 3))
    assert torch.equal(sample_points_from_meshes(Meshes([], []), 5), torch.zeros(0, 5, 3))


def test_all_degenerate_mesh_samples_uniformly_without_error():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])
    m = Meshes([v], [torch.tensor([[0, 1, 2], [0, 2, 1]])])
    pts = sample_points_from_meshes(m, 100)
    assert torch.isfinite(pts).all() and torch.equal(pts[0, :, 1:], torch.zeros(100, 2))


def test_dtype_followed_and_gradcheck():
    v = torch.rand(5, 3, dtype=torch.float64, requires_grad=True)
    f = torch.tensor([[0, 1, 2], [1, 3, 2], [2, 3, 4]])

    def fn(x):
        torch.manual_seed(3)  # same face choice and weights for every evaluation
        pts, nrm = sample_points_from_meshes(Meshes([x], [f]), 6, return_normals=True)
        return pts, nrm

    pts, nrm = fn(v)
    assert pts.dtype == torch.float64 and nrm.dtype == torch.float64
    assert torch.autograd.gradcheck(fn, (v,))


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((torch.rand(1, 3, 3),), {}, TypeError, "meshes"),
    ((None,), {}, TypeError, "meshes"),
    ((), {"num_samples": 0}, ValueError, "num_samples"),
    ((), {"num_samples": 10.0}, TypeError, "num_samples"),
    ((), {"return_normals": 1}, TypeError, "return_normals"),
])
def test_bad_input(args, kwargs, exc, match):
    if not args:
        args = (ico_sphere(0),)
    with pytest.raises(exc, match=match):
        sample_points_from_meshes(*args, **kwargs)


def test_return_textures_vertex_and_uv_reproduce_linear_fields():
    from diffras.shading import TexturesUV, TexturesVertex

    sphere = ico_sphere(1)
    v, f = sphere.verts_packed(), sphere.faces_packed()
    # Vertex features equal to the positions: interpolating them gives back the sampled point itself.
    empty = (torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64))
    m = Meshes([v, empty[0]], [f, empty[1]], textures=TexturesVertex([v.clone(), torch.zeros(0, 3)]))
    pts, nrm, tex = sample_points_from_meshes(m, 200, return_normals=True, return_textures=True)
    assert tex.shape == (2, 200, 3) and nrm.shape == (2, 200, 3)
    torch.testing.assert_close(tex[0], pts[0])
    assert bool((tex[1] == 0).all())
    pts2, tex2 = sample_points_from_meshes(m, 50, return_textures=True)
    torch.testing.assert_close(tex2[0], pts2[0])
    # A UV map linear in (u, v) (align_corners=True: texel centres at the ends), UVs = the vertices' x, y
    # mapped to [0, 1]: the sampled colour is the point's own (u, v), not blurred by mip-mapping.
    size = 64
    cols = torch.linspace(0, 1, size)
    maps = torch.stack(torch.broadcast_tensors(cols[None, :], cols.flip(0)[:, None]), -1)[None]  # row 0: v = 1
    uv = (v[:, :2] + 1) / 2
    m = Meshes([v], [f], textures=TexturesUV(maps.requires_grad_(), [f], [uv]))
    pts, tex = sample_points_from_meshes(m, 300, return_textures=True)
    torch.testing.assert_close(tex[0], (pts[0, :, :2] + 1) / 2, atol=1e-5, rtol=0)
    tex.sum().backward()
    assert maps.grad is not None and float(maps.grad.sum()) > 0


def test_return_textures_needs_textures():
    m = ico_sphere(0)
    with pytest.raises(ValueError, match="return_textures"):
        sample_points_from_meshes(m, 10, return_textures=True)
    with pytest.raises(TypeError, match="return_textures"):
        sample_points_from_meshes(m, 10, return_textures=1)
