"""PyTorch3D's deprecated camera names build the current classes with the same parameters."""
import pytest
import torch

from diffras.cameras import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OpenGLOrthographicCameras,
    OpenGLPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    SfMOrthographicCameras,
    SfMPerspectiveCameras,
    look_at_view_transform,
)

R, T = look_at_view_transform(2.7, 10.0, 30.0)
PTS = torch.randn(1, 20, 3) * 0.5


@pytest.mark.parametrize("old, new, kw_old, kw_new", [
    (OpenGLPerspectiveCameras, FoVPerspectiveCameras, dict(fov=40.0, znear=0.5), dict(fov=40.0, znear=0.5)),
    (OpenGLOrthographicCameras, FoVOrthographicCameras, dict(top=2.0, bottom=-1.0, left=-3.0, right=1.0),
     dict(max_y=2.0, min_y=-1.0, min_x=-3.0, max_x=1.0)),
    (SfMPerspectiveCameras, PerspectiveCameras, dict(focal_length=2.0, principal_point=((0.1, -0.2),)),
     dict(focal_length=2.0, principal_point=((0.1, -0.2),))),
    (SfMOrthographicCameras, OrthographicCameras, dict(focal_length=2.0), dict(focal_length=2.0)),
])
def test_deprecated_alias_equals_current_class(old, new, kw_old, kw_new):
    with pytest.warns(PendingDeprecationWarning, match=new.__name__):
        cam = old(R=R, T=T, **kw_old)
    assert type(cam) is new
    torch.testing.assert_close(cam.transform_points(PTS), new(R=R, T=T, **kw_new).transform_points(PTS))
