"""Mipmapping: pyramid construction, level of detail from the screen-space UV footprint (closed forms,
sub-pixel faces, UV seams), trilinear blending against an independent reference, and the grazing
checkerboard that must average to grey instead of aliasing."""
import math

import pytest
import torch
import torch.nn.functional as F

from diffras.raster import rasterize
from diffras.textures.interpolate import interpolate_face_attributes
from diffras.textures.mipmap import build_pyramid, footprint_lod
from diffras.textures import TexturesUV
from diffras.structures import Meshes


def screen_grid(image_size, n=1, uv_scale=(1.0, 1.0)):
    """An n x n grid of quads (2 n^2 triangles) exactly covering an H x W image at z = 1; UV (0, 0) at the
    screen's bottom-left, (uv_scale) at its top-right, affine in screen space."""
    H, W = image_size
    S = min(H, W)
    a = torch.linspace(0, 1, n + 1, dtype=torch.float64)
    s, t = torch.meshgrid(a, a, indexing="xy")  # s across (left to right), t up (bottom to top)
    s, t = s.flatten(), t.flatten()
    x = (1 - 2 * s) * (W / S)  # NDC +X points left: screen-left is +W/S
    y = (2 * t - 1) * (H / S)
    verts = torch.stack([x, y, torch.ones_like(x)], 1)
    uvs = torch.stack([s * uv_scale[0], t * uv_scale[1]], 1)
    idx = torch.arange((n + 1) ** 2).view(n + 1, n + 1)
    v00, v01, v10, v11 = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = torch.cat([torch.stack([v00, v01, v11], -1).view(-1, 3), torch.stack([v00, v11, v10], -1).view(-1, 3)])
    frags = rasterize(verts, faces, image_size)
    return frags, Meshes([verts], [faces]), faces, uvs


def lod_of(frags, faces, uvs, tex_hw):
    uv = interpolate_face_attributes(frags.pix_to_face, frags.bary_coords, uvs[faces])
    size = torch.tensor([[tex_hw[1], tex_hw[0]]], dtype=torch.float64)
    return footprint_lod(uv, frags.pix_to_face, size)[0, ..., 0]


def test_pyramid_levels():
    tex = torch.rand(6, 8, 2, dtype=torch.float64)
    levels = build_pyramid(tex)
    assert [tuple(lv.shape[:2]) for lv in levels] == [(6, 8), (3, 4), (1, 2), (1, 1)]
    assert torch.allclose(levels[1], tex.view(3, 2, 4, 2, 2).mean(dim=(1, 3)))
    assert torch.allclose(levels[-1][0, 0], tex.mean(dim=(0, 1)))
    assert [tuple(lv.shape[:2]) for lv in build_pyramid(torch.rand(1, 5, 1))] == [(1, 5), (1, 2), (1, 1)]
    assert len(build_pyramid(torch.rand(1, 1, 3))) == 1


@pytest.mark.parametrize("n", [1, 11])
def test_lod_closed_form_affine(n):
    # Texture 32 x 48 on an 8 x 6 image: 4 texels per pixel vertically, 8 horizontally -> lod 3.
    # n = 11: faces smaller than a pixel, the derivative comes from neighbouring faces (same answer).
    frags, _, faces, uvs = screen_grid((8, 6), n=n)
    lod = lod_of(frags, faces, uvs, (32, 48))
    cov = frags.pix_to_face[0, ..., 0] >= 0
    assert cov.float().mean() > 0.9
    assert torch.allclose(lod[cov], torch.full_like(lod[cov], 3.0), atol=1e-6)


def test_lod_ignores_a_uv_seam_on_one_side():
    # Two screen halves map to far-apart UV regions: the pixels next to the seam must still get the
    # interior footprint (from their other neighbour), not the jump across the seam.
    frags, _, faces, uvs = screen_grid((6, 9), n=3)
    shift = torch.tensor([5.0, 0.0], dtype=torch.float64)
    # The right third of the screen gets its own UV vertices, shifted far away: a seam at s = 2/3.
    on_seam = (uvs[:, 0] - 2 / 3).abs() < 1e-9
    remap = torch.arange(uvs.shape[0])
    remap[on_seam] = torch.arange(uvs.shape[0], uvs.shape[0] + int(on_seam.sum()))
    uvs_split = torch.cat([torch.where((uvs[:, :1] > 2 / 3 + 1e-9), uvs + shift, uvs), uvs[on_seam] + shift])
    face_right = (uvs[faces][..., 0] > 2 / 3 - 1e-9).all(1)
    faces_uv = torch.where(face_right[:, None], remap[faces], faces)
    assert face_right.any() and (~face_right).any()
    lod = lod_of(frags, faces_uv, uvs_split, (60, 90))
    cov = frags.pix_to_face[0, ..., 0] >= 0
    assert torch.allclose(lod[cov], torch.full_like(lod[cov], math.log2(10)), atol=1e-6)


def test_magnified_texture_is_unchanged_by_mipmapping():
    frags, m, faces, uvs = screen_grid((9, 12), n=2)
    tex = torch.rand(4, 5, 3, dtype=torch.float64)
    a = TexturesUV([tex], [faces], [uvs]).sample_textures(frags, m)
    b = TexturesUV([tex], [faces], [uvs], mipmap=False).sample_textures(frags, m)
    assert torch.equal(a, b)


def test_trilinear_blend_matches_reference():
    # 24 x 24 map on an 8 x 8 image: 3 texels per pixel, lod = log2 3, between levels 1 and 2.
    frags, m, faces, uvs = screen_grid((8, 8), n=1)
    tex = torch.rand(24, 24, 3, dtype=torch.float64)
    got = TexturesUV([tex], [faces], [uvs], align_corners=False).sample_textures(frags, m)[0, :, :, 0]
    cov = frags.pix_to_face[0, ..., 0] >= 0
    uv = interpolate_face_attributes(frags.pix_to_face, frags.bary_coords, uvs[faces])[0, :, :, 0]
    grid = (uv * 2 - 1).view(1, 8, 8, 2)

    def gs(level):
        img = level.flip(0).permute(2, 0, 1)[None]
        return F.grid_sample(img, grid, padding_mode="border", align_corners=False)[0].permute(1, 2, 0)

    img = tex.permute(2, 0, 1)[None]
    l1 = F.avg_pool2d(img, 2)[0].permute(1, 2, 0)
    l2 = F.avg_pool2d(img, 4)[0].permute(1, 2, 0)
    t = math.log2(3) - 1
    want = (1 - t) * gs(l1) + t * gs(l2)
    assert torch.allclose(got[cov], want[cov], atol=1e-6)


def floor_plane(image=64, z_far=21.0, half_width=4.0, uv_scale=1.0):
    """A floor (y = -1) seen at a grazing angle through a pinhole of focal length 1 (NDC = view / depth)."""
    X = torch.tensor([-half_width, half_width, half_width, -half_width], dtype=torch.float64)
    Z = torch.tensor([1.0, 1.0, z_far, z_far], dtype=torch.float64)
    verts = torch.stack([X / Z, -1.0 / Z, Z], 1)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uvs = torch.stack([(X + half_width) / (2 * half_width), (Z - 1) / (z_far - 1)], 1) * uv_scale
    frags = rasterize(verts, faces, image, perspective_correct=True)
    return frags, Meshes([verts], [faces]), faces, uvs


def checker(n, cell):
    i = torch.arange(n)
    return (((i[:, None] // cell) + (i[None, :] // cell)) % 2).double()[..., None]


@pytest.mark.parametrize("case", ["big_map", "tiled_wrap"])
def test_grazing_checkerboard_averages_to_grey(case):
    if case == "big_map":  # a 1024^2 map of 4-texel cells stretched over the floor
        frags, m, faces, uvs = floor_plane()
        tex, kw = checker(1024, 4), {}
    else:  # a 16 x 16 map of 4-texel cells tiled 64 times with wrap addressing
        frags, m, faces, uvs = floor_plane(uv_scale=64.0)
        tex, kw = checker(16, 4), {"padding_mode": "wrap", "align_corners": False}
    cov = frags.pix_to_face[0, ..., 0] >= 0
    assert cov.sum() > 1000
    filtered = TexturesUV([tex], [faces], [uvs], **kw).sample_textures(frags, m)[0, ..., 0, 0][cov]
    aliased = TexturesUV([tex], [faces], [uvs], mipmap=False, **kw).sample_textures(frags, m)[0, ..., 0, 0][cov]
    assert abs(float(filtered.mean()) - 0.5) < 0.01
    assert float(filtered.var()) < 0.01  # measured 0.006 (big_map), far below:
    assert float(aliased.var()) > 0.15  # measured 0.19: the unfiltered samples are almost black or white


def test_nearest_lookups_are_not_filtered_unless_asked():
    tex = torch.rand(32, 24, 1, dtype=torch.float64)
    frags, m, faces, uvs = screen_grid((8, 6), n=1)

    def sample(**kw):
        return TexturesUV([tex], [faces], [uvs], sampling_mode="nearest", **kw).sample_textures(frags, m)

    auto, off, on = sample(), sample(mipmap=False), sample(mipmap=True)
    assert torch.equal(auto, off)
    cov = frags.pix_to_face >= 0
    texels = set(tex.flatten().tolist())
    assert all(v in texels for v in auto[cov].flatten().tolist())  # label-safe: only real texel values
    assert not torch.equal(on, off)
