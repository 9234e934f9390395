"""Short texture runs: PSNR on held-out views rises well above the grey start."""
import json

import torch

from diffras.data import load_cow
from diffras.workflows import TextureConfig, fit_texture, load_views, normalize_to_unit_sphere, save_views, sphere_cameras
from diffras.workflows.scene import render_views
from diffras.workflows.texture import foreground_psnr


def test_foreground_psnr_ignores_shared_background():
    a = torch.zeros(1, 4, 4, 4)
    b = torch.zeros(1, 4, 4, 4)
    a[0, :2, :, 3] = b[0, :2, :, 3] = 1.0
    b[0, :2, :, :3] = 0.1  # error 0.1 on the 8 foreground pixels, none elsewhere
    assert abs(foreground_psnr(a, b).item() - 20.0) < 1e-4


def test_short_texture_fit_improves_heldout_psnr(tmp_path):
    cfg = TextureConfig(image_size=48, texture_size=32, iters=40, views_per_iter=4, lr=0.1)
    cow = normalize_to_unit_sphere(load_cow())
    cams = sphere_cameras(8)
    ho = sphere_cameras(4, phase=1.0)
    with torch.no_grad():
        images = render_views(cow, cams, cfg.image_size)
        ho_images = render_views(cow, ho, cfg.image_size)
    # Round trip through the --views folder format on the way.
    save_views(tmp_path / "views", images, cams, 60.0)
    images2, cams2 = load_views(tmp_path / "views")
    assert torch.allclose(images2, images, atol=1 / 255)
    assert torch.allclose(cams2.R, cams.R) and torch.allclose(cams2.T, cams.T)
    spec = json.loads((tmp_path / "views" / "cameras.json").read_text())
    assert len(spec["views"]) == 8

    zero = fit_texture(cow, images2, cams2, TextureConfig(**{**cfg.__dict__, "iters": 1, "lr": 1e-9}), holdout=(ho_images, ho))
    result = fit_texture(cow, images2, cams2, cfg, holdout=(ho_images, ho))
    assert result.metrics["heldout_psnr_foreground_db"] > zero.metrics["heldout_psnr_foreground_db"] + 3.0
    assert result.history["rgb"][-1] < 0.5 * result.history["rgb"][0]
