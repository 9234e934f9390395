"""Recover where a camera stood from one image of a known mesh.

    python examples/camera_pose.py --steps 200

The camera looks at the origin from an unknown position; we optimise that position so that the rendered
silhouette matches the reference, with a blur that shrinks over time (coarse to fine).
"""
import argparse
import torch

import diffras

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=200)
parser.add_argument("--size", type=int, default=96)
args = parser.parse_args()
torch.manual_seed(0)

mesh = diffras.ops.normalize_to_unit_sphere(diffras.data.load_cow())


def camera_at(eye):
    """A camera at `eye` (3,) looking at the origin: differentiable in `eye`."""
    R = diffras.cameras.look_at_rotation(eye[None])
    T = -(R.transpose(1, 2) @ eye[None, :, None])[:, :, 0]
    return diffras.FoVPerspectiveCameras(R=R, T=T)


def silhouette(eye, sigma):
    settings = diffras.RasterSettings(image_size=args.size, faces_per_pixel=20,
                                      blur_radius=diffras.shading.soft_blur_radius(sigma))
    cams = camera_at(eye)
    fragments = diffras.MeshRasterizer(cams, settings)(mesh)
    return diffras.SoftSilhouetteShader(diffras.BlendParams(sigma=sigma))(fragments, mesh)[0, ..., 3]


true_eye = torch.tensor([1.5, 1.0, 2.0])
with torch.no_grad():
    reference = silhouette(true_eye, 1e-4)

eye = torch.tensor([2.5, 0.3, 0.5], requires_grad=True)  # a start well away from the truth
optimizer = torch.optim.Adam([eye], lr=0.05)
for step in range(args.steps):
    sigma = 1e-2 * (1e-5 / 1e-2) ** (step / max(args.steps - 1, 1))  # coarse to fine
    loss = ((silhouette(eye, sigma) - reference) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 25 == 0 or step == args.steps - 1:
        print(f"step {step:4d}  loss {loss.item():.5f}  eye {[round(v, 3) for v in eye.tolist()]}")

error = diffras.workflows.rotation_error_deg(camera_at(eye.detach()).R, camera_at(true_eye).R)
print(f"rotation error: {error.item():.2f} degrees")
