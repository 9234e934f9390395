"""nvdiffrast's samples/torch/envphong.py on the CPU: learn a cube environment map and the parameters of
a Phong highlight from renders of a mirror-like object under random views and light directions.
Changes from the original: the import, the device, procedural data (a torus with analytic normals and
a procedural sky cube map, util.torus and util.env_cube), smaller default sizes and PNG output.

    python examples/nvdiffrast/envphong.py [--max-iter 1000] [--res 256] [--outdir out]

The log prints the Phong colour RMSE, the relative error of the Phong exponent and the image RMSE;
all three fall as the environment map and the Phong parameters are recovered.
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


def fit_env_phong(max_iter=1000, log_interval=10, res=256, env_res=64, lr_base=1e-2, lr_ramp=1.0, out_dir=None, seed=0):
    """Returns the logged [(iteration, phong_rgb_rmse, phong_exp_rel_err, img_rmse), ...]."""
    rng = np.random.RandomState(seed)
    pos_idx, pos, normals = util.torus()
    env = util.env_cube(env_res)
    print("Mesh has %d triangles and %d vertices." % (pos_idx.shape[0], pos.shape[0]))
    pos_idx = torch.as_tensor(pos_idx, dtype=torch.int32, device=DEVICE)
    pos = torch.as_tensor(pos, dtype=torch.float32, device=DEVICE)
    normals = torch.as_tensor(normals, dtype=torch.float32, device=DEVICE)
    env = torch.as_tensor(env, dtype=torch.float32, device=DEVICE)
    phong_rgb = np.asarray([1.0, 0.8, 0.6], np.float32)
    phong_exp = 25.0
    phong_rgb_t = torch.as_tensor(phong_rgb, dtype=torch.float32, device=DEVICE)
    env_var = (torch.ones_like(env) * 0.5).requires_grad_()
    phong_var_raw = torch.as_tensor(rng.uniform(size=[4]), dtype=torch.float32, device=DEVICE).requires_grad_()
    phong_var_mul = torch.as_tensor([1.0, 1.0, 1.0, 10.0], dtype=torch.float32, device=DEVICE)
    glctx = dr.RasterizeCudaContext()
    zero_tensor = torch.as_tensor(0.0, dtype=torch.float32, device=DEVICE)
    one_tensor = torch.as_tensor(1.0, dtype=torch.float32, device=DEVICE)
    optimizer = torch.optim.Adam([env_var, phong_var_raw], lr=lr_base)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda x: lr_ramp ** (float(x) / float(max_iter)))
    proj = util.projection(x=0.4, n=1.0, f=200.0)
    log, imgloss_avg, phong_avg = [], [], []

    def render_refl(ldir, cpos, mvp):
        viewvec = pos[..., :3] - cpos[np.newaxis, np.newaxis, :]  # view vectors at vertices
        reflvec = viewvec - 2.0 * normals[np.newaxis, ...] * torch.sum(normals[np.newaxis, ...] * viewvec, -1, keepdim=True)
        reflvec = reflvec / torch.sum(reflvec ** 2, -1, keepdim=True) ** 0.5
        pos_clip = torch.matmul(pos, mvp.t())[np.newaxis, ...]
        rast_out, rast_out_db = dr.rasterize(glctx, pos_clip, pos_idx, [res, res])
        refl, refld = dr.interpolate(reflvec, rast_out, pos_idx, rast_db=rast_out_db, diff_attrs="all")
        refl = refl / (torch.sum(refl ** 2, -1, keepdim=True) + 1e-8) ** 0.5
        ldotr = torch.sum(-ldir * refl, -1, keepdim=True)  # L dot R
        return refl, refld, ldotr, (rast_out[..., -1:] == 0)

    def shade(env_map, rgb, exponent, refl, refld, ldotr, mask):
        color = dr.texture(env_map[np.newaxis, ...], refl, uv_da=refld, filter_mode="linear-mipmap-linear",
                           boundary_mode="cube")
        color = color + rgb * torch.max(zero_tensor, ldotr) ** exponent  # Phong
        return torch.where(mask, one_tensor, color)  # white background

    for it in range(max_iter + 1):
        phong_var = phong_var_raw * phong_var_mul
        r_mv = np.matmul(util.translate(0, 0, -3.5), util.random_rotation_translation(0.25, rng))
        r_mvp = torch.as_tensor(np.matmul(proj, r_mv), dtype=torch.float32, device=DEVICE)
        r_campos = torch.as_tensor(np.linalg.inv(r_mv)[:3, 3], dtype=torch.float32, device=DEVICE)
        lightdir = rng.normal(size=[3])
        lightdir /= np.linalg.norm(lightdir) + 1e-8
        lightdir = torch.as_tensor(lightdir, dtype=torch.float32, device=DEVICE)
        refl, refld, ldotr, mask = render_refl(lightdir, r_campos, r_mvp)
        color = shade(env, phong_rgb_t, phong_exp, refl, refld, ldotr, mask)
        color_opt = shade(env_var, phong_var[:3], phong_var[3], refl, refld, ldotr, mask)
        loss = torch.mean((color - color_opt) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        imgloss_avg.append(float(loss.detach()) ** 0.5)
        phong_avg.append(phong_var.detach().numpy())
        if log_interval and it % log_interval == 0:
            pv = np.mean(np.asarray(phong_avg), 0)
            log.append((it, float(np.mean((pv[:3] - phong_rgb) ** 2) ** 0.5), float(abs(pv[3] - phong_exp) / phong_exp),
                        float(np.mean(imgloss_avg))))
            imgloss_avg, phong_avg = [], []
            print("iter=%d,phong_rgb_rmse=%f,phong_exp_rel_err=%f,img_rmse=%f" % log[-1])
    if out_dir:
        a_mv = np.matmul(util.translate(0, 0, -3.5), np.matmul(util.rotate_x(0.4), util.rotate_y(0.5)))
        a_mvp = torch.as_tensor(np.matmul(proj, a_mv), dtype=torch.float32)
        a_campos = torch.as_tensor(np.linalg.inv(a_mv)[:3, 3], dtype=torch.float32)
        ldir = torch.tensor([0.0, -0.6, -0.8])
        with torch.no_grad():
            r = render_refl(ldir, a_campos, a_mvp)
            pv = phong_var_raw * phong_var_mul
            img = torch.cat([shade(env_var, pv[:3], pv[3], *r)[0], shade(env, phong_rgb_t, phong_exp, *r)[0]], 1)
        util.save_image(os.path.join(out_dir, "envphong.png"), img.clamp(0, 1).numpy())
        print(f"Saved {out_dir}/envphong.png (left: learned, right: reference)")
    return log


def main(argv=None):
    parser = argparse.ArgumentParser(description="Environment map + Phong fitting example")
    parser.add_argument("--outdir", default="")
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--res", type=int, default=256)
    args = parser.parse_args(argv)
    fit_env_phong(max_iter=args.max_iter, res=args.res, out_dir=args.outdir or None)
    print("Done.")


if __name__ == "__main__":
    main()
