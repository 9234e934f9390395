"""Fit a coloured mesh to images of the Spot cow: deform an ico-sphere by differentiable rendering.

    python examples/fit_mesh.py --steps 300

The same task as `diffras fit`, written out with the public API so it can be copied and changed.
"""
import argparse

import torch

import diffras
from diffras.losses import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=300)
parser.add_argument("--size", type=int, default=96)
args = parser.parse_args()
torch.manual_seed(0)

# The target: the bundled cow, scaled into the unit sphere so a camera at distance 2.7 frames it.
cow = diffras.ops.normalize_to_unit_sphere(diffras.data.load_cow())

# Twelve views around it; a point light at each camera so every view is lit from the front.
cameras = diffras.cameras.sphere_cameras(12)
lights = diffras.PointLights(location=cameras.get_camera_center())

# Targets come from a hard (K=1) render: what a photo with a clean mask would give.
hard = diffras.MeshRenderer(
    diffras.MeshRasterizer(cameras, diffras.RasterSettings(image_size=args.size)),
    diffras.HardPhongShader(cameras=cameras, lights=lights),
)
with torch.no_grad():
    target = hard(cow.extend(len(cameras)))  # (12, H, W, 4)

# Soft rasterization: each pixel sees up to 30 faces within the blur radius, so silhouette edges get
# gradients (SoftRas). sigma sets how soft; the blur radius is where a face's weight becomes negligible.
# sigma shrinks during the fit (see the loop): a fixed one leaves the fit a pixel inside the outline.
settings = diffras.RasterSettings(image_size=args.size, faces_per_pixel=30)
rasterizer = diffras.MeshRasterizer(cameras, settings)
silhouette_shader = diffras.SoftSilhouetteShader()
phong_shader = diffras.SoftPhongShader(cameras=cameras, lights=lights)

# What we optimise: an offset per vertex of an ico-sphere and a colour per vertex.
sphere = diffras.ops.ico_sphere(4)
offsets = torch.zeros_like(sphere.verts_packed(), requires_grad=True)
# Colours through a sigmoid: a clamped colour pushed past 0 or 1 would get no gradient and stay stuck.
color_logits = torch.zeros_like(sphere.verts_packed(), requires_grad=True)
optimizer = torch.optim.Adam([{"params": [offsets], "lr": 0.03}, {"params": [color_logits], "lr": 0.2}])

for step in range(args.steps):
    views = torch.randperm(len(cameras))[:4]
    mesh = sphere.offset_verts(offsets)  # keeps the sphere's topology caches: cheap every step
    mesh.textures = diffras.TexturesVertex([torch.sigmoid(color_logits)])
    batch = mesh.extend(len(views))
    # Soft silhouettes are dilated (every nearby face adds coverage): start soft for long-range gradients,
    # end almost hard so the outline lands on the target's.
    sigma = 1e-4 * (3e-6 / 1e-4) ** (step / max(args.steps - 1, 1))
    blend = diffras.BlendParams(sigma=sigma, gamma=1e-4)
    # One rasterization, two shaders: the silhouette and the colours see the same fragments.
    fragments = rasterizer(batch, cameras=cameras[views], blur_radius=diffras.shading.soft_blur_radius(sigma))
    alpha = silhouette_shader(fragments, batch, blend_params=blend)[..., 3]
    rgb = phong_shader(fragments, batch, cameras=cameras[views], blend_params=blend,
                       lights=diffras.PointLights(location=cameras[views].get_camera_center()))[..., :3]
    loss = (((alpha - target[views, ..., 3]) ** 2).mean() + ((rgb - target[views, ..., :3]) ** 2).mean()
            # Regularisers keep the surface a surface while it moves: even edges, smooth normals.
            + mesh_edge_loss(mesh) + 0.01 * mesh_normal_consistency(mesh) + mesh_laplacian_smoothing(mesh))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 50 == 0 or step == args.steps - 1:
        print(f"step {step:4d}  loss {loss.item():.5f}")

with torch.no_grad():
    fit = sphere.offset_verts(offsets)
    iou = diffras.losses.silhouette_iou(hard(fit.extend(len(cameras)))[..., 3], target[..., 3]).mean()
print(f"silhouette IoU on the training views: {iou.item():.3f}")
