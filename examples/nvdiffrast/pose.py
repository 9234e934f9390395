"""nvdiffrast's samples/torch/pose.py on the CPU: recover a cube's orientation (a quaternion) from
an image, first by greedy random search, then by gradient descent with antialias's edge gradients.
Changes from the original: the import, the device, procedural data (util.cube_data('p')) and PNG
output instead of a live window / mp4.

    python examples/nvdiffrast/pose.py [--max-iter 1000] [--repeats 1] [--outdir out]

The log prints err (degrees between the current and the target pose) and err_best; in the gradient
phase (the second half) err drops to a fraction of a degree.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import util  # noqa: E402

import diffras.nv as dr  # was: import nvdiffrast.torch as dr

DEVICE = "cpu"  # was: 'cuda'


# ---- quaternions (w, x, y, z) -----------------------------------------------------------------------
def q_unit():
    return np.asarray([1, 0, 0, 0], np.float32)


def q_rnd(rng=np.random):
    """A uniformly random unit quaternion (Shoemake's method)."""
    u, v, w = rng.uniform(0.0, 1.0, size=3)
    v, w = v * 2 * np.pi, w * 2 * np.pi
    return np.asarray([(1 - u) ** 0.5 * np.sin(v), (1 - u) ** 0.5 * np.cos(v), u ** 0.5 * np.sin(w),
                       u ** 0.5 * np.cos(w)], np.float32)


def _q_s4():
    """The 24 rotations of the cube's symmetry group, as quaternions."""
    r = 0.5 ** 0.5
    qs = [np.eye(4)[i] for i in range(4)]
    qs += [0.5 * np.array([1.0, a, b, c]) for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)]
    for i in range(4):
        for j in range(i + 1, 4):
            for sg in (1, -1):
                q = np.zeros(4)
                q[i], q[j] = r, sg * r
                qs.append(q)
    uniq = []
    for q in qs:
        if not any(abs(abs(np.dot(q, u)) - 1) < 1e-6 for u in uniq):
            uniq.append(q)
    return np.array(uniq, np.float32)


Q_S4 = _q_s4()


def q_slerp(p, q, t):
    d = np.dot(p, q)
    if d < 0.0:
        q, d = -q, -d
    if d > 0.999:
        a = p + t * (q - p)
        return a / np.linalg.norm(a)
    t0 = np.arccos(d)
    s1 = np.sin(t0 * t) / np.sin(t0)
    return (np.cos(t0 * t) - d * s1) * p + s1 * q


def q_scale(q, scl):
    return q_slerp(q_unit(), q, scl)


def q_mul(p, q):
    s1, v1, s2, v2 = p[0], p[1:], q[0], q[1:]
    return np.concatenate([[s1 * s2 - np.dot(v1, v2)], s1 * v2 + s2 * v1 + np.cross(v1, v2)]).astype(np.float32)


def q_angle_deg(p, q):
    d = min(abs(float(torch.dot(p.detach().flatten(), q.detach().flatten()))), 1.0)
    return float(np.degrees(2.0 * np.arccos(d)))


def q_mul_torch(p, q):
    return torch.stack([p[0] * q[0] - p[1] * q[1] - p[2] * q[2] - p[3] * q[3],
                        p[0] * q[1] + p[1] * q[0] + p[2] * q[3] - p[3] * q[2],
                        p[0] * q[2] + p[2] * q[0] + p[3] * q[1] - p[1] * q[3],
                        p[0] * q[3] + p[3] * q[0] + p[1] * q[2] - p[2] * q[1]])


def q_to_mtx(q):
    w, x, y, z = q[0], q[1], q[2], q[3]
    r = torch.stack([torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)]),
                     torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)]),
                     torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)])])
    m = torch.eye(4, dtype=q.dtype, device=q.device)
    return torch.cat([torch.cat([r, m[:3, 3:]], 1), m[3:]], 0)


def render(glctx, mtx, pos, pos_idx, col, col_idx, resolution: int):
    pos_clip = util.transform_pos(mtx, pos)
    rast_out, _ = dr.rasterize(glctx, pos_clip, pos_idx, resolution=[resolution, resolution])
    color, _ = dr.interpolate(col[None, ...], rast_out, col_idx)
    color = dr.antialias(color, rast_out, pos_clip, pos_idx)
    return color


def fit_pose(max_iter=1000, repeats=1, log_interval=10, lr_base=0.01, lr_falloff=1.0, nr_base=1.0, nr_falloff=1e-4,
             grad_phase_start=0.5, resolution=256, out_dir=None, seed=0, init_near=None):
    """Returns the final (err, err_best) in degrees of every repeat. ``init_near`` (degrees; not in the
    original) starts at that angle from the target instead of at a random pose (for quick tests)."""
    rng = np.random.RandomState(seed)
    pos_idx, pos, col_idx, col = util.cube_data("p")
    print("Mesh has %d triangles and %d vertices." % (pos_idx.shape[0], pos.shape[0]))
    pos_idx = torch.from_numpy(pos_idx).to(DEVICE)
    vtx_pos = torch.from_numpy(pos).to(DEVICE)
    col_idx = torch.from_numpy(col_idx).to(DEVICE)
    vtx_col = torch.from_numpy(col).to(DEVICE)
    glctx = dr.RasterizeCudaContext()
    results = []
    mvp = torch.tensor(np.matmul(util.projection(x=0.4), util.translate(0, 0, -3.5)), device=DEVICE)
    for rep in range(repeats):
        pose_target = torch.tensor(q_rnd(rng), device=DEVICE)
        pose_init = q_rnd(rng)
        if init_near is not None:
            axis = rng.normal(size=3)
            half = np.radians(init_near) / 2
            turn = np.concatenate([[np.cos(half)], np.sin(half) * axis / np.linalg.norm(axis)]).astype(np.float32)
            pose_init = q_mul(pose_target.numpy(), turn)
        pose_opt = torch.tensor(pose_init / np.sum(pose_init ** 2) ** 0.5, device=DEVICE, requires_grad=True)
        loss_best, pose_best = np.inf, pose_opt.detach().clone()
        optimizer = torch.optim.Adam([pose_opt], betas=(0.9, 0.999), lr=lr_base)
        color = render(glctx, mvp @ q_to_mtx(pose_target), vtx_pos, pos_idx, vtx_col, col_idx, resolution)
        for it in range(max_iter + 1):
            itf = it / max_iter
            nr = nr_base * nr_falloff ** itf
            for group in optimizer.param_groups:
                group["lr"] = lr_base * lr_falloff ** itf
            if itf >= grad_phase_start:
                noise = q_unit()
            else:  # greedy phase: random perturbations, including the cube's symmetries
                noise = q_mul(q_scale(q_rnd(rng), nr), Q_S4[rng.randint(len(Q_S4))])
            pose_total_opt = q_mul_torch(pose_opt, torch.as_tensor(noise, device=DEVICE))
            color_opt = render(glctx, mvp @ q_to_mtx(pose_total_opt), vtx_pos, pos_idx, vtx_col, col_idx, resolution)
            diff = torch.tanh(5.0 * torch.max((color_opt - color) ** 2, dim=-1)[0])
            loss = torch.mean(diff)
            loss_val = float(loss.detach())
            if loss_best > loss_val > 0.0:
                pose_best, loss_best = pose_total_opt.detach().clone(), loss_val
                if itf < grad_phase_start:
                    with torch.no_grad():
                        pose_opt[:] = pose_best
            if log_interval and it % log_interval == 0:
                print("rep=%d,iter=%d,err=%f,err_best=%f,loss=%f,loss_best=%f" % (
                    rep, it, q_angle_deg(pose_opt, pose_target), q_angle_deg(pose_best, pose_target), loss_val,
                    loss_best))
            if itf >= grad_phase_start:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                pose_opt /= torch.sum(pose_opt ** 2) ** 0.5
        results.append((q_angle_deg(pose_opt, pose_target), q_angle_deg(pose_best, pose_target)))
        if out_dir:
            with torch.no_grad():
                img_best = render(glctx, mvp @ q_to_mtx(pose_best), vtx_pos, pos_idx, vtx_col, col_idx, resolution)
                img_opt = render(glctx, mvp @ q_to_mtx(pose_opt), vtx_pos, pos_idx, vtx_col, col_idx, resolution)
            fn = os.path.join(out_dir, f"pose_{rep}.png")
            util.save_image(fn, torch.cat([color[0], img_best[0], img_opt[0]], 1).numpy())
            print(f"Saved {fn} (target, best, current)")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description="Cube pose fitting example")
    parser.add_argument("--outdir", default="")
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--resolution", type=int, default=256)
    args = parser.parse_args(argv)
    fit_pose(max_iter=args.max_iter, repeats=args.repeats, resolution=args.resolution, out_dir=args.outdir or None)
    print("Done.")


if __name__ == "__main__":
    main()
