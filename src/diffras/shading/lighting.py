"""Lights: ambient, directional, point and spot lights with PyTorch3D's Phong reflection terms.

All positions and directions are in **world space** (docs/conventions.md: +X left, +Y up, +Z into the
screen); shaders evaluate lights at world-space points with world-space normals.

Reflection model (PyTorch3D's, term by term; ``normalize(x) = x / max(|x|, 1e-6)``):

- ``diffuse = diffuse_color * max(0, n . l)`` with ``n = normalize(normal)`` and ``l = normalize(direction)``,
  the direction *from the surface towards the light*.
- ``specular = specular_color * (max(0, v . r) * [n . l > 0]) ** shininess`` with
  ``v = normalize(camera_position - point)`` and ``r = -l + 2 (n . l) n`` (the mirror of ``l``).
- ``ambient = ambient_color`` (multiplied by the material's ambient colour by the shader).

Batches: every light property has a leading batch of 1 or N; N must equal the batch of the points being
shaded (a batch of 1 broadcasts). Every property may be a tensor that requires grad.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F

from ._batched import BatchedProperties, batch_view

__all__ = ["AmbientLights", "DirectionalLights", "PointLights", "SpotLights", "diffuse", "specular"]

_EPS = 1e-6  # PyTorch3D's normalisation epsilon


def _as_field(value: torch.Tensor, like: torch.Tensor, name: str, *, channels: bool = True) -> torch.Tensor:
    # A property is either per batch element ((M, C) / (M,)) or already per point (like's leading shape).
    lead = like.shape[:-1]
    if channels:
        per_point = value.dim() == like.dim() and value.shape[:-1] == lead
    else:
        per_point = value.shape == lead
    if per_point:
        return value.to(device=like.device, dtype=like.dtype)
    return batch_view(value, like, name, channels=channels)


def diffuse(normals: torch.Tensor, color: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Lambertian term ``color * max(0, normalize(normals) . normalize(direction))``.

    Args:
        normals: (B, *, 3) normals (renormalised here: interpolated normals are not unit).
        color: (M, C) with M in {1, B}, or (B, *, C).
        direction: towards the light, (M, 3) or (B, *, 3).

    Returns:
        (B, *, C).
    """
    color = _as_field(color, normals, "color")
    direction = _as_field(direction, normals, "direction")
    n = F.normalize(normals, p=2, dim=-1, eps=_EPS)
    d = F.normalize(direction, p=2, dim=-1, eps=_EPS)
    angle = F.relu((n * d).sum(dim=-1))
    return color * angle[..., None]


def specular(
    points: torch.Tensor,
    normals: torch.Tensor,
    direction: torch.Tensor,
    color: torch.Tensor,
    camera_position: torch.Tensor,
    shininess: torch.Tensor,
) -> torch.Tensor:
    """Phong specular term ``color * (max(0, v . r) * [n . l > 0]) ** shininess`` (see the module doc).

    Args:
        points: (B, *, 3) world-space points.
        normals: (B, *, 3), same shape as ``points``.
        direction: towards the light, (M, 3) or (B, *, 3).
        color: (M, C) or (B, *, C).
        camera_position: (M, 3) or (B, *, 3).
        shininess: (M,) or (B, *).

    Returns:
        (B, *, C).
    """
    if points.shape != normals.shape:
        raise ValueError(
            f"normals: expected the shape of points {tuple(points.shape)}, got {tuple(normals.shape)}"
        )
    direction = _as_field(direction, points, "direction")
    color = _as_field(color, points, "color")
    camera_position = _as_field(camera_position, points, "camera_position")
    shininess = _as_field(shininess, points, "shininess", channels=False)
    n = F.normalize(normals, p=2, dim=-1, eps=_EPS)
    l = F.normalize(direction, p=2, dim=-1, eps=_EPS)
    cos_angle = (n * l).sum(dim=-1)
    # Light arriving from behind the surface gives no highlight.
    lit = (cos_angle > 0).to(points.dtype)
    view = F.normalize(camera_position - points, p=2, dim=-1, eps=_EPS)
    reflect = -l + 2 * (cos_angle[..., None] * n)
    alpha = F.relu((view * reflect).sum(dim=-1)) * lit
    return color * torch.pow(alpha, shininess)[..., None]


class _Lights(BatchedProperties):
    """Common interface: ``ambient_color``, ``diffuse(normals, points)``, ``specular(normals, points,
    camera_position, shininess)``; call sites need not know the light type."""

    def _direction(self, points: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _attenuation(self, points: torch.Tensor) -> Optional[torch.Tensor]:
        return None

    def diffuse(self, normals: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """(B, *, 3) normals and points -> (B, *, C) diffuse light colour."""
        out = diffuse(normals, self.diffuse_color, self._direction(points))
        att = self._attenuation(points)
        return out if att is None else out * att[..., None]

    def specular(self, normals: torch.Tensor, points: torch.Tensor, camera_position: torch.Tensor,
                 shininess: torch.Tensor) -> torch.Tensor:
        """(B, *, 3) normals and points, camera_position (M, 3), shininess (M,) -> (B, *, C)."""
        out = specular(points, normals, self._direction(points), self.specular_color, camera_position, shininess)
        att = self._attenuation(points)
        return out if att is None else out * att[..., None]

    def diffuse_specular(self, normals: torch.Tensor, points: torch.Tensor, camera_position: torch.Tensor,
                         shininess: torch.Tensor):
        """``(diffuse(normals, points), specular(normals, points, camera_position, shininess))`` with the
        normalised normal and light direction computed once (the shaders' hot path); same values."""
        if points.shape != normals.shape:
            raise ValueError(
                f"normals: expected the shape of points {tuple(points.shape)}, got {tuple(normals.shape)}"
            )
        n = F.normalize(normals, p=2, dim=-1, eps=_EPS)
        l = F.normalize(_as_field(self._direction(points), points, "direction"), p=2, dim=-1, eps=_EPS)
        cos_angle = (n * l).sum(dim=-1)
        dif = _as_field(self.diffuse_color, points, "diffuse_color") * F.relu(cos_angle)[..., None]
        lit = (cos_angle > 0).to(points.dtype)
        cam = _as_field(camera_position, points, "camera_position")
        view = F.normalize(cam - points, p=2, dim=-1, eps=_EPS)
        reflect = -l + 2 * (cos_angle[..., None] * n)
        alpha = F.relu((view * reflect).sum(dim=-1)) * lit
        shin = _as_field(shininess, points, "shininess", channels=False)
        spec = _as_field(self.specular_color, points, "specular_color") * torch.pow(alpha, shin)[..., None]
        att = self._attenuation(points)
        if att is not None:
            dif, spec = dif * att[..., None], spec * att[..., None]
        return dif, spec


class DirectionalLights(_Lights):
    """Light from a direction (at infinity).

    Args:
        ambient_color, diffuse_color, specular_color: (N, 3) or a 3-vector (batch 1).
        direction: (N, 3) or a 3-vector: world-space direction *towards* the light (not normalised needed).
        device, dtype: for inputs given as numbers; tensors keep theirs (all must share one device).

    Defaults are PyTorch3D's: ambient 0.5, diffuse 0.3, specular 0.2 grey, direction (0, 1, 0).
    """

    _PROPS = {"ambient_color": "color", "diffuse_color": "color", "specular_color": "color", "direction": "vec3"}

    def __init__(
        self,
        ambient_color: Any = ((0.5, 0.5, 0.5),),
        diffuse_color: Any = ((0.3, 0.3, 0.3),),
        specular_color: Any = ((0.2, 0.2, 0.2),),
        direction: Any = ((0.0, 1.0, 0.0),),
        *,
        device: Any = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(ambient_color=ambient_color, diffuse_color=diffuse_color,
                         specular_color=specular_color, direction=direction, device=device, dtype=dtype)
        self._validate()

    def _validate(self) -> None:
        _check_rgb(self)

    def _direction(self, points: torch.Tensor) -> torch.Tensor:
        return self.direction


class PointLights(_Lights):
    """Light at a world-space point; the light direction varies per shaded point (no distance falloff,
    as PyTorch3D).

    Args:
        ambient_color, diffuse_color, specular_color: (N, 3) or a 3-vector (batch 1).
        location: (N, 3) or a 3-vector, world space.
        device, dtype: for inputs given as numbers; tensors keep theirs.

    Defaults are PyTorch3D's: ambient 0.5, diffuse 0.3, specular 0.2 grey, location (0, 1, 0).
    """

    _PROPS = {"ambient_color": "color", "diffuse_color": "color", "specular_color": "color", "location": "vec3"}

    def __init__(
        self,
        ambient_color: Any = ((0.5, 0.5, 0.5),),
        diffuse_color: Any = ((0.3, 0.3, 0.3),),
        specular_color: Any = ((0.2, 0.2, 0.2),),
        location: Any = ((0.0, 1.0, 0.0),),
        *,
        device: Any = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(ambient_color=ambient_color, diffuse_color=diffuse_color,
                         specular_color=specular_color, location=location, device=device, dtype=dtype)
        self._validate()

    def _validate(self) -> None:
        _check_rgb(self)

    def _direction(self, points: torch.Tensor) -> torch.Tensor:
        return batch_view(self.location, points, "location") - points


class SpotLights(_Lights):
    """A point light restricted to a cone (not in PyTorch3D; an extension).

    The diffuse and specular terms of a :class:`PointLights` at ``location`` are multiplied by
    ``smoothstep(cos(outer_angle), cos(inner_angle), s . normalize(point - location))`` with
    ``s = normalize(direction)`` the cone axis: 1 inside the inner cone, 0 outside the outer cone, a smooth
    cubic in between. Ambient light is not attenuated.

    Args:
        ambient_color, diffuse_color, specular_color: (N, 3) or a 3-vector.
        location: (N, 3) world-space position.
        direction: (N, 3) cone axis, pointing *from* the light into the scene. Default (0, -1, 0).
        inner_angle, outer_angle: (N,) or numbers, half-angles of the cones in degrees,
            ``0 <= inner_angle < outer_angle <= 180``. Defaults 20 and 30.
    """

    _PROPS = {"ambient_color": "color", "diffuse_color": "color", "specular_color": "color", "location": "vec3",
              "direction": "vec3", "inner_angle": "scalar", "outer_angle": "scalar"}

    def __init__(
        self,
        ambient_color: Any = ((0.5, 0.5, 0.5),),
        diffuse_color: Any = ((0.3, 0.3, 0.3),),
        specular_color: Any = ((0.2, 0.2, 0.2),),
        location: Any = ((0.0, 1.0, 0.0),),
        direction: Any = ((0.0, -1.0, 0.0),),
        inner_angle: Any = 20.0,
        outer_angle: Any = 30.0,
        *,
        device: Any = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(ambient_color=ambient_color, diffuse_color=diffuse_color, specular_color=specular_color,
                         location=location, direction=direction, inner_angle=inner_angle,
                         outer_angle=outer_angle, device=device, dtype=dtype)
        self._validate()

    def _validate(self) -> None:
        _check_rgb(self)
        inner, outer = self.inner_angle.detach(), self.outer_angle.detach()
        if bool((inner < 0).any()) or bool((outer > 180).any()) or bool((inner >= outer).any()):
            raise ValueError(
                "inner_angle, outer_angle: expected 0 <= inner_angle < outer_angle <= 180 degrees, got "
                f"{inner.tolist()} and {outer.tolist()}"
            )

    def _direction(self, points: torch.Tensor) -> torch.Tensor:
        return batch_view(self.location, points, "location") - points

    def _attenuation(self, points: torch.Tensor) -> torch.Tensor:
        to_point = F.normalize(points - batch_view(self.location, points, "location"), p=2, dim=-1, eps=_EPS)
        axis = F.normalize(batch_view(self.direction, points, "direction"), p=2, dim=-1, eps=_EPS)
        cos_t = (to_point * axis).sum(dim=-1)
        cos_in = torch.cos(torch.deg2rad(batch_view(self.inner_angle, points, "inner_angle", channels=False)))
        cos_out = torch.cos(torch.deg2rad(batch_view(self.outer_angle, points, "outer_angle", channels=False)))
        t = ((cos_t - cos_out) / (cos_in - cos_out)).clamp(0.0, 1.0)
        return t * t * (3 - 2 * t)


class AmbientLights(_Lights):
    """The same light everywhere: only the ambient term (diffuse and specular are zero).

    With the default white ``ambient_color`` and the default :class:`~diffras.shading.Materials`, a
    shader outputs the texture colours unchanged ("unlit"). Any channel count C is allowed.

    Args:
        ambient_color: (N, C) or a C-vector. Default (1, 1, 1).
    """

    _PROPS = {"ambient_color": "color"}

    def __init__(self, ambient_color: Any = ((1.0, 1.0, 1.0),), *, device: Any = None,
                 dtype: Optional[torch.dtype] = None) -> None:
        super().__init__(ambient_color=ambient_color, device=device, dtype=dtype)

    def _zeros(self, points: torch.Tensor) -> torch.Tensor:
        batch_view(self.ambient_color, points, "ambient_color")  # batch check
        return points.new_zeros(points.shape[:-1] + (self.ambient_color.shape[-1],))

    def diffuse(self, normals: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return self._zeros(points)

    def specular(self, normals, points, camera_position, shininess) -> torch.Tensor:
        return self._zeros(points)

    def diffuse_specular(self, normals, points, camera_position, shininess):
        return self._zeros(points), self._zeros(points)


def _check_rgb(obj: BatchedProperties) -> None:
    for n in ("ambient_color", "diffuse_color", "specular_color"):
        t = getattr(obj, n)
        if t.shape[-1] != 3:
            raise ValueError(f"{n}: expected shape (N, 3), got {tuple(t.shape)}")
