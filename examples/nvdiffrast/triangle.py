"""nvdiffrast's samples/torch/triangle.py on the CPU: the only changes are the import and the device.

    python examples/nvdiffrast/triangle.py [--out tri.png]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import util  # noqa: E402

import diffras.nv as dr  # was: import nvdiffrast.torch as dr

DEVICE = "cpu"  # was: 'cuda'


def tensor(*args, **kwargs):
    return torch.tensor(*args, device=DEVICE, **kwargs)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Render one interpolated triangle")
    parser.add_argument("--out", default="tri.png")
    args = parser.parse_args(argv)

    glctx = dr.RasterizeCudaContext()
    pos = tensor([[[-0.8, -0.8, 0, 1], [0.8, -0.8, 0, 1], [-0.8, 0.8, 0, 1]]], dtype=torch.float32)
    col = tensor([[[1, 0, 0], [0, 1, 0], [0, 0, 1]]], dtype=torch.float32)
    tri = tensor([[0, 1, 2]], dtype=torch.int32)

    rast, _ = dr.rasterize(glctx, pos, tri, resolution=[256, 256])
    out, _ = dr.interpolate(col, rast, tri)

    print(f"Saving to '{args.out}'.")
    util.save_image(args.out, out[0].cpu().numpy())  # save_image flips vertically (OpenGL row order)
    return out


if __name__ == "__main__":
    main()
