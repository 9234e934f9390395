"""PyTorch3D's tutorial "Fit a volume via raymarching" (fit_textured_volume.ipynb), step by step on diffras.

The tutorial's code with ``pytorch3d`` replaced by ``diffras`` in the imports. What differs, and why:
- sizes and iteration counts are cut so that it runs in a few minutes on a CPU (the tutorial's 128^3
  volume, 128^2 images, 150 points per ray and 300 iterations of 10 views are GPU sizes); every
  cut is a command-line option, ``--tutorial-sizes`` restores the tutorial's;
- figures are saved to ``--out`` instead of shown, and the losses go to ``losses.json``.

    python examples/pytorch3d/fit_textured_volume.py [--n-iter 150] [--out out/fit_textured_volume]
"""
import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

# Data structures and functions for rendering
from diffras.structures import Volumes  # noqa: E402

from diffras.renderer import EmissionAbsorptionRaymarcher, FoVPerspectiveCameras, NDCMultinomialRaysampler, VolumeRenderer  # noqa: E402
from diffras.transforms import so3_exp_map  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from utils import generate_cow_renders, image_grid  # noqa: E402  (the tutorial's local helpers)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n-iter", type=int, default=150, help="Adam iterations (tutorial: 300)")
parser.add_argument("--num-views", type=int, default=40)
parser.add_argument("--image-size", type=int, default=64, help="target image size (tutorial: 128)")
parser.add_argument("--volume-size", type=int, default=64, help="voxels per side (tutorial: 128)")
parser.add_argument("--n-pts-per-ray", type=int, default=80, help="(tutorial: 150)")
parser.add_argument("--batch-size", type=int, default=6, help="views per iteration (tutorial: 10)")
parser.add_argument("--lr", type=float, default=0.1, help="Adam learning rate (tutorial: 0.1)")
parser.add_argument("--n-frames", type=int, default=28, help="frames of the final turntable (tutorial: 28)")
parser.add_argument("--tutorial-sizes", action="store_true", help="the tutorial's sizes (slow on a CPU)")
parser.add_argument("--out", type=Path, default=Path("out/fit_textured_volume"))
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()
if args.tutorial_sizes:
    args.n_iter, args.image_size, args.volume_size, args.n_pts_per_ray, args.batch_size = 300, 128, 128, 150, 10
args.out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(args.seed)
device = torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")

# 1. Target images, silhouettes and cameras: the cow rendered by the mesh renderer.
target_cameras, target_images, target_silhouettes = generate_cow_renders(num_views=args.num_views, image_size=args.image_size)
print(f"Generated {len(target_images)} images/silhouettes/cameras.")

# 2. The volumetric renderer: a ray per pixel (PyTorch3D's NDC grid), points evenly spaced in depth,
# composited front to back by emission-absorption.
render_size = target_images.shape[1]
volume_extent_world = 3.0  # the scene fits in a cube of side ~3 around the origin
raysampler = NDCMultinomialRaysampler(
    image_width=render_size,
    image_height=render_size,
    n_pts_per_ray=args.n_pts_per_ray,  # about one point per voxel
    min_depth=0.1,
    max_depth=volume_extent_world,
)
raymarcher = EmissionAbsorptionRaymarcher()
renderer = VolumeRenderer(raysampler=raysampler, raymarcher=raymarcher)


# 3. The volumetric model: log-space densities and colours, squashed to [0, 1] by sigmoids.
class VolumeModel(torch.nn.Module):
    def __init__(self, renderer, volume_size=[64] * 3, voxel_size=0.1):
        super().__init__()
        self.log_densities = torch.nn.Parameter(-4.0 * torch.ones(1, *volume_size))  # sigmoid(-4): nearly empty
        self.log_colors = torch.nn.Parameter(torch.zeros(3, *volume_size))  # sigmoid(0): neutral grey
        self._voxel_size = voxel_size
        self._renderer = renderer

    def forward(self, cameras):
        batch_size = cameras.R.shape[0]
        densities = torch.sigmoid(self.log_densities)
        colors = torch.sigmoid(self.log_colors)
        # One volume per camera: expand (no copy) to the batch of cameras.
        volumes = Volumes(
            densities=densities[None].expand(batch_size, *self.log_densities.shape),
            features=colors[None].expand(batch_size, *self.log_colors.shape),
            voxel_size=self._voxel_size,
        )
        return self._renderer(cameras=cameras, volumes=volumes)[0]  # (B, H, W, 3 + 1)


def huber(x, y, scaling=0.1):
    """Smooth L1 (pseudo-Huber) loss, elementwise."""
    diff_sq = (x - y) ** 2
    return ((1 + diff_sq / (scaling**2)).clamp(1e-4).sqrt() - 1) * float(scaling)


# 4. Fit the volume.
target_cameras = target_cameras.to(device)
target_images = target_images.to(device)
target_silhouettes = target_silhouettes.to(device)

volume_size = args.volume_size
volume_model = VolumeModel(renderer, volume_size=[volume_size] * 3, voxel_size=volume_extent_world / volume_size).to(device)
lr = args.lr
optimizer = torch.optim.Adam(volume_model.parameters(), lr=lr)
batch_size, n_iter = args.batch_size, args.n_iter
history = {"color": [], "silhouette": [], "seconds_per_iteration": None}
start = time.perf_counter()
for iteration in tqdm(range(n_iter), desc="fit", mininterval=5.0):
    if iteration == round(n_iter * 0.75):
        print("Decreasing LR 10-fold ...")
        optimizer = torch.optim.Adam(volume_model.parameters(), lr=lr * 0.1)
    optimizer.zero_grad()
    batch_idx = torch.randperm(len(target_cameras))[:batch_size]
    batch_cameras = FoVPerspectiveCameras(
        R=target_cameras.R[batch_idx],
        T=target_cameras.T[batch_idx],
        znear=target_cameras.znear[batch_idx],
        zfar=target_cameras.zfar[batch_idx],
        aspect_ratio=target_cameras.aspect_ratio[batch_idx],
        fov=target_cameras.fov[batch_idx],
        device=device,
    )
    rendered_images, rendered_silhouettes = volume_model(batch_cameras).split([3, 1], dim=-1)
    sil_err = huber(rendered_silhouettes[..., 0], target_silhouettes[batch_idx]).abs().mean()
    color_err = huber(rendered_images, target_images[batch_idx]).abs().mean()
    loss = color_err + sil_err
    history["color"].append(float(color_err))
    history["silhouette"].append(float(sil_err))
    if iteration % 10 == 0:
        print(f"Iteration {iteration:05d}: color_err = {float(color_err):1.2e} mask_err = {float(sil_err):1.2e}")
    loss.backward()
    optimizer.step()
    if iteration % 40 == 0 or iteration == n_iter - 1:
        # One element of the batch against its target.
        i = int(torch.randint(low=0, high=len(batch_idx), size=(1,)))
        fig, ax = plt.subplots(2, 2, figsize=(10, 10))
        clamp_and_detach = lambda x: x.clamp(0.0, 1.0).cpu().detach().numpy()  # noqa: E731
        ax = ax.ravel()
        ax[0].imshow(clamp_and_detach(rendered_images[i]))
        ax[1].imshow(clamp_and_detach(target_images[batch_idx[i], ..., :3]))
        ax[2].imshow(clamp_and_detach(rendered_silhouettes[i, ..., 0]))
        ax[3].imshow(clamp_and_detach(target_silhouettes[batch_idx[i]]))
        for ax_, title_ in zip(ax, ("rendered image", "target image", "rendered silhouette", "target silhouette")):
            ax_.grid("off")
            ax_.axis("off")
            ax_.set_title(title_)
        fig.savefig(args.out / "progress.png")
        plt.close(fig)
history["seconds_per_iteration"] = (time.perf_counter() - start) / max(n_iter, 1)


# 5. A turntable of the fitted volume.
def generate_rotating_volume(volume_model, n_frames=50):
    logRs = torch.zeros(n_frames, 3, device=device)
    logRs[:, 1] = torch.linspace(0.0, 2.0 * 3.14, n_frames, device=device)
    Rs = so3_exp_map(logRs)
    Ts = torch.zeros(n_frames, 3, device=device)
    Ts[:, 2] = 2.7
    frames = []
    print("Generating rotating volume ...")
    for R, T in zip(tqdm(Rs, mininterval=5.0), Ts):
        camera = FoVPerspectiveCameras(
            R=R[None],
            T=T[None],
            znear=target_cameras.znear[0],
            zfar=target_cameras.zfar[0],
            aspect_ratio=target_cameras.aspect_ratio[0],
            fov=target_cameras.fov[0],
            device=device,
        )
        frames.append(volume_model(camera)[..., :3].clamp(0.0, 1.0))
    return torch.cat(frames)


with torch.no_grad():
    rotating_volume_frames = generate_rotating_volume(volume_model, n_frames=args.n_frames)
cols = min(7, args.n_frames)
image_grid(rotating_volume_frames.clamp(0.0, 1.0).cpu().numpy(), rows=-(-args.n_frames // cols), cols=cols, rgb=True, fill=True)
plt.savefig(args.out / "rotating_volume.png")
(args.out / "losses.json").write_text(json.dumps(history))
print(f"final color_err {history['color'][-1]:.3e}, mask_err {history['silhouette'][-1]:.3e}; "
      f"{history['seconds_per_iteration']:.2f} s/iteration; wrote {args.out}")
