"""nvdiffrast's samples/torch/earth.py on the CPU: learn a texture from reference renders (random views
and distances) with and without prefiltered (mip-mapped) texture sampling. Changes from the original:
the import, the device, procedural data (a UV sphere with an earth-like texture, util.uv_sphere and
util.earth_texture), smaller default resolutions for the CPU and PNG output.

    python examples/nvdiffrast/earth.py [--mip] [--max-iter 2000] [--res 256] [--ref-res 1024] [--outdir out]

The log prints the texture RMSE and PSNR; with --mip the PSNR climbs markedly higher, because without
prefiltering distant views update only the texels that happen to be point-sampled (aliasing).
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


def render(glctx, mtx, pos, pos_idx, uv, uv_idx, tex, resolution, enable_mip, max_mip_level):
    pos_clip = util.transform_pos(mtx, pos)
    rast_out, rast_out_db = dr.rasterize(glctx, pos_clip, pos_idx, resolution=[resolution, resolution])
    if enable_mip:
        texc, texd = dr.interpolate(uv[None, ...], rast_out, uv_idx, rast_db=rast_out_db, diff_attrs="all")
        color = dr.texture(tex[None, ...], texc, texd, filter_mode="linear-mipmap-linear", max_mip_level=max_mip_level)
    else:
        texc, _ = dr.interpolate(uv[None, ...], rast_out, uv_idx)
        color = dr.texture(tex[None, ...], texc, filter_mode="linear")
    return color * torch.clamp(rast_out[..., -1:], 0, 1)  # mask out the background


def fit_earth(max_iter=2000, log_interval=10, enable_mip=True, res=256, ref_res=1024, tex_res=256, lr_base=1e-2,
              lr_ramp=0.1, out_dir=None, seed=0):
    """Returns the logged [(iteration, texture RMSE, PSNR), ...]."""
    rng = np.random.RandomState(seed)
    pos_idx, pos, uv_idx, uv = util.uv_sphere()
    tex = util.earth_texture(tex_res, 2 * tex_res)
    max_mip_level = None  # power-of-two texture: the pyramid goes down to 1 x 1
    print("Mesh has %d triangles and %d vertices." % (pos_idx.shape[0], pos.shape[0]))
    pos_idx = torch.from_numpy(pos_idx).to(DEVICE)
    vtx_pos = torch.from_numpy(pos).to(DEVICE)
    uv_idx = torch.from_numpy(uv_idx).to(DEVICE)
    vtx_uv = torch.from_numpy(uv).to(DEVICE)
    tex = torch.from_numpy(tex).to(DEVICE)
    tex_opt = torch.full(tex.shape, 0.2, device=DEVICE, requires_grad=True)
    glctx = dr.RasterizeCudaContext()
    optimizer = torch.optim.Adam([tex_opt], lr=lr_base)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda x: lr_ramp ** (float(x) / float(max_iter)))
    log, texloss_avg = [], []
    proj = util.projection(x=0.4, n=1.0, f=200.0)
    for it in range(max_iter + 1):
        dist = rng.uniform(0.0, 48.5)
        r_mvp = np.matmul(proj, np.matmul(util.translate(0, 0, -1.5 - dist), util.random_rotation_translation(0.25, rng)))
        with torch.no_grad():
            texloss_avg.append(float(torch.mean((tex - tex_opt) ** 2) ** 0.5))
        color = render(glctx, r_mvp, vtx_pos, pos_idx, vtx_uv, uv_idx, tex, ref_res, True, max_mip_level)
        color_opt = render(glctx, r_mvp, vtx_pos, pos_idx, vtx_uv, uv_idx, tex_opt, res, enable_mip, max_mip_level)
        while color.shape[1] > res:  # reduce the reference to the same size
            color = util.bilinear_downsample(color)
        loss = torch.mean((color - color_opt) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if log_interval and it % log_interval == 0:
            rmse = float(np.mean(texloss_avg))
            texloss_avg = []
            log.append((it, rmse, -10.0 * np.log10(rmse ** 2)))
            print("iter=%d,loss=%f,psnr=%f" % log[-1])
    if out_dir:
        a_mvp = np.matmul(proj, np.matmul(util.translate(0, 0, -3.5), np.matmul(util.rotate_x(0.4), util.rotate_y(0.8))))
        with torch.no_grad():
            img = render(glctx, a_mvp, vtx_pos, pos_idx, vtx_uv, uv_idx, tex_opt, res, True, max_mip_level)[0]
            ref = render(glctx, a_mvp, vtx_pos, pos_idx, vtx_uv, uv_idx, tex, res, True, max_mip_level)[0]
        tag = "mip" if enable_mip else "nomip"
        util.save_image(os.path.join(out_dir, f"earth_{tag}.png"), torch.cat([img, ref], 1).numpy())
        util.save_image(os.path.join(out_dir, f"earth_{tag}_texture.png"), tex_opt.detach().clamp(0, 1).numpy())
        print(f"Saved {out_dir}/earth_{tag}.png (left: learned texture, right: reference) and the texture")
    return log


def main(argv=None):
    parser = argparse.ArgumentParser(description="Earth texture fitting example")
    parser.add_argument("--outdir", default="")
    parser.add_argument("--mip", action="store_true", default=False)
    parser.add_argument("--max-iter", type=int, default=2000)
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--ref-res", type=int, default=1024)
    args = parser.parse_args(argv)
    fit_earth(max_iter=args.max_iter, enable_mip=args.mip, res=args.res, ref_res=args.ref_res,
              out_dir=args.outdir or None)
    print("Done.")


if __name__ == "__main__":
    main()
