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


def add_command(commands, name: str, *, summary: str, description: str,
                examples: str) -> argparse.ArgumentParser:
    """A sub-command parser with ``summary`` in the command list and ``examples`` (lines of
    ``command  # what it does``) in an Examples section at the end of its help."""
    lines = "\n".join(f"  {line}" for line in examples.strip().splitlines())
    return commands.add_parser(name, help=summary, description=wrap(description),
                               epilog=f"Examples:\n{lines}", formatter_class=HelpFormatter)


def wrap(text: str, width: int = 88) -> str:
    """``text`` wrapped to ``width`` columns, its own line breaks kept."""
    return "\n".join(textwrap.fill(line, width) for line in text.splitlines())
