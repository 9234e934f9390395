"""Optimise a UV texture map from images taken by known cameras.

    python examples/texture_from_views.py --steps 200

The geometry and UV layout are known (the cow's); the texels start grey and are fitted to the views through
differentiable texture sampling. Visibility does not change, so each view is rasterized once.
"""
import argparse

import torch

import diffras

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=200)
parser.add_argument("--size", type=int, default=128)
parser.add_argument("--texture-size", type=int, default=256)
args = parser.parse_args()
torch.manual_seed(0)

cow = diffras.ops.normalize_to_unit_sphere(diffras.data.load_cow())
cameras = diffras.cameras.sphere_cameras(16)
lights = diffras.AmbientLights()  # ambient only: the image is the albedo, the easiest case to read
rasterizer = diffras.MeshRasterizer(cameras, diffras.RasterSettings(image_size=args.size))
shader = diffras.HardPhongShader(cameras=cameras, lights=lights)

batch = cow.extend(len(cameras))
with torch.no_grad():
    fragments = rasterizer(batch)  # fixed geometry: fragments computed once, reused every step
    photos = shader(fragments, batch)[..., :3]

uv = cow.textures
texels = torch.full((args.texture_size, args.texture_size, 3), 0.5, requires_grad=True)
optimizer = torch.optim.Adam([texels], lr=0.05)
for step in range(args.steps):
    textures = diffras.TexturesUV(maps=texels.clamp(0, 1)[None].expand(len(cameras), -1, -1, -1),
                                  faces_uvs=uv.faces_uvs_padded().expand(len(cameras), -1, -1),
                                  verts_uvs=uv.verts_uvs_padded().expand(len(cameras), -1, -1))
    textured = diffras.Meshes(batch.verts_list(), batch.faces_list(), textures=textures)
    loss = ((shader(fragments, textured)[..., :3] - photos) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 25 == 0 or step == args.steps - 1:
        print(f"step {step:4d}  loss {loss.item():.6f}  PSNR {(-10 * torch.log10(loss)).item():.2f} dB")
