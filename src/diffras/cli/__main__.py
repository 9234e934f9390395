"""``python -m diffras.cli``: the ``diffras`` command."""
import sys

from . import main

sys.exit(main())
