"""Run by benchmarks/volumes.py with a PyTorch3D interpreter: PyTorch3D's own VolumeRenderer on the same scene as
``volume_render_rows`` (same cameras, grid, sampler, marcher, loss). Prints ``fwd_ms fwdbwd_ms``.

    /path/to/pytorch3d/python benchmarks/_p3d_volume_worker.py VIEWS SIZE VOXELS POINTS RUNS
"""
import sys
from pathlib import Path

import torch
from pytorch3d.renderer import (EmissionAbsorptionRaymarcher, FoVPerspectiveCameras, NDCMultinomialRaysampler,
                                VolumeRenderer, look_at_view_transform)
from pytorch3d.structures import Volumes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import time_fwd_bwd  # noqa: E402

views, size, voxels, points, runs = (int(a) for a in sys.argv[1:6])
torch.manual_seed(0)
R, T = look_at_view_transform(dist=2.7, elev=0.0, azim=torch.linspace(0.0, 360.0, views + 1)[:-1])
cams = FoVPerspectiveCameras(R=R, T=T)
log_d = torch.nn.Parameter(torch.randn(1, voxels, voxels, voxels) - 2.0)
log_c = torch.nn.Parameter(torch.zeros(3, voxels, voxels, voxels))
renderer = VolumeRenderer(NDCMultinomialRaysampler(image_width=size, image_height=size, n_pts_per_ray=points,
                                                   min_depth=0.1, max_depth=3.0), EmissionAbsorptionRaymarcher())


def fwd():
    vol = Volumes(torch.sigmoid(log_d)[None].expand(views, -1, -1, -1, -1),
                  torch.sigmoid(log_c)[None].expand(views, -1, -1, -1, -1), voxel_size=3.0 / voxels)
    return renderer(cameras=cams, volumes=vol)[0]


def fwd_bwd():
    img = fwd()
    img.square().mean().backward()
    return img


r = time_fwd_bwd(fwd, fwd_bwd, runs, 0)
print(f"{r['fwd_ms']:.3f} {r['fwdbwd_ms']:.3f}")
