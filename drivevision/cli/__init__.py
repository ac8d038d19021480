"""The ``drivevision`` command: one module per sub-command, shared options in ``options``."""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import sys
import traceback
import warnings

from drivevision import __version__
from drivevision.cli.exits import (
    EXIT_FAILED,
    EXIT_INPUT_DAMAGED,
    EXIT_INTERRUPTED,
    EXIT_READER_LEFT,
    EXIT_USAGE,
    quit_now,
    undo_on_quit,
)
from drivevision.pipeline import signals

# Standard library, exits and signals only up to here: ``main`` takes Ctrl-C over before the
# command modules (and torch, behind them) load.


def build_parser() -> argparse.ArgumentParser:
    from drivevision.cli import batch, bench, cache, detect, export, live, view
    from drivevision.cli import eval as evaluate
    from drivevision.cli.help import DEBUG_HELP, HelpFormatter, Parser, wrap

    parser = Parser(
        prog="drivevision", formatter_class=HelpFormatter,
        description=wrap("Object detection on driving video: files, cameras and streams in; "
                         "annotated video, images and detections out."),
        epilog="Examples:\n"
               "  drivevision detect dashcam.mp4              # results in runs/detect/dashcam/\n"
               "  drivevision batch footage/ --out det/       # every video under footage/\n"
               "  drivevision live 0 --serve                  # a camera, watched in a browser\n"
               "  drivevision detect --help                   # a command's options\n\n"
               "No network? Try the bundled sample and demo model:\n"
               "  drivevision detect assets/sample.mp4 --weights assets/tiny-fpn-synthetic.pt")
    parser.add_argument("--version", action="version", version=f"drivevision {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     help="what to do (drivevision COMMAND --help says how)")
    for command in (detect, batch, export, bench, evaluate, view, live, cache):
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (``drivevision.cli.exits``: 0, 1, 2, 3, 130).

    Failures are one line on stderr; ``--debug`` or ``DRIVEVISION_DEBUG=1`` adds the full
    traceback, so a bug in a stage can be told from bad input. Ctrl-C or SIGTERM while the
    command starts (imports, model load, an export) quits at once with one line; while a
    pipeline runs it is a stop request that finishes the outputs (exit 130 either way).
    """
    previous = signals.install(quit_now)
    try:
        args = build_parser().parse_args(argv)
        debug = args.debug or os.environ.get("DRIVEVISION_DEBUG", "") not in ("", "0")
        logging.addLevelName(logging.WARNING, "warning")  # lines read like our own messages
        logging.basicConfig(format="drivevision: %(levelname)s: %(message)s",
                            level=logging.DEBUG if debug else logging.WARNING)
        if not debug:
            warnings.filterwarnings("ignore", category=UserWarning, module="torch")
            # importing torch.utils.cpp_extension (torch.compile, ONNX export do) warns "No
            # CUDA runtime is found" wherever CUDA_HOME exists without a GPU: nothing to act on
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        return _run(args.func, args, debug)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(command, args: argparse.Namespace, debug: bool) -> int:
    from drivevision.errors import (
        DriveVisionError,
        SinkError,
        StageError,
        WriteError,
        input_failure,
    )

    try:
        with undo_on_quit(_abandon_engine_builds):
            return command(args)
    except (StageError, BrokenPipeError) as e:
        if _stdout_reader_left(e):  # `drivevision ... --jsonl - | head`: the Unix way
            return EXIT_READER_LEFT
        if input_failure(e):  # a damaged input (no frame decodes), not a bug in a stage
            return _fail(input_failure(e), EXIT_INPUT_DAMAGED, debug)
        if isinstance(getattr(e, "error", None), SinkError):  # a full disk: the output says
            e.error.output_notes = getattr(e, "output_notes", [])
            return _fail(e.error, EXIT_FAILED, debug)
        return _fail(e, EXIT_FAILED, debug)
    except (DriveVisionError, ValueError, TypeError) as e:
        failed = isinstance(e, (StageError, WriteError))  # at run time, not refused at start
        return _fail(e, EXIT_FAILED if failed else EXIT_USAGE, debug)
    except (OSError, ImportError) as e:  # a full disk, a missing optional library, ...
        return _fail(e, EXIT_FAILED, debug)
    except KeyboardInterrupt:
        print("drivevision: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _abandon_engine_builds() -> None:
    """What a Ctrl-C during an engine build would leave in the cache (its lock file, half a
    file) removed, without importing the cache's module where no build ran."""
    cache = sys.modules.get("drivevision.engines.cache")
    if cache is not None:
        cache.abandon_builds()


def _stdout_reader_left(error: BaseException) -> bool:
    """Whether ``error`` is stdout's reader going away (``| head``): then the run ends
    quietly, as a command killed by SIGPIPE would, and nothing more is written to stdout."""
    cause = error if isinstance(error, BrokenPipeError) else (
        getattr(error, "error", None) or error.__cause__)
    if not isinstance(cause, BrokenPipeError) and cause is not None:
        cause = cause.__cause__  # a sink's WriteError, from the BrokenPipeError
    if not isinstance(cause, BrokenPipeError) or not hasattr(select, "poll"):
        return False
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return False
    poll = select.poll()  # a pipe with no reader left polls as an error on its write end
    poll.register(fd, select.POLLOUT)
    if not any(events & select.POLLERR for _, events in poll.poll(0)):
        return False  # stdout is fine: the pipe that broke was another output (a FIFO)
    devnull = os.open(os.devnull, os.O_WRONLY)  # the interpreter flushes stdout at exit
    os.dup2(devnull, fd)
    os.close(devnull)
    return True


def _fail(error: BaseException, code: int, debug: bool) -> int:
    from drivevision.errors import StageError

    if debug:
        traceback.print_exception(error)
    for note in getattr(error, "output_notes", ()):  # the other outputs: where they are kept
        print(f"drivevision: warning: {note}", file=sys.stderr)
    print(f"drivevision: error: {_one_line(error)}", file=sys.stderr)
    if not debug and code == EXIT_FAILED and isinstance(error, StageError):
        print("drivevision: run again with --debug for the full traceback", file=sys.stderr)
    return code


# the optional libraries (pyproject's extras) by module, so a missing one says what to install
EXTRAS = {"onnx": "onnx", "onnxruntime": "onnx", "onnxscript": "onnx", "torchao": "int8",
          "pycocotools": "eval", "motmetrics": "eval", "matplotlib": "eval", "tabulate": "eval",
          "ray": "ray", "PyQt6": "gui", "tensorrt_rtx": "tensorrt-rtx"}


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    extra = isinstance(error, ModuleNotFoundError) and EXTRAS.get((error.name or "").split(".")[0])
    if extra and "pip install" not in line:
        line += f": it comes with the {extra} extra, pip install -e \".[{extra}]\" in the clone"
    return line
