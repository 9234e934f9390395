"""PyTorch3D's tutorial "Fit a simple Neural Radiance Field via raymarching"
(fit_simple_neural_radiance_field.ipynb), step by step on diffras.

The tutorial's code with ``pytorch3d`` replaced by ``diffras`` in the imports. What differs, and why:
- sizes and iteration counts are cut so that it runs in a few minutes on a CPU: the tutorial's model
  (256 hidden units, 750 rays x 128 points x 6 views per step, 3000 steps) is ~0.5 TFLOP per step,
  GPU work; every cut is a command-line option, ``--tutorial-sizes`` restores the tutorial's. With
  10x fewer steps the learning rate is 3e-3 (tutorial: 1e-3), and 10 harmonic functions (tutorial:
  60, whose frequencies ``0.1 * 2**k`` pass 1e3 at k = 14 and add only cost) shrink the MLP's input;
- the tutorial defines its own ``HarmonicEmbedding``; the library's, with ``omega_0=0.1`` and
  ``append_input=False``, computes the same features in the same order, so it is used here;
- figures are saved to ``--out`` instead of shown, and the losses go to ``losses.json``.

    python examples/pytorch3d/fit_simple_neural_radiance_field.py [--n-iter 300] [--out out/fit_nerf]
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

from diffras.renderer import (
    EmissionAbsorptionRaymarcher,
    FoVPerspectiveCameras,
    HarmonicEmbedding,
    ImplicitRenderer,
    MonteCarloRaysampler,
    NDCMultinomialRaysampler,
    RayBundle,
    ray_bundle_to_ray_points,
)  # noqa: E402
from diffras.transforms import so3_exp_map  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from utils import generate_cow_renders, image_grid  # noqa: E402  (the tutorial's local helpers)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n-iter", type=int, default=300, help="Adam iterations (tutorial: 3000)")
parser.add_argument("--num-views", type=int, default=40)
parser.add_argument("--image-size", type=int, default=64, help="target image size (tutorial: 128)")
parser.add_argument("--n-rays-per-image", type=int, default=256, help="(tutorial: 750)")
parser.add_argument("--n-pts-per-ray", type=int, default=48, help="(tutorial: 128)")
parser.add_argument("--n-hidden-neurons", type=int, default=64, help="(tutorial: 256)")
parser.add_argument("--n-harmonic-functions", type=int, default=10, help="(tutorial: 60)")
parser.add_argument("--batch-size", type=int, default=4, help="views per iteration (tutorial: 6)")
parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (tutorial: 1e-3)")
parser.add_argument("--show-every", type=int, default=100, help="full render every N iterations (tutorial: 100)")
parser.add_argument("--n-frames", type=int, default=15, help="frames of the final turntable (tutorial: 15)")
parser.add_argument("--tutorial-sizes", action="store_true", help="the tutorial's sizes (very slow on a CPU)")
parser.add_argument("--out", type=Path, default=Path("out/fit_simple_neural_radiance_field"))
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()
if args.tutorial_sizes:
    args.n_iter, args.image_size, args.n_rays_per_image, args.n_pts_per_ray = 3000, 128, 750, 128
    args.n_hidden_neurons, args.batch_size, args.n_harmonic_functions, args.lr = 256, 6, 60, 1e-3
args.out.mkdir(parents=True, exist_ok=True)
device = torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")

# 1. Target images, silhouettes and cameras: the cow rendered by the mesh renderer, half a turn of views.
target_cameras, target_images, target_silhouettes = generate_cow_renders(
    num_views=args.num_views, azimuth_range=180, image_size=args.image_size
)
print(f"Generated {len(target_images)} images/silhouettes/cameras.")

# 2. The implicit renderers: Monte Carlo rays (a random subset of pixels) for training, a full NDC
# grid of rays for looking at the result; both composite by emission-absorption.
render_size = target_images.shape[1]  # the tutorial renders at twice the target size (GPU budget)
volume_extent_world = 3.0  # the scene fits in a cube of side ~3 around the origin
raysampler_grid = NDCMultinomialRaysampler(
    image_height=render_size,
    image_width=render_size,
    n_pts_per_ray=args.n_pts_per_ray,
    min_depth=0.1,
    max_depth=volume_extent_world,
)
raysampler_mc = MonteCarloRaysampler(
    min_x=-1.0,
    max_x=1.0,
    min_y=-1.0,
    max_y=1.0,
    n_rays_per_image=args.n_rays_per_image,
    n_pts_per_ray=args.n_pts_per_ray,
    min_depth=0.1,
    max_depth=volume_extent_world,
)
raymarcher = EmissionAbsorptionRaymarcher()
renderer_grid = ImplicitRenderer(raysampler=raysampler_grid, raymarcher=raymarcher)
renderer_mc = ImplicitRenderer(raysampler=raysampler_mc, raymarcher=raymarcher)


# 3. The neural radiance field: harmonic embedding -> MLP -> density (from position) and colour
# (from position features and the viewing direction).
class NeuralRadianceField(torch.nn.Module):
    def __init__(self, n_harmonic_functions=60, n_hidden_neurons=256):
        super().__init__()
        self.harmonic_embedding = HarmonicEmbedding(n_harmonic_functions, omega_0=0.1, append_input=False)
        embedding_dim = n_harmonic_functions * 2 * 3
        # Softplus rather than ReLU, as the tutorial.
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(embedding_dim, n_hidden_neurons),
            torch.nn.Softplus(beta=10.0),
            torch.nn.Linear(n_hidden_neurons, n_hidden_neurons),
            torch.nn.Softplus(beta=10.0),
        )
        self.color_layer = torch.nn.Sequential(
            torch.nn.Linear(n_hidden_neurons + embedding_dim, n_hidden_neurons),
            torch.nn.Softplus(beta=10.0),
            torch.nn.Linear(n_hidden_neurons, 3),
            torch.nn.Sigmoid(),  # colours in [0, 1]
        )
        self.density_layer = torch.nn.Sequential(
            torch.nn.Linear(n_hidden_neurons, 1),
            torch.nn.Softplus(beta=10.0),  # non-negative raw density
        )
        # Start nearly empty (raw density ~0): the tutorial calls this crucial for convergence.
        self.density_layer[0].bias.data[0] = -1.5

    def _get_densities(self, features):
        raw_densities = self.density_layer(features)
        return 1 - (-raw_densities).exp()  # raw density -> opacity in [0, 1)

    def _get_colors(self, features, rays_directions):
        spatial_size = features.shape[:-1]
        rays_directions_normed = torch.nn.functional.normalize(rays_directions, dim=-1)
        rays_embedding = self.harmonic_embedding(rays_directions_normed)
        # one direction per ray, repeated for every point along it
        rays_embedding_expand = rays_embedding[..., None, :].expand(*spatial_size, rays_embedding.shape[-1])
        return self.color_layer(torch.cat((features, rays_embedding_expand), dim=-1))

    def forward(self, ray_bundle: RayBundle, **kwargs):
        rays_points_world = ray_bundle_to_ray_points(ray_bundle)  # (B, ..., P, 3)
        embeds = self.harmonic_embedding(rays_points_world)
        features = self.mlp(embeds)
        rays_densities = self._get_densities(features)  # (B, ..., P, 1)
        rays_colors = self._get_colors(features, ray_bundle.directions)  # (B, ..., P, 3)
        return rays_densities, rays_colors

    def batched_forward(self, ray_bundle: RayBundle, n_batches: int = 16, **kwargs):
        """``forward`` over ``n_batches`` chunks of rays, to render full images in bounded memory."""
        n_pts_per_ray = ray_bundle.lengths.shape[-1]
        spatial_size = [*ray_bundle.origins.shape[:-1], n_pts_per_ray]
        tot_samples = ray_bundle.origins.shape[:-1].numel()
        batches = torch.chunk(torch.arange(tot_samples), n_batches)
        batch_outputs = [
            self.forward(
                RayBundle(
                    origins=ray_bundle.origins.view(-1, 3)[batch_idx],
                    directions=ray_bundle.directions.view(-1, 3)[batch_idx],
                    lengths=ray_bundle.lengths.view(-1, n_pts_per_ray)[batch_idx],
                    xys=None,
                )
            )
            for batch_idx in batches
        ]
        rays_densities, rays_colors = [
            torch.cat([batch_output[output_i] for batch_output in batch_outputs], dim=0).view(*spatial_size, -1)
            for output_i in (0, 1)
        ]
        return rays_densities, rays_colors


# 4. Helpers: the loss, target colours at the Monte Carlo rays' locations, and the progress figure.
def huber(x, y, scaling=0.1):
    """Smooth L1 (pseudo-Huber) loss, elementwise."""
    diff_sq = (x - y) ** 2
    return ((1 + diff_sq / (scaling**2)).clamp(1e-4).sqrt() - 1) * float(scaling)


def sample_images_at_mc_locs(target_images, sampled_rays_xy):
    """Bilinearly sample (B, H, W, C) images at the NDC locations (B, ..., 2) of Monte Carlo rays."""
    ba = target_images.shape[0]
    dim = target_images.shape[-1]
    spatial_size = sampled_rays_xy.shape[1:-1]
    # NDC x, y point left and up; grid_sample's point right and down: flip both signs.
    images_sampled = torch.nn.functional.grid_sample(
        target_images.permute(0, 3, 1, 2), -sampled_rays_xy.view(ba, -1, 1, 2), align_corners=True
    )
    return images_sampled.permute(0, 2, 3, 1).view(ba, *spatial_size, dim)


def show_full_render(neural_radiance_field, camera, target_image, target_silhouette, loss_history_color, loss_history_sil):
    """Render one full view (in chunks, without gradients) and save it beside its target."""
    with torch.no_grad():
        rendered_image_silhouette, _ = renderer_grid(cameras=camera, volumetric_function=neural_radiance_field.batched_forward)
        rendered_image, rendered_silhouette = rendered_image_silhouette[0].split([3, 1], dim=-1)
    fig, ax = plt.subplots(2, 3, figsize=(15, 10))
    ax = ax.ravel()
    clamp_and_detach = lambda x: x.clamp(0.0, 1.0).cpu().detach().numpy()  # noqa: E731
    ax[0].plot(list(range(len(loss_history_color))), loss_history_color, linewidth=1)
    ax[1].imshow(clamp_and_detach(rendered_image))
    ax[2].imshow(clamp_and_detach(rendered_silhouette[..., 0]))
    ax[3].plot(list(range(len(loss_history_sil))), loss_history_sil, linewidth=1)
    ax[4].imshow(clamp_and_detach(target_image))
    ax[5].imshow(clamp_and_detach(target_silhouette))
    titles = ("loss color", "rendered image", "rendered silhouette", "loss silhouette", "target image", "target silhouette")
    for ax_, title_ in zip(ax, titles):
        if not title_.startswith("loss"):
            ax_.grid("off")
            ax_.axis("off")
        ax_.set_title(title_)
    fig.savefig(args.out / "progress.png")
    plt.close(fig)
    return fig


# 5. Fit the radiance field.
renderer_grid = renderer_grid.to(device)
renderer_mc = renderer_mc.to(device)
target_cameras = target_cameras.to(device)
target_images = target_images.to(device)
target_silhouettes = target_silhouettes.to(device)
torch.manual_seed(args.seed)

neural_radiance_field = NeuralRadianceField(args.n_harmonic_functions, args.n_hidden_neurons).to(device)
lr = args.lr
optimizer = torch.optim.Adam(neural_radiance_field.parameters(), lr=lr)
batch_size, n_iter = args.batch_size, args.n_iter
loss_history_color, loss_history_sil = [], []
start = time.perf_counter()
for iteration in tqdm(range(n_iter), desc="fit", mininterval=5.0):
    if iteration == round(n_iter * 0.75):
        print("Decreasing LR 10-fold ...")
        optimizer = torch.optim.Adam(neural_radiance_field.parameters(), lr=lr * 0.1)
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
    rendered_images_silhouettes, sampled_rays = renderer_mc(cameras=batch_cameras, volumetric_function=neural_radiance_field)
    rendered_images, rendered_silhouettes = rendered_images_silhouettes.split([3, 1], dim=-1)
    silhouettes_at_rays = sample_images_at_mc_locs(target_silhouettes[batch_idx, ..., None], sampled_rays.xys)
    sil_err = huber(rendered_silhouettes, silhouettes_at_rays).abs().mean()
    colors_at_rays = sample_images_at_mc_locs(target_images[batch_idx], sampled_rays.xys)
    color_err = huber(rendered_images, colors_at_rays).abs().mean()
    loss = color_err + sil_err
    loss_history_color.append(float(color_err))
    loss_history_sil.append(float(sil_err))
    if iteration % 10 == 0:
        print(f"Iteration {iteration:05d}: loss color = {float(color_err):1.2e} loss silhouette = {float(sil_err):1.2e}")
    loss.backward()
    optimizer.step()
    if iteration % args.show_every == 0 or iteration == n_iter - 1:
        show_idx = torch.randperm(len(target_cameras))[:1]
        show_full_render(
            neural_radiance_field,
            FoVPerspectiveCameras(
                R=target_cameras.R[show_idx],
                T=target_cameras.T[show_idx],
                znear=target_cameras.znear[show_idx],
                zfar=target_cameras.zfar[show_idx],
                aspect_ratio=target_cameras.aspect_ratio[show_idx],
                fov=target_cameras.fov[show_idx],
                device=device,
            ),
            target_images[show_idx][0],
            target_silhouettes[show_idx][0],
            loss_history_color,
            loss_history_sil,
        )
seconds_per_iteration = (time.perf_counter() - start) / max(n_iter, 1)


# 6. A turntable of the fitted field.
def generate_rotating_nerf(neural_radiance_field, n_frames=50):
    logRs = torch.zeros(n_frames, 3, device=device)
    logRs[:, 1] = torch.linspace(-3.14, 3.14, n_frames, device=device)
    Rs = so3_exp_map(logRs)
    Ts = torch.zeros(n_frames, 3, device=device)
    Ts[:, 2] = 2.7
    frames = []
    print("Rendering rotating NeRF ...")
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
        frames.append(renderer_grid(cameras=camera, volumetric_function=neural_radiance_field.batched_forward)[0][..., :3])
    return torch.cat(frames)


with torch.no_grad():
    rotating_nerf_frames = generate_rotating_nerf(neural_radiance_field, n_frames=args.n_frames)
cols = min(5, args.n_frames)
image_grid(rotating_nerf_frames.clamp(0.0, 1.0).cpu().numpy(), rows=-(-args.n_frames // cols), cols=cols, rgb=True, fill=True)
plt.savefig(args.out / "rotating_nerf.png")
history = {"color": loss_history_color, "silhouette": loss_history_sil, "seconds_per_iteration": seconds_per_iteration}
(args.out / "losses.json").write_text(json.dumps(history))
print(f"final loss color {loss_history_color[-1]:.3e}, silhouette {loss_history_sil[-1]:.3e}; "
      f"{seconds_per_iteration:.2f} s/iteration; wrote {args.out}")
