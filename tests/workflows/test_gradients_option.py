"""``gradients="antialias"`` in the pose and fit workflows (hard renders + analytic silhouette gradients)."""
import dataclasses

import pytest
import torch

from diffras.data import load_cow
from diffras.workflows import FitConfig, PoseConfig, camera_from_eye, fit_mesh, fit_pose, normalize_to_unit_sphere
from diffras.workflows import rotation_error_deg
from diffras.workflows.pose import random_eye, start_eye
from diffras.workflows.scene import render_views


def test_pose_with_antialias_gradients_reduces_error():
    # A nearer start than the soft workflow's test (10-20 degrees), at a small size for speed. The loss history
    # follows the image-blur schedule (blurred early, sharp late), so the losses compared here are the hard
    # silhouettes' at the start and the end.
    cfg = PoseConfig(image_size=64, iters=60, gradients="antialias", start_angle_min=10.0, start_angle_max=20.0)
    mesh = normalize_to_unit_sphere(load_cow())
    gen = torch.Generator().manual_seed(0)
    truth = random_eye(gen, cfg.dist)
    init = start_eye(truth, gen, cfg)
    with torch.no_grad():
        reference = render_views(mesh, camera_from_eye(truth[None], cfg.fov), cfg.image_size)[0]
    start_err = rotation_error_deg(camera_from_eye(init[None], cfg.fov).R, camera_from_eye(truth[None], cfg.fov).R).item()
    result = fit_pose(mesh, reference, init, cfg, true_eye=truth)
    print("antialias pose:", start_err, "->", result.metrics["rotation_error_deg"], "loss", result.history["total"][0],
          "->", result.history["total"][-1])
    def silhouette_mse(eye):
        with torch.no_grad():
            alpha = render_views(mesh, camera_from_eye(eye[None], cfg.fov), cfg.image_size)[0, ..., 3]
        return float(((alpha - reference[..., 3]) ** 2).mean())

    assert silhouette_mse(result.eye) < 0.5 * silhouette_mse(init)
    assert result.metrics["rotation_error_deg"] < 0.5 * start_err


def test_fit_with_antialias_gradients_runs_and_lowers_loss():
    cfg = dataclasses.replace(FitConfig(), iters=6, views=4, views_per_iter=2, image_size=32, level=1,
                              gradients="antialias")
    result = fit_mesh(load_cow(), cfg, seed=0)
    assert result.history["silhouette"][-1] < result.history["silhouette"][0]


def test_bad_gradients_value():
    with pytest.raises(ValueError, match="gradients"):
        fit_pose(normalize_to_unit_sphere(load_cow()), torch.zeros(8, 8), torch.tensor([0.0, 0.0, 2.7]),
                 PoseConfig(image_size=8, iters=1, gradients="blur"))
