"""Fit 2D-looking Gaussians to one image, the way gsplat's ``examples/image_fitting.py`` does -- with only the
import changed: ``from diffras.splat import rasterization`` instead of ``from gsplat import rasterization``.

Usage: ``python examples/gsplat/image_fitting.py [--steps 300] [--size 128] [--gaussians 3000] [--out out/image_fitting]``

The target is the bundled cow's texture map (a photo-like image). Gaussians start random in a slab in front of
an identity camera; Adam optimises their positions, scales, rotations, opacities and colours against an L2
loss. The script prints the PSNR and writes the fitted image next to the target.
"""
import argparse
import math
import time
from pathlib import Path

import torch
from PIL import Image

from diffras.data import cow_path
from diffras.splat import rasterization  # the one line that differs from a gsplat script
from diffras.vis import save_image


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--gaussians", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=Path("out/image_fitting"))
    args = ap.parse_args()
    torch.manual_seed(0)

    # Target: the texture image, resized to size x size, values in [0, 1].
    with Image.open(cow_path().with_name("cow_texture.png")) as im:
        target = torch.tensor(list(im.convert("RGB").resize((args.size, args.size)).getdata()), dtype=torch.float32)
    target = target.reshape(args.size, args.size, 3) / 255.0

    # An identity camera (OpenCV) looking down +Z with a 90-degree field of view: the slab z in [7, 9]
    # fills the image. Gaussians are parameterised as gsplat's example does (pre-activation values).
    n, W = args.gaussians, args.size
    f = 0.5 * W / math.tan(math.radians(45))
    Ks = torch.tensor([[[f, 0, W / 2], [0, f, W / 2], [0, 0, 1]]])
    viewmats = torch.eye(4)[None]
    means = torch.cat([16 * (torch.rand(n, 2) - 0.5), 8 + 2 * (torch.rand(n, 1) - 0.5)], dim=1).requires_grad_()
    scales = torch.full((n, 3), math.log(0.15)).requires_grad_()
    quats = torch.randn(n, 4).requires_grad_()
    opacities = torch.zeros(n).requires_grad_()  # sigmoid(0) = 0.5
    rgbs = torch.zeros(n, 3).requires_grad_()  # sigmoid(0) = 0.5: grey
    opt = torch.optim.Adam([means, scales, quats, opacities, rgbs], lr=0.01)

    start = time.perf_counter()
    for step in range(args.steps):
        out, _, _ = rasterization(means, quats, torch.exp(scales), torch.sigmoid(opacities), torch.sigmoid(rgbs),
                                  viewmats, Ks, W, W, packed=False)
        loss = torch.nn.functional.mse_loss(out[0], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    psnr = -10 * math.log10(float(loss.detach()))
    args.out.mkdir(parents=True, exist_ok=True)
    save_image(args.out / "fit_vs_target.png", torch.cat([out[0].detach().clamp(0, 1), target], dim=1))
    print(f"{args.steps} steps, {n} Gaussians, {W}x{W}: PSNR {psnr:.2f} dB in {time.perf_counter() - start:.1f} s; "
          f"wrote {args.out / 'fit_vs_target.png'}")


if __name__ == "__main__":
    main()
