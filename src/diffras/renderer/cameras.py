"""PyTorch3D's ``pytorch3d.renderer.cameras`` path: aliases of :mod:`diffras.cameras`."""
from ..cameras import *  # noqa: F401,F403
from ..cameras import __all__  # noqa: F401
