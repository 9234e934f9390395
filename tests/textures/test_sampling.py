"""Texture sampling: UV addressing/align_corners against grid_sample and closed forms, vertex and atlas
sampling against per-fragment loops, a rasterized UV quad, join_scene, gradients."""
import pytest
import torch
import torch.nn.functional as F

from diffras.raster import Fragments, rasterize
from diffras.textures import TexturesAtlas, TexturesUV, TexturesVertex
from diffras.structures import Meshes, join_meshes_as_scene


def point_fragments(P, dtype=torch.float64):
    """Fragments of one image 1 x P with one fragment per pixel: pixel p shows face p at its corner 0."""
    p2f = torch.arange(P).view(1, 1, P, 1)
    bary = torch.zeros(1, 1, P, 1, 3, dtype=dtype)
    bary[..., 0] = 1
    z = torch.ones(1, 1, P, 1, dtype=dtype)
    return Fragments(p2f, z, bary, -z)


def sample_uv(tex_map, uv, **kw):
    """Sample one (Ht, Wt, C) map at the (P, 2) points ``uv`` through the public TexturesUV API."""
    P = uv.shape[0]
    faces_uvs = torch.arange(P)[:, None].repeat(1, 3)
    tex = TexturesUV([tex_map], [faces_uvs], [uv], mipmap=kw.pop("mipmap", False), **kw)
    return tex.sample_textures(point_fragments(P, uv.dtype)).view(P, -1)


def grid_sample_reference(tex_map, uv, padding_mode, align_corners, mode="bilinear"):
    # PyTorch3D's formulation: grid_sample on the vertically flipped map at grid = 2 uv - 1.
    img = tex_map.flip(0).permute(2, 0, 1)[None]
    grid = (uv * 2 - 1).view(1, 1, -1, 2)
    out = F.grid_sample(img, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    return out[0, :, 0].T


@pytest.mark.parametrize("padding_mode", ["border", "zeros", "reflection"])
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_uv_sampling_matches_grid_sample(padding_mode, align_corners, mode):
    g = torch.Generator().manual_seed(0)
    tex_map = torch.rand(5, 7, 3, generator=g, dtype=torch.float64)
    uv = torch.rand(300, 2, generator=g, dtype=torch.float64) * 4 - 1.5
    got = sample_uv(tex_map, uv, padding_mode=padding_mode, align_corners=align_corners, sampling_mode=mode)
    want = grid_sample_reference(tex_map, uv, padding_mode, align_corners, mode)
    assert torch.allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("align_corners", [True, False])
def test_texel_centres_return_texels(align_corners):
    H, W = 4, 6
    tex_map = torch.rand(H, W, 2, dtype=torch.float64)
    i, j = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    i, j = i.flatten().double(), j.flatten().double()
    if align_corners:  # u = 0 / 1 are the centres of the first / last column; v = 0 the bottom row
        uv = torch.stack([j / (W - 1), 1 - i / (H - 1)], 1)
    else:  # u = 0 / 1 are the outer edges
        uv = torch.stack([(j + 0.5) / W, 1 - (i + 0.5) / H], 1)
    got = sample_uv(tex_map, uv, align_corners=align_corners)
    assert torch.allclose(got, tex_map.reshape(-1, 2), atol=1e-12)
    got = sample_uv(tex_map, uv, align_corners=align_corners, sampling_mode="nearest")
    assert torch.equal(got, tex_map.reshape(-1, 2))


def test_pytorch3d_docstring_example():
    # PyTorch3D: align_corners=True, a (1001, 101) map and uv = (0.4, 0.3) reads map[700, 40].
    tex_map = torch.zeros(1001, 101, 1, dtype=torch.float64)
    tex_map[700, 40] = 1
    assert float(sample_uv(tex_map, torch.tensor([[0.4, 0.3]], dtype=torch.float64))) == pytest.approx(1.0)
    # align_corners=False: a (1000, 100) map and uv = (0.405, 0.2995) reads map[700, 40].
    tex_map = torch.zeros(1000, 100, 1, dtype=torch.float64)
    tex_map[700, 40] = 1
    got = sample_uv(tex_map, torch.tensor([[0.405, 0.2995]], dtype=torch.float64), align_corners=False)
    assert float(got) == pytest.approx(1.0)


def test_wrap_tiles_the_map():
    g = torch.Generator().manual_seed(1)
    tex_map = torch.rand(4, 5, 3, generator=g, dtype=torch.float64)
    uv = torch.rand(200, 2, generator=g, dtype=torch.float64) * 2.6 - 0.8  # in [-0.8, 1.8)
    # align_corners=False: identical to sampling a 3 x 3 tiling of the map (away from the tiling's edges).
    tiled = tex_map.repeat(3, 3, 1)
    got = sample_uv(tex_map, uv, padding_mode="wrap", align_corners=False)
    want = grid_sample_reference(tiled, (uv + 1) / 3, "border", False)
    assert torch.allclose(got, want, atol=1e-12)
    # Period 1 in UV, for both conventions; aliases give the same result.
    for ac in (True, False):
        a = sample_uv(tex_map, uv, padding_mode="wrap", align_corners=ac)
        b = sample_uv(tex_map, uv + torch.tensor([2.0, -3.0], dtype=torch.float64), padding_mode="repeat",
                      align_corners=ac)
        assert torch.allclose(a, b, atol=1e-9)
    # At the edge u = 0 (align_corners=False) wrap blends the first and last columns half and half.
    edge = sample_uv(tex_map, torch.tensor([[0.0, 1 - 0.5 / 4]], dtype=torch.float64), padding_mode="wrap",
                     align_corners=False)
    assert torch.allclose(edge[0], 0.5 * (tex_map[0, 0] + tex_map[0, -1]))


def test_aliases():
    tex_map = torch.rand(4, 4, 3, dtype=torch.float64)
    uv = torch.rand(50, 2, dtype=torch.float64) * 3 - 1
    assert torch.equal(sample_uv(tex_map, uv, padding_mode="clamp"), sample_uv(tex_map, uv, padding_mode="border"))
    assert torch.equal(sample_uv(tex_map, uv, padding_mode="mirror"),
                       sample_uv(tex_map, uv, padding_mode="reflection"))
    assert TexturesUV([tex_map], [torch.zeros(1, 3, dtype=torch.long)], [uv], padding_mode="mirror").padding_mode \
        == "reflection"


# ------------------------------------------------------------------------------------------ with Meshes
def two_meshes(dtype=torch.float64):
    g = torch.Generator().manual_seed(4)
    verts = [torch.randn(5, 3, generator=g, dtype=dtype), torch.randn(4, 3, generator=g, dtype=dtype)]
    faces = [torch.tensor([[0, 1, 2], [1, 3, 2], [2, 3, 4]]), torch.tensor([[0, 1, 2], [0, 2, 3]])]
    return verts, faces


def mesh_fragments(meshes, H=4, W=5, K=2, dtype=torch.float64, seed=5):
    """Random fragments where image n only shows faces of mesh n (packed indices), some slots empty."""
    g = torch.Generator().manual_seed(seed)
    nf = meshes.num_faces_per_mesh()
    first = meshes.mesh_to_faces_packed_first_idx()
    N = len(meshes)
    local = (torch.rand(N, H, W, K, generator=g) * nf.view(N, 1, 1, 1)).long()
    p2f = local + first.view(N, 1, 1, 1)
    p2f[torch.rand(N, H, W, K, generator=g) < 0.3] = -1
    bary = torch.rand(N, H, W, K, 3, generator=g, dtype=dtype)
    bary = bary / bary.sum(-1, keepdim=True)
    bary = torch.where(p2f[..., None] >= 0, bary, torch.full_like(bary, -1))
    z = torch.where(p2f >= 0, torch.ones_like(bary[..., 0]), -torch.ones_like(bary[..., 0]))
    return Fragments(p2f, z, bary, z)


@pytest.mark.parametrize("padded", [False, True])
def test_vertex_sampling_matches_loop(padded):
    verts, faces = two_meshes()
    feats = [torch.rand(5, 4, dtype=torch.float64), torch.rand(4, 4, dtype=torch.float64)]
    tex = TexturesVertex(torch.stack([feats[0], torch.cat([feats[1], torch.rand(1, 4, dtype=torch.float64)])])
                         if padded else feats)
    m = Meshes(verts, faces, textures=tex)
    frags = mesh_fragments(m)
    out = tex.sample_textures(frags, m)
    fp, vfirst = m.faces_packed(), m.mesh_to_verts_packed_first_idx()
    N, H, W, K = frags.pix_to_face.shape
    for n in range(N):
        for y in range(H):
            for x in range(W):
                for k in range(K):
                    f = int(frags.pix_to_face[n, y, x, k])
                    want = torch.zeros(4, dtype=torch.float64)
                    if f >= 0:
                        for i in range(3):
                            want += frags.bary_coords[n, y, x, k, i] * feats[n][int(fp[f, i] - vfirst[n])]
                    assert torch.allclose(out[n, y, x, k], want, atol=1e-12)


def atlas_texel_reference(atlas_f, b0, b1):
    """PyTorch3D's atlas rule, one fragment at a time."""
    R = atlas_f.shape[0]
    i = min(max(int(b0 * R // 1), 0), R - 1)
    j = min(max(int(b1 * R // 1), 0), R - 1)
    if (b0 + b1) * R - (i + j) > 1:
        i, j = R - 1 - i, R - 1 - j
    return atlas_f[j, i]


def test_atlas_sampling_matches_rule_and_corners():
    verts, faces = two_meshes()
    atlas = [torch.rand(3, 4, 4, 3, dtype=torch.float64), torch.rand(2, 4, 4, 3, dtype=torch.float64)]
    tex = TexturesAtlas(atlas)
    m = Meshes(verts, faces, textures=tex)
    frags = mesh_fragments(m)
    out = tex.sample_textures(frags, m)
    assert torch.equal(out, tex.sample_textures(frags))  # list input: own packing is the same
    packed = torch.cat(atlas)
    p2f, bary = frags.pix_to_face, frags.bary_coords
    for idx in (p2f >= 0).nonzero().tolist():
        n, y, x, k = idx
        want = atlas_texel_reference(packed[p2f[n, y, x, k]], float(bary[n, y, x, k, 0]), float(bary[n, y, x, k, 1]))
        assert torch.equal(out[n, y, x, k], want)
    assert torch.equal(out[p2f < 0], torch.zeros_like(out[p2f < 0]))
    # Corners: bary one-hot at corner i reads faces_verts_textures_packed[:, i].
    corners = tex.faces_verts_textures_packed(m)
    P = packed.shape[0]
    for i in range(3):
        b = torch.zeros(1, 1, P, 1, 3, dtype=torch.float64)
        b[..., i] = 1
        fr = Fragments(torch.arange(P).view(1, 1, P, 1), b[..., 0], b, b[..., 0])
        got = TexturesAtlas([packed]).sample_textures(fr)
        assert torch.equal(got.view(P, 3), corners[:, i])


def test_uv_batch_of_different_map_sizes_samples_each_own_map():
    verts, faces = two_meshes()
    g = torch.Generator().manual_seed(6)
    maps = [torch.rand(6, 8, 3, generator=g, dtype=torch.float64),
            torch.rand(3, 5, 3, generator=g, dtype=torch.float64)]
    fu = [torch.tensor([[0, 1, 2], [1, 3, 2], [2, 3, 5]]), torch.tensor([[0, 1, 2], [0, 2, 3]])]
    vu = [torch.rand(6, 2, generator=g, dtype=torch.float64), torch.rand(4, 2, generator=g, dtype=torch.float64)]
    tex = TexturesUV(maps, fu, vu)
    m = Meshes(verts, faces, textures=tex)
    frags = mesh_fragments(m)
    out = tex.sample_textures(frags, m)
    first = m.mesh_to_faces_packed_first_idx()
    for n in range(2):
        p2f = frags.pix_to_face[n:n + 1]
        local = torch.where(p2f >= 0, p2f - first[n], p2f)
        fr = Fragments(local, frags.zbuf[n:n + 1], frags.bary_coords[n:n + 1], frags.dists[n:n + 1])
        single = TexturesUV([maps[n]], [fu[n]], [vu[n]])
        assert torch.allclose(out[n:n + 1], single.sample_textures(fr, Meshes(verts[n:n + 1], faces[n:n + 1])),
                              atol=1e-12)
        # Closed form for one fragment: the interpolated UV sampled by grid_sample.
        idx = (p2f[0] >= 0).nonzero()[0].tolist()
        y, x, k = idx
        f_local = int(local[0, y, x, k])
        uv = (frags.bary_coords[n, y, x, k][:, None] * vu[n][fu[n][f_local]]).sum(0, keepdim=True)
        assert torch.allclose(out[n, y, x, k], grid_sample_reference(maps[n], uv, "border", True)[0], atol=1e-12)


@pytest.mark.parametrize("padding_mode", ["border", "zeros", "reflection", "wrap"])
@pytest.mark.parametrize("align_corners", [True, False])
def test_join_scene_samples_like_the_separate_maps(padding_mode, align_corners):
    verts, faces = two_meshes()
    g = torch.Generator().manual_seed(7)
    maps = [torch.rand(6, 8, 3, generator=g, dtype=torch.float64),
            torch.rand(3, 5, 3, generator=g, dtype=torch.float64)]
    fu = [torch.tensor([[0, 1, 2], [1, 3, 2], [2, 3, 5]]), torch.tensor([[0, 1, 2], [0, 2, 3]])]
    vu = [torch.rand(6, 2, generator=g, dtype=torch.float64), torch.rand(4, 2, generator=g, dtype=torch.float64)]
    vu[0][0] = torch.tensor([0.0, 0.0], dtype=torch.float64)  # exact corners of the map
    vu[1][1] = torch.tensor([1.0, 1.0], dtype=torch.float64)
    tex = TexturesUV(maps, fu, vu, padding_mode=padding_mode, align_corners=align_corners, mipmap=False)
    m = Meshes(verts, faces, textures=tex)
    frags = mesh_fragments(m)
    batch = tex.sample_textures(frags, m)
    scene = join_meshes_as_scene(m)
    cat = lambda t: torch.cat([t[0:1], t[1:2]], dim=2)  # noqa: E731  images side by side
    scene_frags = Fragments(cat(frags.pix_to_face), cat(frags.zbuf), cat(frags.bary_coords), cat(frags.dists))
    got = scene.textures.sample_textures(scene_frags, scene)
    assert torch.allclose(got, cat(batch), atol=1e-9)


def test_faces_verts_textures_packed_uv_samples_corner_uvs():
    verts, faces = two_meshes()
    maps = [torch.rand(6, 8, 3, dtype=torch.float64), torch.rand(6, 8, 3, dtype=torch.float64)]
    fu = [torch.tensor([[0, 1, 2], [1, 3, 2], [2, 3, 5]]), torch.tensor([[0, 1, 2], [0, 2, 3]])]
    vu = [torch.rand(6, 2, dtype=torch.float64), torch.rand(4, 2, dtype=torch.float64)]
    tex = TexturesUV(maps, fu, vu)
    got = tex.faces_verts_textures_packed(Meshes(verts, faces))
    want = torch.cat([grid_sample_reference(maps[n], vu[n][fu[n]].reshape(-1, 2), "border", True).view(-1, 3, 3)
                      for n in range(2)])
    assert torch.allclose(got, want, atol=1e-12)


def test_sample_textures_bad_fragments():
    verts, faces = two_meshes()
    tex = TexturesVertex([torch.rand(5, 3), torch.rand(4, 3)])
    m = Meshes(verts, faces)
    frags = mesh_fragments(m)
    one = Fragments(frags.pix_to_face[:1], frags.zbuf[:1], frags.bary_coords[:1], frags.dists[:1])
    with pytest.raises(ValueError, match="fragments"):
        tex.sample_textures(one, m)
    with pytest.raises(TypeError, match="fragments"):
        tex.sample_textures(frags.pix_to_face, m)
    with pytest.raises(ValueError, match="meshes"):
        tex.sample_textures(frags, None)
    big = Fragments(frags.pix_to_face + 100, frags.zbuf, frags.bary_coords, frags.dists)
    with pytest.raises(ValueError, match="pix_to_face"):
        tex.sample_textures(big, m)
    with pytest.raises(ValueError, match="pix_to_face"):
        TexturesAtlas(torch.rand(2, 3, 2, 2, 3)).sample_textures(big, m)


# ------------------------------------------------------------------------------------------ rasterized quad
_QUAD_CACHE = {}


def screen_quad(tex_map, image_size, **kw):
    """A quad exactly covering an H x W image (z = 1), UV (0, 0) at the bottom-left of the screen."""
    if image_size not in _QUAD_CACHE:
        H, W = image_size
        S = min(H, W)
        sx, sy = W / S, H / S
        # NDC: +X left, +Y up. Screen-left is x = +sx.
        verts = torch.tensor([[sx, -sy, 1.0], [-sx, -sy, 1.0], [-sx, sy, 1.0], [sx, sy, 1.0]], dtype=torch.float64)
        faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
        _QUAD_CACHE[image_size] = (rasterize(verts, faces, image_size), Meshes([verts], [faces]), faces)
    frags, mesh, faces = _QUAD_CACHE[image_size]
    uvs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    tex = TexturesUV([tex_map], [faces], [uvs], align_corners=False, **kw)
    return tex.sample_textures(frags, mesh)[0, :, :, 0]


def test_rasterized_quad_shows_its_texels():
    # 6 x 9: no pixel centre lies exactly on the quad's diagonal (such pixels are covered by neither
    # triangle under PyTorch3D's strict inside test). Barycentrics carry PyTorch3D's 1e-8 epsilon.
    tex_map = torch.rand(6, 9, 3, dtype=torch.float64)
    img = screen_quad(tex_map, (6, 9))
    assert torch.allclose(img, tex_map, atol=1e-6)


def test_rasterized_quad_minified_4x_averages_4x4_blocks():
    tex_map = torch.rand(32, 24, 1, dtype=torch.float64)
    img = screen_quad(tex_map, (8, 6))
    blocks = tex_map.view(8, 4, 6, 4, 1).mean(dim=(1, 3))
    assert torch.allclose(img, blocks, atol=1e-6)  # level 2 of the pyramid exactly (lod = log2 4 = 2)
    # Without mipmaps, bilinear at texel 4j + 1.5 only averages the two middle texels of each block.
    img = screen_quad(tex_map, (8, 6), mipmap=False)
    mid = tex_map.view(8, 4, 6, 4, 1)[:, 1:3, :, 1:3].mean(dim=(1, 3))
    assert torch.allclose(img, mid, atol=1e-6)


# ------------------------------------------------------------------------------------------ gradients
def test_gradcheck_uv_maps_uvs_and_bary():
    verts, faces = two_meshes()
    m = Meshes(verts, faces)
    frags = mesh_fragments(m, H=2, W=3, K=2)
    maps = torch.rand(2, 3, 4, 2, dtype=torch.float64, requires_grad=True)
    fu = torch.tensor([[[0, 1, 2], [1, 3, 2], [2, 3, 4]], [[0, 1, 2], [0, 2, 3], [-1, -1, -1]]])
    vu = (torch.rand(2, 5, 2, dtype=torch.float64) * 1.4 - 0.2).requires_grad_(True)
    bary = frags.bary_coords.clone().requires_grad_(True)
    for mode in ("border", "wrap"):  # the modes differ only in integer tap indices
        def fn(mp, uv, b):
            tex = TexturesUV(mp, fu, uv, padding_mode=mode, mipmap=False)
            return tex.sample_textures(Fragments(frags.pix_to_face, frags.zbuf, b, frags.dists), m)
        assert torch.autograd.gradcheck(fn, (maps, vu, bary))


def test_gradcheck_vertex_and_atlas():
    verts, faces = two_meshes()
    m = Meshes(verts, faces)
    frags = mesh_fragments(m, H=2, W=3, K=2)
    feats = torch.rand(2, 5, 2, dtype=torch.float64, requires_grad=True)
    bary = frags.bary_coords.clone().requires_grad_(True)

    def fv(f, b):
        return TexturesVertex(f).sample_textures(Fragments(frags.pix_to_face, frags.zbuf, b, frags.dists), m)

    assert torch.autograd.gradcheck(fv, (feats, bary))
    atlas = torch.rand(2, 3, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: TexturesAtlas(a).sample_textures(frags, m), (atlas,))


def test_gradcheck_maps_through_the_pyramid():
    # 4x minified (lod 2); (2, 3) so that no pixel centre falls on the quad's diagonal.
    tex_map = torch.rand(8, 12, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: screen_quad(t, (2, 3)), (tex_map,), fast_mode=True)
    tex_map = torch.rand(16, 12, 1, dtype=torch.float64, requires_grad=True)
    # Each output pixel is a 4 x 4 block mean (lod 2, see above): gradient 1/16 on its block.
    screen_quad(tex_map, (4, 3))[0, 0].sum().backward()
    assert torch.allclose(tex_map.grad[:4, :4], torch.full((4, 4, 1), 1 / 16, dtype=torch.float64))
    assert float(tex_map.grad.sum()) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ misc
def test_empty_fragments_give_zeros_for_every_class():
    verts, faces = two_meshes()
    m = Meshes(verts, faces)
    p2f = torch.full((2, 3, 4, 2), -1)
    bary = torch.full((2, 3, 4, 2, 3), -1.0, dtype=torch.float64)
    frags = Fragments(p2f, bary[..., 0], bary, bary[..., 0])
    texs = [TexturesVertex([torch.rand(5, 3), torch.rand(4, 3)]),
            TexturesUV([torch.rand(8, 8, 3), torch.rand(4, 4, 3)], [faces[0], faces[1]],
                       [torch.rand(5, 2), torch.rand(4, 2)]),
            TexturesAtlas([torch.rand(3, 2, 2, 3), torch.rand(2, 2, 2, 3)])]
    for t in texs:
        out = t.sample_textures(frags, m)
        assert out.shape == (2, 3, 4, 2, 3) and not out.any()


def test_float32_by_default_and_dtype_promotion():
    verts, faces = two_meshes(torch.float32)
    m = Meshes(verts, faces)
    frags = mesh_fragments(m, dtype=torch.float32)
    tex = TexturesUV([torch.rand(8, 8, 3), torch.rand(4, 4, 3)], faces, [torch.rand(5, 2), torch.rand(4, 2)])
    out32 = tex.sample_textures(frags, m)
    assert out32.dtype == torch.float32
    frags64 = Fragments(frags.pix_to_face, frags.zbuf.double(), frags.bary_coords.double(), frags.dists.double())
    out64 = tex.sample_textures(frags64, m)
    assert out64.dtype == torch.float64 and torch.allclose(out64.float(), out32, atol=1e-5)
    assert TexturesVertex([torch.rand(5, 3), torch.rand(4, 3)]).sample_textures(frags, m).dtype == torch.float32


def test_cached_pyramid_follows_in_place_edits():
    tex_map = torch.rand(32, 24, 1, dtype=torch.float64)
    first = screen_quad(tex_map, (8, 6))
    # Same TexturesUV object sampled twice, with an in-place edit of its map in between.
    frags, mesh, faces = _QUAD_CACHE[(8, 6)]
    uvs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    tex = TexturesUV([tex_map], [faces], [uvs], align_corners=False)
    assert torch.equal(tex.sample_textures(frags, mesh)[0, :, :, 0], first)
    tex_map.mul_(2)
    assert torch.allclose(tex.sample_textures(frags, mesh)[0, :, :, 0], 2 * first)
    # The pyramid table also serves plain lookups (no rebuild when shaders mix both).
    assert tex._texel_table(False) is tex._texel_table(True)
