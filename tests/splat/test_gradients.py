"""Gradients of diffras.splat.rasterization: gradcheck (float64), backends against each other and against
autograd through the brute-force reference."""
import pytest
import torch

from diffras.splat import rasterization

from .reference import reference_rasterization
from .scenes import random_scene

pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")

PARAMS = ["means", "quats", "scales", "opacities", "colors", "viewmats"]


def _loss_fn(scene, names, weights, render, **kw):
    def f(*tensors):
        s = dict(scene, **dict(zip(names, tensors)))
        out, alpha = render(s, **kw)[:2]
        return (out * weights[0]).sum() + (alpha * weights[1]).sum()
    return f


def _ours(backend):
    return lambda s, **kw: rasterization(**s, backend=backend, **kw)


def _ref(s, **kw):
    return reference_rasterization(**s, **kw)


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("kw", [{}, {"rasterize_mode": "antialiased", "render_mode": "RGB+ED", "sh_degree": 2}])
def test_gradcheck(backend, kw):
    scene = random_scene(4, n_cameras=2, width=18, height=17, seed=5, sh_degree=kw.get("sh_degree"))
    if "sh_degree" in kw:
        scene["backgrounds"] = torch.rand(2, 3, dtype=torch.float64)
    D = 4 if "render_mode" in kw else 3
    weights = (torch.rand(2, 17, 18, D, dtype=torch.float64), torch.rand(2, 17, 18, 1, dtype=torch.float64))
    names = PARAMS + (["backgrounds"] if "backgrounds" in scene else [])
    inputs = [scene[n].clone().requires_grad_(True) for n in names]
    # Full Jacobian for the Numba kernels in the base case; gradcheck's fast mode (random projections of the
    # Jacobian) elsewhere, to keep the test budget.
    fast = backend == "torch" or bool(kw)
    torch.autograd.gradcheck(_loss_fn(scene, names, weights, _ours(backend), **kw), inputs, eps=1e-6, atol=1e-5,
                             rtol=1e-4, fast_mode=fast)


def test_gradients_match_the_reference():
    """The hand-written backward (Numba) gives the gradients autograd finds through the literal loop."""
    scene = random_scene(5, n_cameras=1, width=21, height=19, seed=6, sh_degree=3)
    weights = (torch.rand(1, 19, 21, 3, dtype=torch.float64), torch.rand(1, 19, 21, 1, dtype=torch.float64))
    grads = []
    for render in (_ours("numba"), _ref):
        inputs = [scene[n].clone().requires_grad_(True) for n in PARAMS]
        _loss_fn(scene, PARAMS, weights, render, sh_degree=3)(*inputs).backward()
        grads.append([t.grad for t in inputs])
    for name, a, b in zip(PARAMS, *grads):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-7, msg=name)
        assert a.abs().max() > 0, name


def test_backends_give_the_same_gradients_float32():
    scene = random_scene(120, n_cameras=2, width=40, height=32, dtype=torch.float32, seed=7, scale=(0.03, 0.2))
    grads = []
    for backend in ("numba", "torch"):
        inputs = {n: scene[n].clone().requires_grad_(True) for n in PARAMS}
        out, alpha, meta = rasterization(**dict(scene, **inputs), backend=backend, packed=False)
        meta["means2d"].retain_grad()
        (out.square().sum() + alpha.sum()).backward()
        grads.append([inputs[n].grad for n in PARAMS] + [meta["means2d"].grad])
    for name, a, b in zip(PARAMS + ["means2d"], *grads):
        torch.testing.assert_close(a, b, atol=1e-3 * float(b.abs().max()), rtol=1e-3, msg=name)


def test_means2d_gradient_is_retained_for_strategies():
    scene = random_scene(6, seed=8)
    means = scene["means"].clone().requires_grad_(True)
    out, _, meta = rasterization(**dict(scene, means=means))  # packed, gsplat's default
    meta["means2d"].retain_grad()
    out.sum().backward()
    g = meta["means2d"].grad
    assert g is not None and g.shape == meta["means2d"].shape == (meta["radii"].shape[0], 2)
    assert g.abs().sum() > 0 and means.grad.abs().sum() > 0


@pytest.mark.parametrize("aa", [False, True])
def test_numba_projection_matches_torch(aa):
    """The hand-written projection backward (Numba) against autograd through the torch projection, with
    Gaussians far off-axis (the Jacobian clamp) and behind the camera in the scene."""
    from diffras.splat.projection import project_gaussians

    s = random_scene(30, n_cameras=3, seed=3)
    s["means"][:3] = torch.tensor([[6.0, 0.2, 0.0], [0.1, -5.0, 0.3], [0.0, 0.0, -9.0]], dtype=torch.float64)
    res = []
    for backend in ("torch", "numba"):
        ins = {k: s[k].clone().requires_grad_(True) for k in ("means", "quats", "scales", "opacities", "viewmats")}
        out = project_gaussians(*ins.values(), s["Ks"], s["width"], s["height"], antialiased=aa, backend=backend)
        g = torch.Generator().manual_seed(1)
        sum((out[k] * torch.rand(out[k].shape, generator=g, dtype=torch.float64)).sum()
            for k in ("means2d", "conics", "depths", "opacities")).backward()
        res.append((out, {k: v.grad for k, v in ins.items()}))
    (o1, g1), (o2, g2) = res
    assert torch.equal(o1["radii"], o2["radii"]) and int((o1["radii"] > 0).all(-1).sum()) > 40
    for k in ("means2d", "conics", "depths", "opacities"):
        torch.testing.assert_close(o2[k], o1[k], atol=1e-12, rtol=1e-10, msg=k)
    for k in g1:
        torch.testing.assert_close(g2[k], g1[k], atol=1e-10, rtol=1e-9, msg=k)
