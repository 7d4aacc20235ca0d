"""The command line: ``nes-asktell`` (or ``python -m nes_asktell``) with ``demo`` and ``plot``."""

from __future__ import annotations

import argparse
import io
import os
import shutil
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from ._demo import run_demo
from ._history import load_argument, write_whole

DESCRIPTION = "Natural Evolution Strategies with an ask/tell interface."

EPILOG = """\
examples:
  {prog} demo
  {prog} demo --no-plot
  {prog} plot run.csv -o run.png
"""


def program_name() -> str:
    """Return how the user started the command line: ``python -m nes_asktell`` or the script."""
    return "python -m nes_asktell" if Path(sys.argv[0]).name == "__main__.py" else "nes-asktell"


def build_parser(prog: str) -> argparse.ArgumentParser:
    """Return the argument parser of the command line, with `prog` in its usage lines."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(title="commands", dest="command", required=True, metavar="command")
    demo = sub.add_parser(
        "demo",
        help="replay the 2017 seed run, then solve it far better",
        description="Replay the 2017 seed run, check its trace, then solve the same problem "
        "with the default OpenES, XNES and SNES.",
    )
    where = demo.add_mutually_exclusive_group()
    where.add_argument(
        "--plot",
        type=_image_named,
        default=Path("nes_demo.png"),
        help="the image file of the convergence plot, a regular file (its suffix chooses the "
        "format; default: %(default)s, in the current directory)",
    )
    where.add_argument("--no-plot", action="store_true", help="do not write the plot")
    demo.set_defaults(usage=demo)  # its errors show its own usage line
    plot = sub.add_parser(
        "plot",
        help="draw a run saved by History.save (a CSV file) as an image of four panels (PNG "
        "unless -o names another format)",
        description="Draw a run saved by History.save (fitness, step size, mean, condition).",
    )
    plot.add_argument("run", type=_named, metavar="RUN.csv", help="a CSV file of History.save")
    plot.add_argument(
        "-o",
        "--output",
        type=_image_named,
        metavar="RUN.png",
        help="the image to write, under exactly this name; its suffix chooses the format, "
        "PNG when it has none (default: RUN.csv with the suffix .png)",
    )
    plot.set_defaults(usage=plot)  # its errors show its own usage line
    return parser


def _named(text: str) -> Path:
    """Return `text` as a path; an empty one is refused (``Path("")`` is the directory ".")."""
    if not text:
        raise argparse.ArgumentTypeError("must name a file, but got ''")
    return Path(text)


def _image_named(text: str) -> Path:
    """Return `text` as the path of an image to write, as :func:`_named` does.

    A name ending in a separator names a folder, and is refused: ``Path("results/")`` is
    ``Path("results")``, where the image would be written as a file.
    """
    end = next((sep for sep in (os.sep, os.altsep) if sep and text.endswith(sep)), None)
    if end is not None:
        raise argparse.ArgumentTypeError(
            f"must name a file, but got {text!r} (a name ending in {end!r} names a folder)"
        )
    return _named(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code.

    When the reader of the output goes away (``nes-asktell demo | head -1``), the command stops
    quietly with exit code 1 instead of a BrokenPipeError traceback; at Ctrl-C it says
    ``interrupted`` on stderr and exits with 130 (128 + SIGINT, as a shell reports it),
    without a KeyboardInterrupt traceback.
    """
    try:
        try:
            return run_command(argv)
        finally:
            if sys.stdout is not None:  # None when started with stdout closed
                sys.stdout.flush()  # here, where a reader gone away is caught, not at the exit
    except KeyboardInterrupt:
        if sys.stderr is not None:
            print(f"{program_name()}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # what is left goes nowhere, so that the flush at the exit does not fail once more
        # (Python's documentation of signal, "Note on SIGPIPE")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def run_command(argv: Sequence[str] | None) -> int:
    """Parse `argv` and run its command; return the exit code."""
    prog = program_name()
    parser = build_parser(prog)
    args, extra = parser.parse_known_args(argv)
    if extra:  # under the command's own usage line (argparse gives the top-level one)
        args.usage.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "demo":
        plot = None if args.no_plot else Path(args.plot)
        # everything about --plot is refused before the runs, not after them
        if plot is not None and (
            _path_kind(plot, "--plot", args.usage) == "dir"
            or _path_kind(plot.parent, "--plot", args.usage) != "dir"
        ):
            args.usage.error(
                f"argument --plot: cannot write an image to {str(plot)!r} (a directory, or "
                "in a directory that does not exist)"
            )
        if plot is not None and _path_kind(plot, "--plot", args.usage) == "other":
            # /dev/stdout: the image's bytes would be mixed into the demo's own output
            args.usage.error(
                f"argument --plot: cannot write an image to {str(plot)!r} (a device or a pipe)"
            )
        if plot is not None and not _writable(plot):
            args.usage.error(
                f"argument --plot: cannot write an image to {str(plot)!r} (no permission to "
                "write it there)"
            )
        known = _image_formats()
        if plot is not None and known and plot.suffix and plot.suffix[1:].lower() not in known:
            args.usage.error(
                f"argument --plot: matplotlib cannot write {plot.suffix!r} images; use one of "
                f"{', '.join('.' + k for k in sorted(known))} (no suffix: PNG)"
            )
        return run_demo(None if plot is None else str(plot), prog=args.usage.prog)
    if args.command == "plot":
        return plot_run(args.run, args.output, args.usage)
    return 2  # pragma: no cover


def _path_kind(path: Path, argument: str, usage: argparse.ArgumentParser) -> str:
    """Return what `path` is: ``"dir"``, ``"file"``, ``"other"`` or ``"missing"``.

    A path the system refuses to look at (a name too long, a folder without permission, a
    loop of symbolic links) is a usage error of `usage` naming `argument`, not a traceback.
    """
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as exc:
        usage.error(
            f"`{argument}` must be a path this system can look at, but got {str(path)!r} "
            f"({exc.strerror or type(exc).__name__})."
        )
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def _writable(path: Path) -> bool:
    """Return whether a file may be written at `path` (its folder takes a new one, or it may)."""
    if path.exists():
        return os.access(path, os.W_OK)
    return os.access(path.parent, os.W_OK | os.X_OK)


def _image_formats() -> set[str]:
    """Return the file suffixes matplotlib can write here (none without matplotlib).

    ``.pgf`` only where its TeX system is installed (without it the image is drawn, then not
    written).
    """
    try:
        import matplotlib
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return set()
    known = set(FigureCanvasBase.get_supported_filetypes())
    if shutil.which(str(matplotlib.rcParams["pgf.texsystem"])) is None:
        known.discard("pgf")
    return known


def plot_run(run: Path, output: Path | None, usage: argparse.ArgumentParser) -> int:
    """Draw the saved run `run` into `output`, or the image beside `run`; return the exit code.

    What is wrong with ``RUN.csv`` or ``--output`` (missing, a directory, not a saved History,
    a missing directory, an image format matplotlib cannot write) is a usage error of `usage`,
    exit code 2, before anything is read or drawn; a failure to draw or write the image is
    printed, exit code 1.
    """
    run_is = _path_kind(run, "RUN.csv", usage)
    if run_is == "dir":  # '.' or '/' has no name to give a suffix: no traceback
        usage.error(f"`RUN.csv` must be a file, but got the directory {str(run)!r}.")
    if output is None and run_is == "other":  # /dev/stdin: no image beside it
        usage.error(
            f"`--output` must be given when RUN.csv is not a regular file, as {str(run)!r} is."
        )
    out = output if output is not None else run.with_suffix(".png")
    out_is = _path_kind(out, "--output", usage)
    if out_is == "dir":
        usage.error(f"`--output` must be a file, but got the directory {str(out)!r}.")
    if out_is == "other":  # /dev/stdout: the message would be written into the image
        usage.error(
            f"`--output` must be a regular file (or a new one), but got {str(out)!r}, a "
            "device or a pipe."
        )
    if out_is == run_is == "file" and out.samefile(run):  # the default beside X.png
        usage.error(
            f"`--output` must not be RUN.csv itself (the image would replace the run), but "
            f"got {str(out)!r}."
        )
    if _path_kind(out.parent, "--output", usage) != "dir":
        usage.error(f"`--output` must be in a directory that exists, but got {str(out)!r}.")
    known = _image_formats()
    if known and out.suffix and out.suffix[1:].lower() not in known:
        usage.error(
            "`--output` must end in a suffix matplotlib can write "
            f"({', '.join('.' + k for k in sorted(known))}; none: PNG), but got {str(out)!r}."
        )
    try:
        history = load_argument(run, "RUN.csv")
    except OSError as exc:  # missing, unreadable
        usage.error(
            f"`RUN.csv` must be a readable file, but got {str(run)!r} "
            f"({exc.strerror or type(exc).__name__})."
        )
    except ValueError as exc:  # not a saved History: the message names RUN.csv and the line
        usage.error(str(exc))
    try:
        fig = history.plot()
        # drawn whole first, then written whole or not at all: a write that fails (a full
        # disk, Ctrl-C) leaves an image drawn earlier under that name as it was
        image = io.BytesIO()
        # matplotlib would add ".png" to a name without a suffix: write the very file named
        fig.savefig(image, dpi=100, format=out.suffix[1:].lower() or "png")
        write_whole(out, image.getvalue())
    except OSError as exc:
        print(
            f"{usage.prog}: error: `--output` could not be written to {str(out)!r} "
            f"({exc.strerror or type(exc).__name__}).",
            file=sys.stderr,
        )
        return 1
    except (ValueError, ImportError, RuntimeError, OverflowError) as exc:
        print(f"{usage.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(history)} generations of {run} drawn in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
