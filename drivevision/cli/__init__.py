"""The ``drivevision`` command: one module per sub-command, shared options in ``options``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import warnings

from drivevision import __version__
from drivevision.cli import bench, detect, export, live, view
from drivevision.cli.options import EXIT_INTERRUPTED
from drivevision.errors import DriveVisionError, StageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drivevision",
                                     description="Object detection on driving video.")
    parser.add_argument("--version", action="version", version=f"drivevision {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (detect, export, bench, view, live):
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.addLevelName(logging.WARNING, "warning")  # lines read like our own messages
    logging.basicConfig(format="drivevision: %(levelname)s: %(message)s", level=logging.WARNING)
    signal.signal(signal.SIGTERM, _terminate)  # `kill` ends a run like Ctrl-C: outputs kept
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    try:
        return args.func(args)
    except (DriveVisionError, ValueError, TypeError) as e:
        return _fail(_one_line(e), 1 if isinstance(e, StageError) else 2)
    except (OSError, ImportError) as e:  # a full disk, a missing optional library, ...
        return _fail(_one_line(e), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


def _fail(message: str, code: int) -> int:
    print(f"drivevision: error: {message}", file=sys.stderr)
    return code


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
