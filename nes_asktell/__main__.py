"""Command line: ``python -m nes_asktell demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._demo import run_demo


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m nes_asktell", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="replay the 2017 seed run, then solve it far better")
    demo.add_argument("--plot", default="nes_demo.png", help="PNG file for the convergence plot")
    demo.add_argument("--no-plot", action="store_true", help="do not write the plot")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo(None if args.no_plot else args.plot)
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
