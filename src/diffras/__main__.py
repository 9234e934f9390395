"""``python -m diffras ...`` runs the command line (this is what ``torchrun -m diffras`` starts on every rank)."""
import sys

from .cli import main

sys.exit(main())
