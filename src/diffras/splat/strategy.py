"""Densification, pruning and opacity reset: gsplat's ``DefaultStrategy`` (the 3DGS recipe), same API.

Parameters are a dict (or ``ParameterDict``) of leaf tensors named as gsplat's: ``means (N, 3)``,
``scales (N, 3)`` (log), ``quats (N, 4)``, ``opacities (N,)`` (logit), ``sh0``, ``shN``; one optimizer per
parameter (Adam). Each step::

    colors, alphas, info = rasterization(...)
    strategy.step_pre_backward(params, optimizers, state, step, info)   # keeps info["means2d"].grad
    loss.backward()
    strategy.step_post_backward(params, optimizers, state, step, info)  # grows / prunes / resets

The screen-space gradient ``|d loss / d means2d|`` (scaled to NDC as gsplat does) is averaged per Gaussian
over the views that saw it; every ``refine_every`` steps Gaussians above ``grow_grad2d`` are duplicated
(small ones) or split in two (large ones, scales / 1.6, positions sampled from the Gaussian), those with
opacity below ``prune_opa`` (or, after the first reset, larger than ``prune_scale3d * scene_scale``) are
removed, and every ``reset_every`` steps opacities are clamped to ``2 * prune_opa``. Optimizer moments of new
Gaussians start at zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict

import torch

from .projection import quat_to_rotmat

__all__ = ["DefaultStrategy"]


def _edit(params, optimizers, fn: Callable[[str, torch.Tensor], torch.Tensor],
          state_fn: Callable[[str, torch.Tensor], torch.Tensor]) -> None:
    """Replace every parameter by ``fn(name, p)`` and each Adam moment by ``state_fn(name, moment)``."""
    for name in list(params.keys()):
        old = params[name]
        new = torch.nn.Parameter(fn(name, old.detach()), requires_grad=old.requires_grad)
        opt = optimizers.get(name)
        if opt is not None:
            st = opt.state.pop(old, None)
            if st is not None:
                for key, v in st.items():
                    if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape == old.shape:
                        st[key] = state_fn(name, v)
                opt.state[new] = st
            for group in opt.param_groups:
                group["params"] = [new if p is old else p for p in group["params"]]
        params[name] = new


@dataclass
class DefaultStrategy:
    """gsplat's ``DefaultStrategy`` options and defaults (``absgrad``, ``revised_opacity`` and the 2D-scale
    rules are not implemented)."""

    prune_opa: float = 0.005
    grow_grad2d: float = 0.0002
    grow_scale3d: float = 0.01
    prune_scale3d: float = 0.1
    refine_start_iter: int = 500
    refine_stop_iter: int = 15_000
    reset_every: int = 3000
    refine_every: int = 100
    pause_refine_after_reset: int = 0
    verbose: bool = False
    key_for_gradient: str = "means2d"

    #: Called on each step's statistics increments (grad2d, count) before they are added; the trainer sets it to
    #: an all-reduce under torchrun, so that every rank grows and prunes the same Gaussians.
    reduce = None

    def initialize_state(self, scene_scale: float = 1.0) -> Dict[str, Any]:
        return {"grad2d": None, "count": None, "scene_scale": scene_scale}

    def check_sanity(self, params, optimizers) -> None:
        for key in ("means", "scales", "quats", "opacities"):
            if key not in params:
                raise ValueError(f"params: expected a {key!r} entry, got keys {sorted(params.keys())}")
        if set(optimizers.keys()) != set(params.keys()):
            raise ValueError(f"optimizers: expected one per parameter {sorted(params.keys())}, got {sorted(optimizers.keys())}")

    def step_pre_backward(self, params, optimizers, state, step: int, info: Dict) -> None:
        info[self.key_for_gradient].retain_grad()

    def step_post_backward(self, params, optimizers, state, step: int, info: Dict, packed: bool = False) -> Dict[str, int]:
        """Accumulate statistics; grow, prune and reset on schedule. Returns the counts of what changed."""
        done = {"duplicated": 0, "split": 0, "pruned": 0}
        if step >= self.refine_stop_iter:
            return done
        self._update_state(params, state, info)
        if step > self.refine_start_iter and step % self.refine_every == 0 and step % self.reset_every >= self.pause_refine_after_reset:
            done["duplicated"], done["split"] = self._grow(params, optimizers, state)
            done["pruned"] = self._prune(params, optimizers, state, step)
            state["grad2d"].zero_()
            state["count"].zero_()
        if step % self.reset_every == 0 and step > 0:
            limit = torch.logit(torch.tensor(2 * self.prune_opa)).item()
            _edit(params, optimizers, lambda n, p: p.clamp(max=limit) if n == "opacities" else p,
                  lambda n, v: torch.zeros_like(v) if n == "opacities" else v)
        if self.verbose and any(done.values()):
            print(f"step {step}: {done}, now {len(params['means'])} Gaussians")
        return done

    def _update_state(self, params, state, info) -> None:
        n = len(params["means"])
        dev = params["means"].device
        if state["grad2d"] is None or state["grad2d"].shape[0] != n:
            state["grad2d"] = torch.zeros(n, device=dev)
            state["count"] = torch.zeros(n, device=dev)
        grad = info[self.key_for_gradient].grad
        if grad is None:
            if self.reduce is not None:  # still take part in the ranks' all-reduce (zero increments)
                inc = self.reduce(torch.zeros(2 * n, dtype=torch.float64, device=dev))
                state["grad2d"] += inc[:n].to(state["grad2d"].dtype)
                state["count"] += inc[n:].to(state["count"].dtype)
            return
        grads = grad.detach().clone()
        grads[..., 0] *= info["width"] / 2.0 * info["n_cameras"]
        grads[..., 1] *= info["height"] / 2.0 * info["n_cameras"]
        if info.get("gaussian_ids") is not None:  # packed
            ids = info["gaussian_ids"]
        else:
            sel = (info["radii"] > 0).all(dim=-1)  # (C, N)
            ids = torch.nonzero(sel, as_tuple=True)[1]
            grads = grads[sel]
        if self.reduce is None:
            state["grad2d"].index_add_(0, ids, grads.norm(dim=-1).to(state["grad2d"].dtype))
            state["count"].index_add_(0, ids, torch.ones_like(ids, dtype=state["count"].dtype))
            return
        inc = torch.zeros(2 * n, dtype=torch.float64, device=dev)
        inc.index_add_(0, ids, grads.norm(dim=-1).to(inc.dtype))
        inc.index_add_(0, ids + n, torch.ones_like(ids, dtype=inc.dtype))
        inc = self.reduce(inc)
        state["grad2d"] += inc[:n].to(state["grad2d"].dtype)
        state["count"] += inc[n:].to(state["count"].dtype)

    def _grow(self, params, optimizers, state):
        grads = state["grad2d"] / state["count"].clamp(min=1)
        high = grads > self.grow_grad2d
        small = torch.exp(params["scales"].detach()).max(dim=-1).values <= self.grow_scale3d * state["scene_scale"]
        dupli = high & small
        split = high & ~small
        n_dup, n_split = int(dupli.sum()), int(split.sum())
        if n_dup:
            _edit(params, optimizers, lambda n, p: torch.cat([p, p[dupli]]),
                  lambda n, v: torch.cat([v, torch.zeros_like(v[dupli])]))
            split = torch.cat([split, torch.zeros(n_dup, dtype=torch.bool, device=split.device)])
            for key in ("grad2d", "count"):
                state[key] = torch.cat([state[key], state[key][dupli]])
        if n_split:
            keep = ~split
            scales = torch.exp(params["scales"].detach()[split])
            R = quat_to_rotmat(params["quats"].detach()[split])
            offsets = torch.einsum("nij,bnj->bni", R, scales * torch.randn(2, n_split, 3, device=scales.device))
            new_means = (params["means"].detach()[split][None] + offsets).reshape(-1, 3)

            def fn(name, p):
                if name == "means":
                    new = new_means
                elif name == "scales":
                    new = torch.log(scales / 1.6).repeat(2, 1)
                else:
                    new = p[split].repeat((2,) + (1,) * (p.dim() - 1))
                return torch.cat([p[keep], new])

            _edit(params, optimizers, fn,
                  lambda n, v: torch.cat([v[keep], torch.zeros((2 * n_split,) + v.shape[1:], dtype=v.dtype, device=v.device)]))
            for key in ("grad2d", "count"):
                state[key] = torch.cat([state[key][keep], state[key].new_zeros(2 * n_split)])
        return n_dup, n_split

    def _prune(self, params, optimizers, state, step: int) -> int:
        prune = torch.sigmoid(params["opacities"].detach()) < self.prune_opa
        if step > self.reset_every:
            prune |= torch.exp(params["scales"].detach()).max(dim=-1).values > self.prune_scale3d * state["scene_scale"]
        n = int(prune.sum())
        if n:
            keep = ~prune
            _edit(params, optimizers, lambda name, p: p[keep], lambda name, v: v[keep])
            for key in ("grad2d", "count"):
                state[key] = state[key][keep]
        return n
