"""How every command's ``--help`` reads: a description, grouped options with their defaults,
and examples at the end."""

from __future__ import annotations

import argparse
import textwrap


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's and examples' line breaks; adds "(default: X)" to an option
    whose help does not already say its default (none for flags and options without one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or not action.option_strings
                or action.default in (None, False, argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)"


DEBUG_HELP = "show the full traceback behind an error (also: DRIVEVISION_DEBUG=1)"


def add_command(commands, name: str, *, summary: str, description: str,
                examples: str) -> argparse.ArgumentParser:
    """A sub-command parser with ``summary`` in the command list and ``examples`` (lines of
    ``command  # what it does``) in an Examples section at the end of its help; it takes
    ``--debug`` as ``drivevision`` itself does."""
    lines = "\n".join(f"  {line}" for line in examples.strip().splitlines())
    parser = commands.add_parser(name, help=summary, description=wrap(description),
                                 epilog=f"Examples:\n{lines}", formatter_class=HelpFormatter)
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help=DEBUG_HELP)  # also here, where a user adds it to a command line
    return parser


def wrap(text: str, width: int = 88) -> str:
    """``text`` wrapped to ``width`` columns, its own line breaks kept."""
    return "\n".join(textwrap.fill(line, width) for line in text.splitlines())
