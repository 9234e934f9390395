"""Rasterizer contexts (``nvdiffrast.torch.RasterizeCudaContext`` / ``RasterizeGLContext``).

nvdiffrast needs a context object holding GPU state; diffras holds none, so a context here only records
the device it was asked for (informational: work runs where the input tensors live) and which
``DepthPeeler`` is active on it (nvdiffrast allows one at a time per context). The three names are one
class, so code written for either nvdiffrast backend runs unchanged.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

__all__ = ["RasterizeCPUContext", "RasterizeCudaContext", "RasterizeGLContext", "check_context"]


class RasterizeCPUContext:
    """A rasterizer context: accepted wherever nvdiffrast takes ``glctx``; holds nothing device-specific.

    Args:
        device: accepted for compatibility (``torch.device``, str or int); recorded, never required.
        output_db: accepted for compatibility with ``RasterizeGLContext`` (``rast_db`` is always computed).
    """

    def __init__(self, device: Any = None, output_db: bool = True, **_ignored: Any):
        if isinstance(device, int):
            device = torch.device("cuda", device)
        self.device: Optional[torch.device] = None if device is None else torch.device(device)
        self.output_db = bool(output_db)
        self.active_depth_peeler = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.device})"


# Same object under nvdiffrast's two names: nothing here is CUDA- or OpenGL-specific.
RasterizeCudaContext = RasterizeCPUContext
RasterizeGLContext = RasterizeCPUContext


def check_context(glctx: Any) -> None:
    if not isinstance(glctx, RasterizeCPUContext):
        raise TypeError(f"glctx: expected a RasterizeCudaContext/RasterizeGLContext/RasterizeCPUContext, "
                        f"got {type(glctx).__name__}")
    if glctx.active_depth_peeler is not None:
        raise RuntimeError("glctx: a DepthPeeler is active on this context; use another context inside it")
