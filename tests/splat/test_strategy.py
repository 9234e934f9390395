"""DefaultStrategy: duplicate, split, prune and reset as gsplat's rules say, optimizer state kept aligned."""
import torch

from diffras.splat import DefaultStrategy


def _setup(n=6):
    params = {"means": torch.zeros(n, 3), "scales": torch.log(torch.tensor([0.001, 0.001, 0.5, 0.5, 0.001, 0.001]))[:, None].repeat(1, 3),
              "quats": torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
              "opacities": torch.logit(torch.tensor([0.5, 0.5, 0.5, 0.5, 0.001, 0.5])), "sh0": torch.rand(n, 1, 3)}
    params = {k: torch.nn.Parameter(v) for k, v in params.items()}
    opts = {k: torch.optim.Adam([p], lr=1e-3) for k, p in params.items()}
    for p in params.values():  # one step so that Adam has state to carry over
        p.grad = torch.ones_like(p)
    for o in opts.values():
        o.step()
    return params, opts


def test_grow_prune_reset():
    params, opts = _setup()
    s = DefaultStrategy(refine_start_iter=0, refine_every=1, reset_every=1000)
    s.check_sanity(params, opts)
    state = s.initialize_state(scene_scale=1.0)
    # Screen-space gradients: Gaussians 0 (small) and 2 (large) above the threshold, the others below.
    means2d = torch.zeros(1, 6, 2, requires_grad=True)
    info = {"means2d": means2d, "width": 100, "height": 100, "n_cameras": 1, "radii": torch.ones(1, 6, 2, dtype=torch.int32),
            "gaussian_ids": None}
    s.step_pre_backward(params, opts, state, 1, info)
    (means2d * torch.tensor([[[1e-3, 0], [1e-7, 0], [1e-3, 0], [1e-7, 0], [1e-7, 0], [1e-7, 0]]])).sum().backward()
    done = s.step_post_backward(params, opts, state, 1, info)
    assert done == {"duplicated": 1, "split": 1, "pruned": 1}
    # 6 + 1 duplicate + 2 split halves - 1 split parent - 1 pruned (opacity 0.001 < 0.005) = 7
    assert len(params["means"]) == 7
    for k, p in params.items():
        st = opts[k].state[p]
        assert st["exp_avg"].shape == p.shape and opts[k].param_groups[0]["params"][0] is p
    # The split halves (last) have 1 / 1.6 the scale of their parent, equal to its untouched twin (row 2).
    sc = torch.exp(params["scales"].detach())
    torch.testing.assert_close(sc[-2:], (sc[2] / 1.6).expand(2, 3))
    s.step_post_backward(params, opts, state, 1000, dict(info, means2d=torch.zeros(1, 7, 2, requires_grad=True),
                                                          radii=torch.zeros(1, 7, 2, dtype=torch.int32)))
    assert torch.sigmoid(params["opacities"]).max() <= 0.01 + 1e-6  # reset to 2 * prune_opa
