"""Texture classes: construction, validation (one test per rule) and batch operations against Meshes."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from diffras.raster import Fragments
from diffras.textures import TexturesAtlas, TexturesUV, TexturesVertex
from diffras.structures import Meshes, join_meshes_as_batch, join_meshes_as_scene


def mesh_pair(dtype=torch.float64):
    """Two meshes of different sizes: (5 verts, 3 faces) and (4 verts, 2 faces)."""
    g = torch.Generator().manual_seed(1)
    v0, v1 = torch.randn(5, 3, generator=g, dtype=dtype), torch.randn(4, 3, generator=g, dtype=dtype)
    f0 = torch.tensor([[0, 1, 2], [1, 3, 2], [2, 3, 4]])
    f1 = torch.tensor([[0, 1, 2], [0, 2, 3]])
    return [v0, v1], [f0, f1]


def uv_lists(dtype=torch.float64):
    g = torch.Generator().manual_seed(2)
    maps = [torch.rand(6, 8, 3, generator=g, dtype=dtype), torch.rand(4, 5, 3, generator=g, dtype=dtype)]
    faces_uvs = [torch.tensor([[0, 1, 2], [1, 3, 2], [2, 3, 5]]), torch.tensor([[0, 1, 2], [0, 2, 3]])]
    verts_uvs = [torch.rand(6, 2, generator=g, dtype=dtype), torch.rand(4, 2, generator=g, dtype=dtype)]
    return maps, faces_uvs, verts_uvs


def all_textures():
    verts, faces = mesh_pair()
    g = torch.Generator().manual_seed(3)
    tv = TexturesVertex([torch.rand(5, 4, generator=g, dtype=torch.float64),
                         torch.rand(4, 4, generator=g, dtype=torch.float64)])
    tu = TexturesUV(*uv_lists())
    ta = TexturesAtlas([torch.rand(3, 2, 2, 3, generator=g, dtype=torch.float64),
                        torch.rand(2, 2, 2, 3, generator=g, dtype=torch.float64)])
    return verts, faces, [tv, tu, ta]


def corner_values(tex, meshes):
    return tex.faces_verts_textures_packed(meshes)


# ------------------------------------------------------------------------------------------ construction
def test_vertex_list_and_padded_views():
    a, b = torch.rand(3, 2), torch.rand(5, 2)
    t = TexturesVertex([a, b])
    assert len(t) == 2 and t.num_channels == 2
    p = t.verts_features_padded()
    assert p.shape == (2, 5, 2)
    assert torch.equal(p[0, :3], a) and torch.equal(p[0, 3:], torch.zeros(2, 2)) and torch.equal(p[1], b)
    assert torch.equal(t.verts_features_packed(), torch.cat([a, b]))
    tp = TexturesVertex(p)
    assert [x.shape[0] for x in tp.verts_features_list()] == [5, 5]


def test_uv_views_keep_inputs_and_pad():
    maps, fu, vu = uv_lists()
    t = TexturesUV(maps, fu, vu)
    assert all(x is y for x, y in zip(t.maps_list(), maps))
    fp = t.faces_uvs_padded()
    assert fp.shape == (2, 3, 3) and fp.dtype == torch.int64 and torch.equal(fp[1, 2], torch.tensor([-1, -1, -1]))
    # Padded faces_uvs: trailing all -1 rows are dropped by the list view.
    t2 = TexturesUV(t.maps_padded(), fp, t.verts_uvs_padded())
    assert [f.shape[0] for f in t2.faces_uvs_list()] == [3, 2]
    # Different map sizes: maps_padded resizes to the largest (PyTorch3D); corners kept with align_corners.
    mp = t.maps_padded()
    assert mp.shape == (2, 6, 8, 3)
    assert torch.allclose(mp[1, 0, 0], maps[1][0, 0]) and torch.allclose(mp[1, -1, -1], maps[1][-1, -1])


def test_atlas_views():
    a = [torch.rand(3, 4, 4, 3), torch.rand(1, 4, 4, 3)]
    t = TexturesAtlas(a)
    assert t.resolution == 4 and t.num_channels == 3
    assert t.atlas_padded().shape == (2, 3, 4, 4, 3)
    assert torch.equal(t.atlas_packed(), torch.cat(a))


def test_int32_faces_uvs_become_int64():
    maps, fu, vu = uv_lists()
    t = TexturesUV(maps, [f.int() for f in fu], vu)
    assert all(f.dtype == torch.int64 for f in t.faces_uvs_list())


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("bad, exc, match", [
    (torch.rand(4, 3), ValueError, "verts_features"),  # 2-D padded
    ([torch.rand(4, 3), torch.rand(4, 2)], ValueError, r"verts_features\[1\]"),  # channel mismatch
    ([torch.rand(4, 3), torch.randint(0, 3, (4, 3))], TypeError, r"verts_features\[1\]"),  # int dtype
    ([torch.rand(4, 3), "x"], TypeError, r"verts_features\[1\]"),
    ([], ValueError, "verts_features"),
    ("features", TypeError, "verts_features"),
    (torch.full((1, 2, 3), float("nan")), ValueError, "finite"),
    (torch.full((1, 2, 3), float("inf")), ValueError, "finite"),
])
def test_vertex_bad_input(bad, exc, match):
    with pytest.raises(exc, match=match):
        TexturesVertex(bad)


def test_uv_bad_input():
    maps, fu, vu = uv_lists()
    with pytest.raises(ValueError, match="faces_uvs"):  # batch mismatch
        TexturesUV(maps, fu[:1], vu)
    with pytest.raises(ValueError, match="verts_uvs"):
        TexturesUV(maps, fu, vu[:1])
    with pytest.raises(ValueError, match=r"faces_uvs\[0\].*\[0, 6\)"):  # out of range
        TexturesUV(maps, [fu[0] + 4, fu[1]], vu)
    with pytest.raises(ValueError, match=r"faces_uvs\[1\]"):  # -1 not allowed in list input
        TexturesUV(maps, [fu[0], -torch.ones(1, 3, dtype=torch.int64)], vu)
    with pytest.raises(ValueError, match=r"faces_uvs\[0\]"):
        TexturesUV(maps, [fu[0][:, :2], fu[1]], vu)
    with pytest.raises(TypeError, match=r"faces_uvs\[0\]"):
        TexturesUV(maps, [fu[0].double(), fu[1]], vu)
    with pytest.raises(ValueError, match=r"verts_uvs\[0\]"):
        TexturesUV(maps, fu, [vu[0][:, :1], vu[1]])
    with pytest.raises(ValueError, match=r"verts_uvs\[1\].*finite"):
        TexturesUV(maps, fu, [vu[0], torch.full_like(vu[1], float("nan"))])
    with pytest.raises(ValueError, match=r"maps\[1\].*finite"):
        TexturesUV([maps[0], maps[1].clone().fill_(float("inf"))], fu, vu)
    with pytest.raises(ValueError, match=r"maps\[1\]"):  # channel mismatch
        TexturesUV([maps[0], maps[1][..., :2]], fu, vu)
    with pytest.raises(TypeError, match=r"maps\[0\]"):
        TexturesUV([(maps[0] * 255).long(), maps[1]], fu, vu)
    with pytest.raises(ValueError, match=r"maps\[0\].*non-empty"):
        TexturesUV([maps[0][:0], maps[1]], fu, vu)
    with pytest.raises(ValueError, match="padding_mode"):
        TexturesUV(maps, fu, vu, padding_mode="edge")
    with pytest.raises(ValueError, match="sampling_mode"):
        TexturesUV(maps, fu, vu, sampling_mode="bicubic")
    with pytest.raises(ValueError, match="mipmap"):
        TexturesUV(maps, fu, vu, mipmap="always")
    with pytest.raises(TypeError, match="align_corners"):
        TexturesUV(maps, fu, vu, align_corners=1)
    # Padded: -1 allowed (padding rows), out of range not.
    fp = torch.stack([fu[0], torch.cat([fu[1], -torch.ones(1, 3, dtype=torch.int64)])])
    vp = torch.stack([vu[0], torch.cat([vu[1], torch.zeros(2, 2, dtype=vu[1].dtype)])])
    TexturesUV(torch.rand(2, 4, 4, 3), fp, vp)
    with pytest.raises(ValueError, match="faces_uvs"):
        TexturesUV(torch.rand(2, 4, 4, 3), fp + 6, vp)


def test_atlas_bad_input():
    with pytest.raises(ValueError, match="atlas"):
        TexturesAtlas(torch.rand(2, 3, 4, 5, 3))  # not square
    with pytest.raises(ValueError, match="atlas"):
        TexturesAtlas(torch.rand(3, 4, 4, 3))  # 4-D padded
    with pytest.raises(ValueError, match=r"atlas\[1\]"):
        TexturesAtlas([torch.rand(3, 4, 4, 3), torch.rand(3, 2, 2, 3)])
    with pytest.raises(ValueError, match="finite"):
        TexturesAtlas(torch.full((1, 2, 2, 2, 3), float("nan")))


def test_device_mismatch_is_reported():
    maps, fu, vu = uv_lists()
    meta = [v.to("meta") for v in vu]
    with pytest.raises(ValueError, match="verts_uvs.*device"):
        TexturesUV(maps, fu, meta)


def test_mesh_batch_mismatch():
    verts, faces, texs = all_textures()
    one_mesh = Meshes(verts[:1], faces[:1])
    for t in texs:
        with pytest.raises(ValueError, match="meshes"):
            t.faces_verts_textures_packed(one_mesh)
        with pytest.raises(ValueError):
            Meshes(verts[:1], faces[:1], textures=t)


def test_texture_sizes_must_cover_mesh():
    verts, faces = mesh_pair()
    m = Meshes(verts, faces)
    with pytest.raises(ValueError, match="verts_features.*mesh 1"):
        TexturesVertex([torch.rand(5, 3), torch.rand(3, 3)]).faces_verts_textures_packed(m)
    with pytest.raises(ValueError, match="verts_features.*at least 5"):
        TexturesVertex(torch.rand(2, 4, 3)).faces_verts_textures_packed(m)
    maps, fu, vu = uv_lists()
    with pytest.raises(ValueError, match="faces_uvs.*mesh 0"):
        TexturesUV(maps, [fu[0][:2], fu[1]], vu).faces_verts_textures_packed(m)
    with pytest.raises(ValueError, match="atlas"):
        TexturesAtlas(torch.rand(2, 2, 2, 2, 3)).faces_verts_textures_packed(m)
    # A padded faces_uvs row of -1 used by a real face.
    fp = torch.full((2, 3, 3), -1, dtype=torch.int64)
    fp[0], fp[1, :1] = fu[0], fu[1][:1]
    with pytest.raises(ValueError, match="faces_uvs.*-1"):
        TexturesUV(torch.rand(2, 4, 4, 3), fp, torch.rand(2, 6, 2)).faces_verts_textures_packed(m)


# ------------------------------------------------------------------------------------------ batching
@pytest.mark.parametrize("kind", [0, 1, 2])
def test_getitem_matches_meshes_getitem(kind):
    verts, faces, texs = all_textures()
    t = texs[kind]
    m = Meshes(verts, faces, textures=t)
    full = corner_values(t, m)
    nf = [f.shape[0] for f in faces]
    parts = list(full.split(nf))
    for index, want in [(1, [1]), (-2, [0]), (slice(None, None, -1), [1, 0]), ([1, 0, 1], [1, 0, 1]),
                        (torch.tensor([1]), [1]), (torch.tensor([True, False]), [0])]:
        sub = m[index]
        assert len(sub.textures) == len(want)
        got = corner_values(sub.textures, sub)
        assert torch.equal(got, torch.cat([parts[i] for i in want]))


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_extend_join_batch_join_scene(kind):
    verts, faces, texs = all_textures()
    t = texs[kind]
    m = Meshes(verts, faces, textures=t)
    parts = list(corner_values(t, m).split([f.shape[0] for f in faces]))
    ext = m.extend(2)
    assert len(ext.textures) == 4
    assert torch.equal(corner_values(ext.textures, ext), torch.cat([parts[0], parts[0], parts[1], parts[1]]))
    jb = join_meshes_as_batch([m, m[1]])
    assert torch.equal(corner_values(jb.textures, jb), torch.cat(parts + [parts[1]]))
    sc = join_meshes_as_scene(m)
    assert len(sc.textures) == 1
    got = corner_values(sc.textures, sc)
    # join_scene of a UV texture packs the maps into one atlas: corner samples agree up to rounding.
    assert torch.allclose(got, torch.cat(parts), atol=1e-12)


def test_join_batch_checks_type_settings_and_channels():
    verts, faces, (tv, tu, ta) = all_textures()
    with pytest.raises(TypeError, match=r"textures\[0\]"):
        tv.join_batch([tu])
    with pytest.raises(ValueError, match=r"textures\[0\].*channels"):
        tv.join_batch([TexturesVertex(torch.rand(1, 5, 3, dtype=torch.float64))])
    maps, fu, vu = uv_lists()
    with pytest.raises(ValueError, match="settings"):
        tu.join_batch([TexturesUV(maps, fu, vu, padding_mode="wrap")])
    with pytest.raises(ValueError, match=r"R=2"):
        ta.join_batch([TexturesAtlas(torch.rand(1, 3, 3, 3, 3, dtype=torch.float64))])
    # Padded inputs of equal shapes stay padded; otherwise lists.
    a, b = TexturesVertex(torch.rand(2, 3, 2)), TexturesVertex(torch.rand(1, 3, 2))
    assert a.join_batch([b]).verts_features_padded().shape == (3, 3, 2)
    assert len(a.join_batch(b)) == 3


def test_getitem_bad_index():
    _, _, texs = all_textures()
    for t in texs:
        with pytest.raises(IndexError):
            t[2]
        with pytest.raises(IndexError):
            t[torch.tensor([0, 5])]
        with pytest.raises(IndexError):
            t[torch.tensor([True])]
        with pytest.raises(TypeError):
            t[0.5]
        with pytest.raises(TypeError):
            t[True]
        empty = t[torch.tensor([False, False])]
        assert len(empty) == 0 and empty.device == t.device


def test_extend_bad_n():
    t = TexturesVertex(torch.rand(1, 3, 3))
    with pytest.raises(ValueError, match="n"):
        t.extend(0)
    with pytest.raises(TypeError, match="n"):
        t.extend(1.5)


def test_clone_detach_to_keep_or_cut_gradients():
    feats = torch.rand(2, 4, 3, requires_grad=True)
    t = TexturesVertex(feats)
    c = t.clone()
    assert c.verts_features_padded() is not feats
    c.verts_features_padded().sum().backward()
    assert torch.equal(feats.grad, torch.ones_like(feats))
    d = t.detach()
    assert not d.verts_features_padded().requires_grad
    assert d.verts_features_padded().data_ptr() == feats.data_ptr()
    assert t.to("cpu") is t and t.cpu() is t
    m = t.to("meta")
    assert m.device.type == "meta" and t.device.type == "cpu"


def test_uv_join_scene_single_mesh_is_identity():
    maps, fu, vu = uv_lists()
    t = TexturesUV(maps[:1], fu[:1], vu[:1])
    s = t.join_scene()
    assert s.maps_list()[0] is maps[0] and s.verts_uvs_list()[0] is vu[0]


def test_empty_batch_samples_to_empty_and_joins():
    verts, faces, texs = all_textures()
    m = Meshes(verts, faces)
    mask = torch.tensor([False, False])
    empty_mesh = m[mask]
    b = torch.zeros(0, 3, 3, 1, 3, dtype=torch.float64)
    frags = Fragments(torch.full((0, 3, 3, 1), -1), b[..., 0], b, b[..., 0])
    for t in texs:
        e = t[mask]
        assert len(e) == 0 and e.num_channels == t.num_channels
        assert e.sample_textures(frags, empty_mesh).shape == (0, 3, 3, 1, t.num_channels)
        joined = e.join_batch([t])
        assert len(joined) == 2
        assert torch.equal(joined.faces_verts_textures_packed(m), t.faces_verts_textures_packed(m))


def test_list_entries_must_share_dtype():
    with pytest.raises(TypeError, match=r"verts_features\[1\].*dtype"):
        TexturesVertex([torch.rand(3, 3), torch.rand(3, 3, dtype=torch.float64)])


# ------------------------------------------------------------------------------------------ property


@settings(max_examples=20, deadline=None)
@given(counts=st.lists(st.tuples(st.integers(3, 7), st.integers(1, 6)), min_size=1, max_size=4),
       seed=st.integers(0, 2**31 - 1), data=st.data())
def test_list_and_padded_inputs_agree_under_indexing(counts, seed, data):
    g = torch.Generator().manual_seed(seed)
    verts = [torch.randn(v, 3, generator=g, dtype=torch.float64) for v, _ in counts]
    faces = [torch.randint(0, v, (f, 3), generator=g) for v, f in counts]
    m = Meshes(verts, faces)
    N, Vmax, Fmax = len(counts), max(v for v, _ in counts), max(f for _, f in counts)
    feats = [torch.rand(v, 2, generator=g, dtype=torch.float64) for v, _ in counts]
    atlas = [torch.rand(f, 2, 2, 2, generator=g, dtype=torch.float64) for _, f in counts]
    vuv = [torch.rand(v, 2, generator=g, dtype=torch.float64) for v, _ in counts]
    maps = torch.rand(N, 3, 4, 2, generator=g, dtype=torch.float64)

    def pad(xs, n, value=0):
        out = xs[0].new_full((len(xs), n) + tuple(xs[0].shape[1:]), value)
        for i, x in enumerate(xs):
            out[i, : x.shape[0]] = x
        return out

    pairs = [
        (TexturesVertex(feats), TexturesVertex(pad(feats, Vmax))),
        (TexturesAtlas(atlas), TexturesAtlas(pad(atlas, Fmax))),
        (TexturesUV(list(maps), faces, vuv), TexturesUV(maps, pad(faces, Fmax, -1), pad(vuv, Vmax))),
    ]
    index = data.draw(st.lists(st.integers(0, N - 1), min_size=1, max_size=5))
    sub = m[index]
    for as_list, as_padded in pairs:
        want = as_list.faces_verts_textures_packed(m)
        assert torch.allclose(as_padded.faces_verts_textures_packed(m), want)
        got = as_padded[index].faces_verts_textures_packed(sub)
        assert torch.allclose(got, as_list[index].faces_verts_textures_packed(sub))
        nf = m.num_faces_per_mesh().tolist()
        parts = list(want.split(nf))
        assert torch.allclose(as_list[index].faces_verts_textures_packed(sub), torch.cat([parts[i] for i in index]))
