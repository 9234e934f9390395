"""Target views of the bundled Spot cow for the volume tutorials, rendered with diffras's mesh
renderer the way PyTorch3D's ``generate_cow_renders`` does (same cameras, light, blending)."""
import math

import torch

import diffras


def generate_cow_renders(num_views: int = 40, azimuth_range: float = 180, image_size: int = 128, device=None):
    """Render the cow, centred and scaled into the unit cube, from ``num_views`` cameras at distance
    2.7 on the equator with azimuths evenly spread over ``180 +- azimuth_range`` degrees.

    Returns:
        cameras: ``FoVPerspectiveCameras`` (num_views) of the renders.
        images: (num_views, S, S, 3) soft-Phong renders on a black background, S = ``image_size``.
        silhouettes: (num_views, S, S) binary silhouettes.
    """
    mesh = diffras.data.load_cow(device=device)
    verts = mesh.verts_packed()
    center = verts.mean(0)
    scale = (verts - center).abs().max()
    # centre on the vertex mean and fit the largest coordinate into [-1, 1], as the tutorial
    mesh = mesh.offset_verts(-center.expand_as(verts)).scale_verts(1.0 / float(scale))

    elev = torch.zeros(num_views)
    azim = torch.linspace(-azimuth_range, azimuth_range, num_views) + 180.0
    R, T = diffras.look_at_view_transform(dist=2.7, elev=elev, azim=azim)
    cameras = diffras.FoVPerspectiveCameras(R=R, T=T, device=device)
    lights = diffras.PointLights(location=[[0.0, 0.0, -3.0]], device=device)  # in front of the cow (-z)

    renderer = diffras.MeshRenderer(
        diffras.MeshRasterizer(cameras, diffras.RasterSettings(image_size=image_size, blur_radius=0.0, faces_per_pixel=1)),
        diffras.SoftPhongShader(cameras=cameras, lights=lights,
                                blend_params=diffras.BlendParams(sigma=1e-4, gamma=1e-4, background_color=(0.0, 0.0, 0.0))),
    )
    meshes = mesh.extend(num_views)
    with torch.no_grad():
        images = renderer(meshes, cameras=cameras, lights=lights)
        sigma = 1e-4
        silhouette_renderer = diffras.MeshRenderer(
            diffras.MeshRasterizer(cameras, diffras.RasterSettings(
                image_size=image_size, blur_radius=math.log(1.0 / 1e-4 - 1.0) * sigma, faces_per_pixel=50)),
            diffras.SoftSilhouetteShader(),
        )
        silhouettes = silhouette_renderer(meshes, cameras=cameras)
    return cameras, images[..., :3], (silhouettes[..., 3] > 1e-4).float()
