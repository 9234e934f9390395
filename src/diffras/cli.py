"""The ``diffras`` command line."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="diffras", description="diffras: differentiable rendering on the CPU.")
    parser.parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
