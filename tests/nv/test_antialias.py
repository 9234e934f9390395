"""antialias: forward rule, unchanged interior, and gradients against finite differences of a heavily
supersampled hard render (the box-filtered image that analytic antialiasing approximates).

How close can analytic AA be? It sees one surface per pixel and moves coverage along one axis per pixel
pair, so per pixel it differs from true box-filtered coverage (corners of triangles, edges at 45
degrees, several edges in one pixel), but the total coverage it moves when an edge moves is exact for
straight edges spanning several pixels (per row, the crossing moves one pixel of coverage per pixel of
motion). For a loss that weights the image smoothly, the position gradients therefore agree with the
box-filter's to about 10%; we require cosine similarity > 0.97 and a norm ratio within 15%. The
finite differences use steps of 0.3 pixel on a 16x supersampled render (256 samples per pixel), so the
reference's own noise is at the percent level.
"""
import pytest
import torch
import torch.nn.functional as F

import diffras.nv as dr
from diffras.ops import ico_sphere

from ._reference import antialias_reference, perspective
from .test_rasterize import CTX, random_scene

COLORS = torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.2, 0.3, 0.9], [0.8, 0.8, 0.1]], dtype=torch.float64)


def flat_render(pos, tri, res, colors):
    rast, _ = dr.rasterize(CTX, pos, tri, res)
    ids = rast[..., 3].long()
    table = torch.cat([torch.zeros(1, 3, dtype=colors.dtype), colors])
    return table[ids], rast


def test_forward_matches_reference_and_leaves_interior_unchanged():
    pos, tri = random_scene(N=2, T=5, seed=2)
    color = torch.rand(2, 18, 20, 3, dtype=torch.float64)
    rast, _ = dr.rasterize(CTX, pos, tri, (18, 20))
    out = dr.antialias(color, rast, pos, tri)
    ref = antialias_reference(color, rast, pos, tri)
    assert torch.allclose(out, ref, atol=1e-12)
    changed = (out != color).any(-1)
    assert changed.sum() > 10
    ids = rast[..., 3]
    edge = torch.zeros_like(changed)
    dx = ids[:, :, 1:] != ids[:, :, :-1]
    dy = ids[:, 1:, :] != ids[:, :-1, :]
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    edge[:, 1:, :] |= dy
    edge[:, :-1, :] |= dy
    assert not (changed & ~edge).any(), "only pixels next to a triangle-id change may move"


def test_closed_mesh_interior_edges_are_not_silhouettes():
    mesh = ico_sphere(2, dtype=torch.float64)
    v, f = mesh.verts_packed(), mesh.faces_packed().to(torch.int32)
    clip = (torch.cat([v, torch.ones(len(v), 1, dtype=v.dtype)], 1) + torch.tensor([0, 0, -3.0, 0])) @ perspective().T
    rast, _ = dr.rasterize(CTX, clip[None], f, (48, 48))
    # Each triangle its own colour: interior edges of a closed convex mesh are not silhouettes (the
    # neighbour across them does not fold behind), so only pixels near the outline may change.
    tri_color = torch.rand(len(f) + 1, 1, dtype=torch.float64)
    tri_color[0] = 0
    color = tri_color[rast[..., 3].long()]
    out = dr.antialias(color, rast, clip[None], f)
    covered = (rast[..., 3] > 0).to(torch.float64)[None]
    interior = (-F.max_pool2d(-covered, 5, 1, 2))[0] == 1  # covered, with all of its 5 x 5 neighbourhood
    assert interior.sum() > 500
    assert torch.equal(out[..., 0][interior], color[..., 0][interior])
    assert (out != color).sum() > 20
    topo = dr.antialias_construct_topology_hash(f)
    assert (topo >= 0).all(), "every edge of a closed manifold has a partner"
    assert torch.equal(dr.antialias(color, rast, clip[None], f, topology_hash=topo), out)


def aa_grad_vs_supersampled(pos0, tri, colors, params_fn, weights, res=24, ss=16, step_px=0.3):
    H = W = res
    p = torch.zeros(params_fn.n, dtype=torch.float64, requires_grad=True)
    pos = params_fn(pos0, p)
    img, rast = flat_render(pos, tri, (H, W), colors)
    aa = dr.antialias(img, rast, pos, tri)
    (aa * weights).sum().backward()
    analytic = p.grad.clone()

    @torch.no_grad()
    def loss_ss(q):
        big, _ = flat_render(params_fn(pos0, q), tri, (H * ss, W * ss), colors)
        small = F.avg_pool2d(big.permute(0, 3, 1, 2), ss).permute(0, 2, 3, 1)
        return float((small * weights).sum())

    h = step_px * 2.0 / res  # NDC step of step_px pixels (params are NDC offsets scaled by w)
    fd = torch.zeros_like(analytic)
    for k in range(params_fn.n):
        e = torch.zeros_like(analytic)
        e[k] = h
        fd[k] = (loss_ss(e) - loss_ss(-e)) / (2 * h)
    return analytic, fd


class Shift:
    """Per-triangle NDC shifts (x, y) applied to the clip-space corners (scaled by w)."""

    def __init__(self, T, tri):
        self.n, self.tri = 2 * T, tri

    def __call__(self, pos0, p):
        d = p.reshape(-1, 2)
        shift = torch.cat([d.repeat_interleave(3, 0), torch.zeros(3 * len(d), 2, dtype=d.dtype)], 1)
        per_vert = torch.zeros(pos0.shape[1], 4, dtype=pos0.dtype).index_add(0, self.tri.long().reshape(-1), shift)
        return pos0 + per_vert[None] * pos0[..., 3:4]


def check_close(analytic, fd):
    cos = float(torch.dot(analytic, fd) / (analytic.norm() * fd.norm()))
    ratio = float(analytic.norm() / fd.norm())
    assert cos > 0.97 and 0.85 < ratio < 1.15, (cos, ratio, analytic, fd)


@pytest.mark.parametrize("seed", [0])
def test_gradients_match_supersampled_random_triangles(seed):
    # Three overlapping triangles (the middle one in front of the first, behind the third) of 10-20
    # pixels, randomly perturbed, with w in [1, 2] (perspective). Analytic AA needs triangles larger
    # than a pixel or two (nvdiffrast's documentation says as much): tiny triangles get lost between
    # pixel centres and their edges are not seen.
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([[-0.8, -0.7], [0.5, -0.8], [-0.6, 0.6], [-0.2, -0.3], [0.85, -0.1], [0.3, 0.85],
                         [-0.9, 0.1], [0.1, -0.05], [-0.4, 0.9]], dtype=torch.float64)
    xy = base + (torch.rand(9, 2, generator=g, dtype=torch.float64) - 0.5) * 0.2
    w = 1.0 + torch.rand(9, 1, generator=g, dtype=torch.float64)
    z = torch.tensor([-0.2, -0.1, -0.15, 0.3, 0.2, 0.25, -0.6, -0.5, -0.55], dtype=torch.float64)[:, None]
    pos0 = torch.cat([xy * w, z * w, w], 1)[None]
    tri = torch.arange(9, dtype=torch.int32).reshape(3, 3)
    R = 32
    gy, gx = torch.meshgrid(torch.linspace(0, 1, R), torch.linspace(0, 1, R), indexing="ij")
    weights = torch.stack([torch.sin(3 * gx) + gy, torch.cos(2 * gy) - gx, gx * gy], -1)[None].double()
    analytic, fd = aa_grad_vs_supersampled(pos0, tri, COLORS[:3], Shift(3, tri), weights, res=R)
    check_close(analytic, fd)
    # Without antialias there is no position gradient at all (point-sampled coverage).
    p = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    img, _ = flat_render(Shift(3, tri)(pos0, p), tri, (R, R), COLORS[:3])
    assert not img.requires_grad


def cube_mesh():
    v = torch.tensor([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], dtype=torch.float64)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    f = torch.tensor([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))], dtype=torch.int32)
    return v, f


def test_gradients_match_supersampled_closed_mesh():
    # A closed cube (shared vertices, so its 12 triangles' interior edges are found and skipped by the
    # topology hash) in a general orientation: a white cube on black, so every gradient is a silhouette
    # gradient. (A coarse sphere is a worse case for analytic AA: its silhouette triangles are seen
    # nearly edge-on, become slivers thinner than a pixel and are lost between pixel centres, exactly the
    # limitation nvdiffrast's documentation describes; then only part of the outline is antialiased.)
    from diffras.transforms import axis_angle_to_matrix

    v, f = cube_mesh()
    rot = axis_angle_to_matrix(torch.tensor([0.5, 0.8, 0.3], dtype=torch.float64))
    P = perspective()

    def move(_, p):  # translate the cube in view space (x, y, z)
        vv = v @ rot.T + p + torch.tensor([0.1, 0.0, -3.0], dtype=torch.float64)
        return (torch.cat([vv, torch.ones(len(v), 1, dtype=v.dtype)], 1) @ P.T)[None]

    move.n = 3
    gy, gx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    weights = torch.stack([gx, gy, gx + 0.5 * gy], -1)[None].double()
    colors = torch.ones(len(f), 3, dtype=torch.float64)
    analytic, fd = aa_grad_vs_supersampled(None, f, colors, move, weights, res=32, step_px=0.3)
    check_close(analytic, fd)


def test_color_gradient_and_boost():
    pos, tri = random_scene(N=1, T=3, seed=2)
    pos.requires_grad_(True)
    color = torch.rand(1, 8, 9, 2, dtype=torch.float64, requires_grad=True)
    rast, _ = dr.rasterize(CTX, pos, tri, (8, 9))
    # Colour is exactly linear; gradcheck w.r.t. colour (the pos gradient is nvdiffrast's, by design not
    # the derivative of the clamped forward at the 1/16-pixel acceptance border, so only colour here).
    assert torch.autograd.gradcheck(lambda c: dr.antialias(c, rast, pos.detach(), tri), (color,), fast_mode=True)
    w = torch.rand(1, 8, 9, 2, dtype=torch.float64)
    g1 = torch.autograd.grad((dr.antialias(color, rast, pos, tri) * w).sum(), pos)[0]
    g3 = torch.autograd.grad((dr.antialias(color, rast, pos, tri, pos_gradient_boost=3.0) * w).sum(), pos)[0]
    assert g1.abs().sum() > 0 and torch.allclose(g3, 3 * g1)


def test_antialias_bad_input():
    pos, tri = random_scene(N=1, T=2)
    rast, _ = dr.rasterize(CTX, pos, tri, (4, 4))
    with pytest.raises(ValueError, match="rast"):
        dr.antialias(torch.rand(1, 5, 4, 3), rast, pos, tri)
    with pytest.raises(ValueError, match="pos"):
        dr.antialias(torch.rand(1, 4, 4, 3, dtype=torch.float64), rast, pos[..., :3], tri)
    with pytest.raises(TypeError, match="pos_gradient_boost"):
        dr.antialias(torch.rand(1, 4, 4, 3, dtype=torch.float64), rast, pos, tri, pos_gradient_boost="x")
