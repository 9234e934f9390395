"""Small random Gaussian scenes and OpenCV cameras for the splatting tests."""
import math

import torch


def look_at_viewmat(eye, target=(0.0, 0.0, 0.0), up=(0.0, -1.0, 0.0), dtype=torch.float64):
    """OpenCV world-to-camera (4, 4): +Z towards ``target``, +Y down (``up`` is the world's image-up)."""
    eye, target, up = (torch.tensor(v, dtype=dtype) for v in (eye, target, up))
    z = target - eye
    z = z / z.norm()
    x = torch.linalg.cross(-up, z)  # right = down x forward
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    R = torch.stack([x, y, z])  # rows: camera axes in world coordinates
    V = torch.eye(4, dtype=dtype)
    V[:3, :3] = R
    V[:3, 3] = -R @ eye
    return V


def intrinsics(width, height, fov_deg=50.0, dtype=torch.float64, shift=(0.0, 0.0)):
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    return torch.tensor([[f, 0, width / 2 + shift[0]], [0, f, height / 2 + shift[1]], [0, 0, 1]], dtype=dtype)


def random_scene(n, n_cameras=2, width=37, height=29, *, dtype=torch.float64, seed=0, D=3, sh_degree=None,
                 scale=(0.08, 0.3), opacity=(0.3, 0.95)):
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, lo=0.0, hi=1.0):
        return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=dtype)

    means = rand(n, 3, lo=-0.8, hi=0.8)
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = rand(n, 3, lo=scale[0], hi=scale[1])
    opacities = rand(n, lo=opacity[0], hi=opacity[1])
    colors = rand(n, D) if sh_degree is None else 0.5 * torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g, dtype=dtype)
    eyes = [(0.3, -0.4, -3.0), (2.5, -0.5, -1.8), (-2.0, 1.0, -2.2)][:n_cameras]
    viewmats = torch.stack([look_at_viewmat(e, dtype=dtype) for e in eyes])
    Ks = torch.stack([intrinsics(width, height, dtype=dtype, shift=(1.3 * i, -0.7 * i)) for i in range(n_cameras)])
    return dict(means=means, quats=quats, scales=scales, opacities=opacities, colors=colors, viewmats=viewmats,
                Ks=Ks, width=width, height=height)
