"""Local stand-ins for the helpers PyTorch3D's tutorials download (``docs/tutorials/utils``):
``image_grid`` and ``generate_cow_renders``, written on diffras, so that the tutorials' own
``from utils import image_grid`` / ``from utils.generate_cow_renders import ...`` lines work."""
from .generate_cow_renders import generate_cow_renders
from .plot_image_grid import image_grid

__all__ = ["generate_cow_renders", "image_grid"]
