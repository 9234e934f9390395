"""Random and adversarial scenes: every backend path gives the same Fragments; outputs stay finite."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffras.raster import rasterize

D = torch.float64


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_faces=st.integers(1, 12),
    size=st.tuples(st.integers(3, 11), st.integers(3, 11)),
    k=st.integers(1, 4),
    blur=st.sampled_from([0.0, 1e-3, 0.02]),
    perspective=st.booleans(),
    z_clip=st.sampled_from([None, 0.3]),
    cull_backfaces=st.booleans(),
)
def test_backends_agree_on_random_scenes(seed, n_faces, size, k, blur, perspective, z_clip, cull_backfaces):
    g = torch.Generator().manual_seed(seed)
    view = torch.cat([torch.rand(n_faces * 3, 2, generator=g, dtype=D) * 2 - 1,
                      torch.rand(n_faces * 3, 1, generator=g, dtype=D) * 2.5 - 0.5], -1)
    if perspective:
        # Project like a pinhole camera (x_ndc * z is linear in view space), clamping the divisor.
        z = view[:, 2:3]
        zs = torch.where(z.abs() < 1e-3, torch.full_like(z, 1e-3), z)
        verts = torch.cat([view[:, :2] / zs, z], -1)
    else:
        verts = view
    faces = torch.arange(n_faces * 3).view(n_faces, 3)
    kw = dict(faces_per_pixel=k, blur_radius=blur, perspective_correct=perspective, z_clip_value=z_clip,
              cull_backfaces=cull_backfaces)
    # Both fragment paths against each other as well: the reference visibility with torch fragments,
    # numba with the fused kernel, torch with torch fragments.
    ref = rasterize(verts, faces, size, backend="reference", fragments="torch", **kw)
    for backend, fragments in (("numba", "fused"), ("torch", "torch")):
        other = rasterize(verts, faces, size, backend=backend, fragments=fragments, **kw)
        for a, b in zip(ref, other):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    for t in list(ref)[1:]:
        assert torch.isfinite(t).all()
    hit = ref.pix_to_face >= 0
    if z_clip is not None:
        assert (ref.zbuf[hit] >= z_clip - 1e-9).all()


def test_one_face_covering_the_whole_screen():
    verts = torch.tensor([[-50.0, -50.0, 2.0], [50.0, -50.0, 2.0], [0.0, 80.0, 2.0]], dtype=D)
    area = (verts[0, 0] - verts[1, 0]) * (verts[2, 1] - verts[1, 1]) - (verts[0, 1] - verts[1, 1]) * (verts[2, 0] - verts[1, 0])
    faces = torch.tensor([[0, 1, 2]]) if area > 0 else torch.tensor([[0, 2, 1]])
    frags = rasterize(verts, faces, (6, 9), faces_per_pixel=2, cull_backfaces=True)
    assert (frags.pix_to_face[..., 0] == 0).all() and (frags.pix_to_face[..., 1] == -1).all()
    assert torch.allclose(frags.zbuf[..., 0], torch.full((1, 6, 9), 2.0, dtype=D))
    torch.testing.assert_close(frags.bary_coords[..., 0, :].sum(-1), torch.ones(1, 6, 9, dtype=D))
    assert (frags.dists[..., 0] < 0).all()


def test_many_subpixel_faces_in_one_pixel_keep_the_k_nearest():
    g = torch.Generator().manual_seed(9)
    F = 2000
    # Tiny faces all covering the centre pixel of a 4x4 image (centres at +-0.25, +-0.75).
    base = torch.tensor([[0.26, 0.26], [-0.01, 0.26], [0.26, -0.01]], dtype=D)
    depth = torch.rand(F, generator=g, dtype=D) + 1
    fv = torch.cat([base.expand(F, 3, 2), depth[:, None, None].expand(F, 3, 1)], -1)
    frags = rasterize(fv.reshape(-1, 3), torch.arange(3 * F).view(F, 3), 4, faces_per_pixel=5)
    nearest = torch.argsort(depth)[:5]
    assert frags.pix_to_face[0, 1, 1].tolist() == nearest.tolist()
    torch.testing.assert_close(frags.zbuf[0, 1, 1], depth[nearest])
