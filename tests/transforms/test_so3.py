"""so3_* against independent references: scipy's rotations, the trace formula, finite differences."""
import math

import pytest
import torch
from scipy.spatial.transform import Rotation

from diffras.transforms import (
    Rotate,
    RotateAxisAngle,
    Scale,
    Transform3d,
    Translate,
    acos_linear_extrapolation,
    hat,
    hat_inv,
    so3_exp_map,
    so3_log_map,
    so3_relative_angle,
    so3_rotation_angle,
)


def _log_rots(n, seed=0, max_angle=3.0):
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=1)
    return axis * torch.rand(n, 1, generator=g, dtype=torch.float64) * max_angle


def test_exp_map_matches_scipy_rotvec():
    log_rot = _log_rots(64)
    ref = torch.from_numpy(Rotation.from_rotvec(log_rot.numpy()).as_matrix())
    torch.testing.assert_close(so3_exp_map(log_rot), ref, rtol=0, atol=1e-12)


def test_log_map_inverts_exp_map():
    log_rot = _log_rots(64, seed=1)
    torch.testing.assert_close(so3_log_map(so3_exp_map(log_rot)), log_rot, rtol=0, atol=1e-9)


def test_exp_map_is_smooth_at_zero():
    log_rot = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(so3_exp_map, (log_rot,))
    torch.testing.assert_close(so3_exp_map(log_rot.detach()), torch.eye(3, dtype=torch.float64).expand(2, 3, 3))


def test_relative_angle_is_the_geodesic_angle():
    a, b = _log_rots(32, seed=2), _log_rots(32, seed=3)
    R1, R2 = so3_exp_map(a), so3_exp_map(b)
    ref = (Rotation.from_rotvec(a.numpy()) * Rotation.from_rotvec(b.numpy()).inv()).magnitude()
    torch.testing.assert_close(so3_relative_angle(R1, R2), torch.from_numpy(ref), rtol=0, atol=1e-7)
    cos = so3_relative_angle(R1, R2, cos_angle=True)
    torch.testing.assert_close(cos, torch.cos(torch.from_numpy(ref)), rtol=0, atol=1e-12)


def test_rotation_angle_gradient_is_finite_at_identity_and_pi():
    R = torch.stack([torch.eye(3, dtype=torch.float64), so3_exp_map(torch.tensor([[math.pi, 0, 0]], dtype=torch.float64))[0]])
    R.requires_grad_()
    so3_rotation_angle(R).sum().backward()
    assert torch.isfinite(R.grad).all()
    assert torch.autograd.gradcheck(lambda r: so3_rotation_angle(r), (so3_exp_map(_log_rots(4, seed=4)).requires_grad_(),))


def test_acos_linear_extrapolation_is_acos_inside_and_tangent_outside():
    x = torch.linspace(-0.99, 0.99, 101, dtype=torch.float64)
    torch.testing.assert_close(acos_linear_extrapolation(x, (-0.995, 0.995)), torch.acos(x))
    hi = 0.9
    y = acos_linear_extrapolation(torch.tensor([1.2], dtype=torch.float64), (-hi, hi))
    expected = math.acos(hi) - (1.2 - hi) / math.sqrt(1 - hi * hi)
    assert abs(float(y) - expected) < 1e-12
    with pytest.raises(ValueError, match="bounds"):
        acos_linear_extrapolation(x, (0.5, 1.0))


def test_hat_is_the_cross_product_and_hat_inv_inverts_it():
    v = torch.randn(5, 3, dtype=torch.float64)
    w = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close((hat(v) @ w[..., None])[..., 0], torch.cross(v, w, dim=1))
    torch.testing.assert_close(hat_inv(hat(v)), v)
    with pytest.raises(ValueError, match="skew"):
        hat_inv(torch.eye(3, dtype=torch.float64)[None])


def test_bad_shapes_name_the_argument():
    with pytest.raises(ValueError, match="log_rot"):
        so3_exp_map(torch.zeros(3))
    with pytest.raises(ValueError, match="R2"):
        so3_relative_angle(torch.eye(3)[None], torch.eye(3)[None].expand(2, 3, 3))
    with pytest.raises(ValueError, match="trace"):
        so3_rotation_angle(5 * torch.eye(3)[None])


def test_transform_classes_are_transform3d_subclasses():
    R = so3_exp_map(_log_rots(2, seed=5)).float()
    for t, cls in ((Rotate(R), Rotate), (Translate(1.0, 2.0, 3.0), Translate), (Scale(2.0), Scale),
                   (RotateAxisAngle(30.0, "Y"), Rotate)):
        assert isinstance(t, cls) and isinstance(t, Transform3d)
        p = torch.randn(4, 3)
        torch.testing.assert_close(t.inverse().transform_points(t.transform_points(p[None].expand(len(t), 4, 3))),
                                   p[None].expand(len(t), 4, 3), rtol=1e-5, atol=1e-5)
    composed = Rotate(R).compose(Translate(1.0, 0.0, 0.0))
    assert type(composed) is Transform3d
