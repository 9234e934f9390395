"""nvdiffrast's samples/torch/cube.py on the CPU: fit a cube's vertex positions and colours to
reference renders from random views, with gradients to positions coming from antialias only.
Changes from the original: the import, the device, procedural data (util.cube_data) and PNG output
instead of a live window / mp4.

    python examples/nvdiffrast/cube.py --resolution 16 [--discontinuous] [--max-iter 1000] [--outdir out]

The log prints the geometric error (mean distance of the fitted corners from the true cube's); it falls
from ~0.45 towards 0 as the fit converges, even at tiny resolutions such as 4 or 8.
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


def render(glctx, mtx, pos, pos_idx, vtx_col, col_idx, resolution: int):
    pos_clip = util.transform_pos(mtx, pos)
    rast_out, _ = dr.rasterize(glctx, pos_clip, pos_idx, resolution=[resolution, resolution])
    color, _ = dr.interpolate(vtx_col[None, ...], rast_out, col_idx)
    color = dr.antialias(color, rast_out, pos_clip, pos_idx)
    return color


def fit_cube(max_iter=1000, resolution=4, discontinuous=False, log_interval=10, display_res=256, out_dir=None,
             seed=0):
    """Returns the logged geometric errors [(iteration, error), ...]."""
    rng = np.random.RandomState(seed)
    pos_idx, vtxp, col_idx, vtxc = util.cube_data("d" if discontinuous else "c")
    print("Mesh has %d triangles and %d vertices." % (pos_idx.shape[0], vtxp.shape[0]))
    pos_idx = torch.from_numpy(pos_idx).to(DEVICE)
    col_idx = torch.from_numpy(col_idx).to(DEVICE)
    vtx_pos = torch.from_numpy(vtxp).to(DEVICE)
    vtx_col = torch.from_numpy(vtxc).to(DEVICE)
    glctx = dr.RasterizeCudaContext()

    vtx_pos_opt = torch.tensor(rng.uniform(-0.5, 0.5, size=vtxp.shape) + vtxp, dtype=torch.float32, device=DEVICE,
                               requires_grad=True)
    vtx_col_opt = torch.tensor(rng.uniform(0.0, 1.0, size=vtxc.shape), dtype=torch.float32, device=DEVICE,
                               requires_grad=True)
    # Adam with a learning-rate ramp, as the original.
    optimizer = torch.optim.Adam([vtx_pos_opt, vtx_col_opt], lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda x: max(0.01, 10 ** (-x * 0.0005)))
    log, gl_avg = [], []
    proj = util.projection(x=0.4)
    for it in range(max_iter + 1):
        r_mvp = np.matmul(proj, np.matmul(util.translate(0, 0, -3.5), util.random_rotation_translation(0.25, rng)))
        with torch.no_grad():
            gl_avg.append(float(torch.mean(torch.sum((torch.abs(vtx_pos_opt) - 0.5) ** 2, dim=1) ** 0.5)))
        if log_interval and it % log_interval == 0:
            log.append((it, float(np.mean(gl_avg))))
            gl_avg = []
            print("iter=%d,err=%f" % log[-1])
        color = render(glctx, r_mvp, vtx_pos, pos_idx, vtx_col, col_idx, resolution)
        color_opt = render(glctx, r_mvp, vtx_pos_opt, pos_idx, vtx_col_opt, col_idx, resolution)
        loss = torch.mean((color - color_opt) ** 2)  # L2 pixel loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()

    if out_dir:
        a_mvp = np.matmul(proj, np.matmul(util.translate(0, 0, -3.5), np.matmul(util.rotate_x(0.4), util.rotate_y(0.6))))
        with torch.no_grad():
            img_o = render(glctx, a_mvp, vtx_pos_opt, pos_idx, vtx_col_opt, col_idx, display_res)[0]
            img_r = render(glctx, a_mvp, vtx_pos, pos_idx, vtx_col, col_idx, display_res)[0]
        fn = os.path.join(out_dir, "cube_%s_%d.png" % ("d" if discontinuous else "c", resolution))
        util.save_image(fn, torch.cat([img_o, img_r], 1).numpy())  # left: fitted, right: reference
        print(f"Saved {fn} (left: fitted cube, right: reference)")
    return log


def main(argv=None):
    parser = argparse.ArgumentParser(description="Cube fit example")
    parser.add_argument("--outdir", default="")
    parser.add_argument("--discontinuous", action="store_true", default=False)
    parser.add_argument("--resolution", type=int, required=True)
    parser.add_argument("--max-iter", type=int, default=1000)
    args = parser.parse_args(argv)
    fit_cube(max_iter=args.max_iter, resolution=args.resolution, discontinuous=args.discontinuous,
             out_dir=args.outdir or None)
    print("Done.")


if __name__ == "__main__":
    main()
