"""Short camera-pose runs: the rotation error shrinks from a start 30+ degrees away."""
import torch

from diffras.data import load_cow
from diffras.workflows import PoseConfig, camera_from_eye, fit_pose, normalize_to_unit_sphere, rotation_error_deg
from diffras.workflows.pose import random_eye, start_eye
from diffras.workflows.scene import render_views


def test_rotation_error_of_known_rotations():
    from diffras.transforms import axis_angle_to_matrix

    a = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 0.0]]))
    b = axis_angle_to_matrix(torch.tensor([[0.0, 0.3, 0.0]]))
    assert abs(rotation_error_deg(a, b).item() - torch.rad2deg(torch.tensor(0.3)).item()) < 1e-3


def test_start_eye_is_in_the_requested_range():
    cfg = PoseConfig()
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        truth = random_eye(gen, cfg.dist)
        start = start_eye(truth, gen, cfg)
        err = rotation_error_deg(camera_from_eye(start[None], 60.0).R, camera_from_eye(truth[None], 60.0).R).item()
        assert err >= cfg.start_angle_min
        assert abs(start.norm() - truth.norm()) < 1e-4


def test_short_pose_run_reduces_rotation_error():
    cfg = PoseConfig(image_size=64, iters=80)
    mesh = normalize_to_unit_sphere(load_cow())
    gen = torch.Generator().manual_seed(0)
    truth = random_eye(gen, cfg.dist)
    init = start_eye(truth, gen, cfg)
    with torch.no_grad():
        reference = render_views(mesh, camera_from_eye(truth[None], cfg.fov), cfg.image_size)[0]
    start_err = rotation_error_deg(camera_from_eye(init[None], cfg.fov).R, camera_from_eye(truth[None], cfg.fov).R).item()
    result = fit_pose(mesh, reference, init, cfg, true_eye=truth)
    assert result.history["total"][-1] < 0.5 * result.history["total"][0]
    assert result.metrics["rotation_error_deg"] < 0.5 * start_err
