"""``python -m diffras``: the ``diffras`` command (see :mod:`diffras.cli`)."""
import sys

from .cli import main

sys.exit(main())
