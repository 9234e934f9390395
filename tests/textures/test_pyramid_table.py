"""The fused mip-pyramid texel table (``_pyramid_numba``) against the plain-torch one (``build_pyramid`` + cat):
values and map gradients in float64 and float32, gradcheck in float64; and maps shared between views
(``TexturesUV.extend``) stored once in the table with the gradients of separate copies."""
import pytest
import torch
from torch.autograd import gradcheck

from diffras.structures import Meshes
from diffras.textures import TexturesUV
from diffras.textures.mipmap import build_pyramid, sample_points, texel_table

D = torch.float64
# Even (exact 2 x 2 boxes), odd (overlapping adaptive boxes), single rows/columns and a 1 x 1 map.
SIZES = [(8, 16), (7, 10), (5, 8), (1, 5), (6, 1), (1, 1), (9, 9)]


def _maps(dtype, C=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(h, w, C, generator=g, dtype=dtype) for h, w in SIZES]


def _table_and_grads(maps, fused, seed=1):
    leaves = [m.detach().clone().requires_grad_(True) for m in maps]
    table = texel_table(leaves, True, fused=fused)
    up = torch.randn(table.texels.shape, generator=torch.Generator().manual_seed(seed), dtype=table.texels.dtype)
    grads = torch.autograd.grad((table.texels * up).sum(), leaves)
    return table, grads


@pytest.mark.parametrize("dtype,tol", [(D, 1e-12), (torch.float32, 1e-5)])
def test_fused_pyramid_matches_torch(dtype, tol):
    maps = _maps(dtype)
    (ta, ga), (tb, gb) = _table_and_grads(maps, True), _table_and_grads(maps, False)
    for name in ("offset", "height", "width", "num_levels"):
        assert torch.equal(getattr(ta, name), getattr(tb, name)), name
    torch.testing.assert_close(ta.texels, tb.texels.detach(), rtol=tol, atol=tol)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=tol, atol=tol)
    # The layout is build_pyramid's: level l of map i at its offset, row-major.
    levels = build_pyramid(maps[1])
    assert int(ta.num_levels[1]) == len(levels)
    for lev, (o, h, w) in enumerate(zip(ta.offset[1][:len(levels)], ta.height[1], ta.width[1])):
        assert (int(h), int(w)) == tuple(levels[lev].shape[:2])
        torch.testing.assert_close(ta.texels[int(o): int(o) + int(h * w)].view(int(h), int(w), -1), levels[lev],
                                   rtol=tol, atol=tol)


def test_fused_pyramid_gradcheck():
    g = torch.Generator().manual_seed(2)
    a = torch.rand(7, 10, 2, generator=g, dtype=D, requires_grad=True)
    b = torch.rand(4, 1, 1, generator=g, dtype=D, requires_grad=True)
    c = torch.rand(8, 4, 1, generator=g, dtype=D, requires_grad=True)
    assert gradcheck(lambda x: texel_table([x], True, fused=True).texels, (a,))
    assert gradcheck(lambda x, y: texel_table([x, y], True, fused=True).texels, (b, c))


@pytest.mark.parametrize("fused", [True, False])
def test_shared_maps_stored_once_with_the_gradients_of_copies(fused):
    g = torch.Generator().manual_seed(3)
    a = torch.rand(12, 10, 3, generator=g, dtype=D, requires_grad=True)
    b = torch.rand(6, 8, 3, generator=g, dtype=D, requires_grad=True)
    P = 50
    map_idx = torch.tensor([0, 1, 2, 2, 0] * (P // 5))
    uv = torch.rand(P, 2, generator=g, dtype=D)
    lod = torch.rand(P, generator=g, dtype=D) * 3.0 - 0.5
    up = torch.randn(P, 3, generator=g, dtype=D)
    shared = texel_table([a, b, a], True, fused=fused)
    alone = texel_table([a, b], True, fused=fused)
    assert shared.texels.shape == alone.texels.shape  # a's rows are not repeated
    assert torch.equal(shared.offset[2], shared.offset[0])
    # Reference: three distinct tensors (a * 1 is another object with a's values and gradient path).
    copies = texel_table([a, b, a * 1.0], True, fused=fused)
    assert copies.texels.shape[0] > shared.texels.shape[0]
    outs, grads = [], []
    for table in (shared, copies):
        out = sample_points(table, map_idx, uv, lod, "border", True, "bilinear")
        outs.append(out)
        grads.append(torch.autograd.grad((out * up).sum(), [a, b]))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    for x, y in zip(*grads):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)
    assert grads[0][0].abs().sum() > 0 and grads[0][1].abs().sum() > 0


def test_textures_uv_extend_shares_the_map():
    g = torch.Generator().manual_seed(4)
    maps = torch.rand(2, 6, 5, 3, generator=g, dtype=D, requires_grad=True)
    faces_uvs = torch.tensor([[[0, 1, 2]], [[2, 1, 0]]])
    verts_uvs = torch.rand(2, 3, 2, generator=g, dtype=D)
    tex = TexturesUV(maps, faces_uvs, verts_uvs)
    ext = tex.extend(3)
    assert len(ext) == 6
    items = ext.maps_list()
    assert items[0] is items[1] is items[2] and items[3] is items[4] and items[0] is not items[3]
    assert torch.equal(ext.maps_padded(), maps.repeat_interleave(3, dim=0))
    assert torch.equal(ext.faces_uvs_padded(), faces_uvs.repeat_interleave(3, dim=0))
    table = ext._texel_table(True)
    assert table.texels.shape[0] == texel_table(tex.maps_list(), True).texels.shape[0]
    # Gradients reach the user's padded maps through the shared views.
    table.texels.sum().backward()
    assert maps.grad is not None and maps.grad.abs().sum() > 0
    # Meshes.extend goes through it.
    verts = torch.rand(3, 3, dtype=D)
    mesh = Meshes([verts, verts], [torch.tensor([[0, 1, 2]])] * 2, textures=tex).extend(2)
    assert mesh.textures.maps_list()[0] is mesh.textures.maps_list()[1]
    assert len(tex[[]].extend(2)) == 0
