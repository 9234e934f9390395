"""PyTorch3D's tutorial "Render a textured mesh", step by step, with only ``pytorch3d`` -> ``diffras`` in the imports.

    python examples/pytorch3d/render_textured_meshes.py [--out out/pytorch3d/render_textured_meshes]

Differences from the notebook: data comes from the cow bundled with diffras instead of a download, figures are
saved as PNGs instead of shown, and the plotly cells are left out (plotly is not a dependency). ``--size`` and
``--batch`` shrink the renders for a quick run.
"""
import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

# Util function for loading meshes
from diffras.io import load_objs_as_meshes, load_obj  # noqa: E402

# Data structures and functions for rendering
from diffras.structures import Meshes  # noqa: E402
from diffras.vis.texture_vis import texturesuv_image_matplotlib  # noqa: E402
from diffras.renderer import (  # noqa: E402
    look_at_view_transform,
    FoVPerspectiveCameras,
    PointLights,
    DirectionalLights,
    Materials,
    RasterizationSettings,
    MeshRenderer,
    MeshRasterizer,
    SoftPhongShader,
    TexturesUV,
    TexturesVertex,
)

import diffras.data  # noqa: E402  (local data instead of the tutorial's download)

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from utils import image_grid  # noqa: E402  (the tutorial's local helper)

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=512)
parser.add_argument("--batch", type=int, default=20)
parser.add_argument("--out", default="out/pytorch3d/render_textured_meshes")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)


def save(name):
    plt.savefig(os.path.join(args.out, name), bbox_inches="tight")
    plt.close("all")


# Setup
if torch.cuda.is_available():
    device = torch.device("cuda:0")
    torch.cuda.set_device(device)
else:
    device = torch.device("cpu")

# Set paths
DATA_DIR = str(diffras.data.cow_path().parent.parent)
obj_filename = os.path.join(DATA_DIR, "cow_mesh/cow.obj")

# Load obj file
mesh = load_objs_as_meshes([obj_filename], device=device)

plt.figure(figsize=(7, 7))
texture_image = mesh.textures.maps_padded()
plt.imshow(texture_image.squeeze().cpu().numpy())
plt.axis("off")
save("texture.png")

plt.figure(figsize=(7, 7))
texturesuv_image_matplotlib(mesh.textures, subsample=None)
plt.axis("off")
save("texture_uvs.png")

# Initialize a camera.
# With world coordinates +Y up, +X left and +Z in, the front of the cow is facing the -Z direction.
# So we move the camera by 180 in the azimuth direction so it is facing the front of the cow.
R, T = look_at_view_transform(2.7, 0, 180)
cameras = FoVPerspectiveCameras(device=device, R=R, T=T)

# Define the settings for rasterization and shading: one face per pixel, no blur (a display render).
raster_settings = RasterizationSettings(
    image_size=args.size,
    blur_radius=0.0,
    faces_per_pixel=1,
)

# Place a point light in front of the object. As mentioned above, the front of the cow is facing the
# -z direction.
lights = PointLights(device=device, location=[[0.0, 0.0, -3.0]])

# Create a Phong renderer by composing a rasterizer and a shader.
renderer = MeshRenderer(
    rasterizer=MeshRasterizer(
        cameras=cameras,
        raster_settings=raster_settings
    ),
    shader=SoftPhongShader(
        device=device,
        cameras=cameras,
        lights=lights
    )
)

images = renderer(mesh)
plt.figure(figsize=(10, 10))
plt.imshow(images[0, ..., :3].cpu().numpy())
plt.axis("off")
save("front.png")

# Now move the light so it is on the +Z axis which will be behind the cow.
lights.location = torch.tensor([0.0, 0.0, +1.0], device=device)[None]
images = renderer(mesh, lights=lights)
plt.figure(figsize=(10, 10))
plt.imshow(images[0, ..., :3].cpu().numpy())
plt.axis("off")
save("light_behind.png")
dark = float(images[0, ..., :3].mean())

# Rotate the object by increasing the elevation and azimuth angles
R, T = look_at_view_transform(dist=2.7, elev=10, azim=-150)
cameras = FoVPerspectiveCameras(device=device, R=R, T=T)

# Move the light location so the light is shining on the cow's face.
lights.location = torch.tensor([[2.0, 2.0, -2.0]], device=device)

# Change specular color to green and change material shininess
materials = Materials(
    device=device,
    specular_color=[[0.0, 1.0, 0.0]],
    shininess=10.0
)

# Re render the mesh, passing in keyword arguments for the modified components.
images = renderer(mesh, lights=lights, materials=materials, cameras=cameras)
plt.figure(figsize=(10, 10))
plt.imshow(images[0, ..., :3].cpu().numpy())
plt.axis("off")
save("green_specular.png")

# Set batch size - this is the number of different viewpoints from which we want to render the mesh.
batch_size = args.batch

# Create a batch of meshes by repeating the cow mesh and associated textures.
meshes = mesh.extend(batch_size)

# Get a batch of viewing angles.
elev = torch.linspace(0, 180, batch_size)
azim = torch.linspace(-180, 180, batch_size)

R, T = look_at_view_transform(dist=2.7, elev=elev, azim=azim)
cameras = FoVPerspectiveCameras(device=device, R=R, T=T)

# Move the light back in front of the cow which is facing the -z direction.
lights.location = torch.tensor([[0.0, 0.0, -3.0]], device=device)

# We can pass arbitrary keyword arguments to the rasterizer/shader via the renderer
# so the renderer does not need to be reinitialized if any of the settings change.
images = renderer(meshes, cameras=cameras, lights=lights)

rows = 4 if batch_size % 4 == 0 else 1
image_grid(images.cpu().numpy(), rows=rows, cols=batch_size // rows, rgb=True)
save("grid.png")

# load_obj gives the file's vertices and faces (no welding), for a plain white mesh.
verts, faces_idx, _ = load_obj(obj_filename)
faces = faces_idx.verts_idx
verts_rgb = torch.ones_like(verts)[None]  # (1, V, 3)
textures = TexturesVertex(verts_features=verts_rgb.to(device))
mesh = Meshes(verts=[verts.to(device)], faces=[faces.to(device)], textures=textures)
white = renderer(mesh, cameras=cameras[0])
covered = float(white[0, ..., 3].mean())
print(f"rendered {batch_size + 4} views at {args.size}^2 into {args.out}; light behind: mean RGB {dark:.3f}; "
      f"white cow covers {covered:.1%} of the image")
