"""Render a mesh from a ring of cameras in one call and save PNGs and a turntable GIF.

    python examples/render_turntable.py [MESH] --views 24
"""
import argparse
from pathlib import Path

import torch

import diffras

parser = argparse.ArgumentParser()
parser.add_argument("mesh", nargs="?", default=None, help="mesh file (default: the bundled cow)")
parser.add_argument("--views", type=int, default=24)
parser.add_argument("--size", type=int, default=256)
parser.add_argument("--out", type=Path, default=Path("out/turntable"))
args = parser.parse_args()

mesh = diffras.io.load_mesh(args.mesh) if args.mesh else diffras.data.load_cow()
mesh = diffras.ops.normalize_to_unit_sphere(mesh)

# N views of one mesh is one call: the renderer extends a single mesh over the camera batch.
R, T = diffras.cameras.look_at_view_transform(dist=2.7, elev=20.0, azim=torch.linspace(-180, 180, args.views + 1)[:-1])
cameras = diffras.FoVPerspectiveCameras(R=R, T=T)
renderer = diffras.MeshRenderer(
    diffras.MeshRasterizer(cameras, diffras.RasterSettings(image_size=args.size)),
    diffras.HardPhongShader(cameras=cameras, lights=diffras.PointLights(location=cameras.get_camera_center())),
)
with torch.no_grad():
    images = renderer(mesh)  # (views, H, W, 4)

args.out.mkdir(parents=True, exist_ok=True)
diffras.vis.save_images(args.out, images)
diffras.vis.save_turntable(args.out / "turntable.gif", images, fps=12)
print(f"wrote {len(images)} views and turntable.gif to {args.out}")
