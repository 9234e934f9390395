"""PyTorch3D's "Render a colored point cloud" tutorial, step by step, on diffras.

The tutorial's code with ``pytorch3d`` replaced by ``diffras`` in the imports and local data: its point
cloud (the Pittsburgh bridge, a download) is replaced by a coloured cloud sampled from the bundled Spot
cow, written to the same ``.npz`` layout (``verts``, ``rgb``) and loaded as the tutorial loads it. The
Pulsar renderer and the Plotly figures of the tutorial are not part of diffras and are left out.

    python examples/pytorch3d/render_colored_points.py [--points 500000] [--size 512] [--out out/colored_points]
"""
import argparse
import os
from pathlib import Path

import numpy as np
import torch

# Util function for loading point clouds
import diffras
from diffras.ops import sample_points_from_meshes

# Data structures and functions for rendering
from diffras.structures import Pointclouds
from diffras.renderer import (
    look_at_view_transform,
    FoVOrthographicCameras,
    PointsRasterizationSettings,
    PointsRenderer,
    PointsRasterizer,
    AlphaCompositor,
    NormWeightedCompositor
)

parser = argparse.ArgumentParser()
parser.add_argument("--points", type=int, default=500_000, help="points sampled on the cow")
parser.add_argument("--size", type=int, default=512, help="image side in pixels (the tutorial's 512)")
parser.add_argument("--out", type=Path, default=Path("out/colored_points"))
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)

# --- Local data in the tutorial's layout: a coloured point cloud as verts (P, 3) and rgb (P, 3). -------
# Colours come from the cow's texture at each sampled surface point (return_textures=True).
torch.manual_seed(0)
cow = diffras.data.load_cow()
verts, rgb = sample_points_from_meshes(cow, args.points, return_textures=True)
DATA_DIR = str(args.out / "data")
os.makedirs(os.path.join(DATA_DIR, "SpotCow"), exist_ok=True)
np.savez(os.path.join(DATA_DIR, "SpotCow/pointcloud.npz"), verts=verts[0].numpy(), rgb=rgb[0].numpy())

# --- The tutorial from here on. ---------------------------------------------------------------------
# Setup
if torch.cuda.is_available():
    device = torch.device("cuda:0")
    torch.cuda.set_device(device)
else:
    device = torch.device("cpu")

# Set paths
obj_filename = os.path.join(DATA_DIR, "SpotCow/pointcloud.npz")

# Load point cloud
pointcloud = np.load(obj_filename)
verts = torch.Tensor(pointcloud["verts"]).to(device)

rgb = torch.Tensor(pointcloud["rgb"]).to(device)

point_cloud = Pointclouds(points=[verts], features=[rgb])

# Initialize a camera.
R, T = look_at_view_transform(20, 10, 0)
cameras = FoVOrthographicCameras(device=device, R=R, T=T, znear=0.01)

# Define the settings for rasterization and shading. Here we set the output image to be of size
# 512x512. Refer to diffras.points.rasterize_points for explanations of these parameters.
raster_settings = PointsRasterizationSettings(
    image_size=args.size,
    radius=0.003,
    points_per_pixel=10,
)

# Create a points renderer by compositing points using an alpha compositor (nearer points
# are weighted more heavily). See SynSin (Wiles et al., CVPR 2020) for an explanation.
rasterizer = PointsRasterizer(cameras=cameras, raster_settings=raster_settings)
renderer = PointsRenderer(
    rasterizer=rasterizer,
    compositor=AlphaCompositor()
)
images = {}
images["alpha"] = renderer(point_cloud)

# We will now modify the renderer to use alpha compositing with a set background color.
renderer = PointsRenderer(
    rasterizer=rasterizer,
    # Pass in background_color to the alpha compositor, setting the background color
    # to the 3 item tuple, representing rgb on a scale of 0 -> 1, in this case blue
    compositor=AlphaCompositor(background_color=(0, 0, 1))
)
images["alpha_blue_background"] = renderer(point_cloud)

# Weighted compositing (points are weighted by their distance to a pixel and accumulated with a
# normalised weighted sum), with the same camera and settings.
R, T = look_at_view_transform(20, 10, 0)
cameras = FoVOrthographicCameras(device=device, R=R, T=T, znear=0.01)
renderer = PointsRenderer(
    rasterizer=PointsRasterizer(cameras=cameras, raster_settings=raster_settings),
    compositor=NormWeightedCompositor()
)
images["norm_weighted"] = renderer(point_cloud)

renderer = PointsRenderer(
    rasterizer=PointsRasterizer(cameras=cameras, raster_settings=raster_settings),
    # Pass in background_color to the norm weighted compositor, setting the background color
    # to the 3 item tuple, representing rgb on a scale of 0 -> 1, in this case red
    compositor=NormWeightedCompositor(background_color=(1, 0, 0))
)
images["norm_weighted_red_background"] = renderer(point_cloud)

# A batch of point clouds: the same cloud, and an all-black copy offset by 2 in every dimension
# (the tutorial shows this batch in Plotly; here both are rendered, each by its own camera view).
point_cloud_batch = Pointclouds(points=[verts, verts + 2], features=[rgb, torch.zeros_like(rgb)])
R2, T2 = look_at_view_transform(20, 10, 0, at=((0.0, 0.0, 0.0), (2.0, 2.0, 2.0)))
batch_cameras = FoVOrthographicCameras(device=device, R=R2, T=T2, znear=0.01)
renderer = PointsRenderer(
    rasterizer=PointsRasterizer(cameras=batch_cameras, raster_settings=raster_settings),
    compositor=AlphaCompositor(background_color=(1, 1, 1)),
)
batch_images = renderer(point_cloud_batch)

# Where the tutorial shows the images with matplotlib, save them (plt.imshow(images[0, ..., :3])).
for name, img in images.items():
    diffras.vis.save_image(args.out / f"{name}.png", img[0, ..., :3].clamp(0, 1))
diffras.vis.save_image(args.out / "batch.png", diffras.vis.image_grid(batch_images[..., :3].clamp(0, 1), rows=1))
grid = diffras.vis.image_grid(torch.cat([img[..., :3] for img in images.values()]).clamp(0, 1), rows=2)
diffras.vis.save_image(args.out / "all.png", grid)
# The same cloud as a PLY file with its colours, for any viewer (MeshLab, Open3D, PyTorch3D's IO).
diffras.io.save_pointcloud(point_cloud, args.out / "cow_points.ply")
print(f"rendered {args.points} points at {args.size}x{args.size}: wrote {len(images)} images, all.png, batch.png "
      f"and cow_points.ply to {args.out}")
