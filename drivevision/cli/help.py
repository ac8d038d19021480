"""How every command's ``--help`` reads: a description, grouped options with their defaults,
and examples at the end."""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import textwrap


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (no usage block) that says where the
    options are listed, suggest the close name for a misspelt option or choice, and name the
    command an unknown argument was given to."""

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = _command_parser(self, parsed)
            hint = _close_option(command, extras)
            if not hint and any(not e.startswith("-") for e in extras):
                hint = getattr(command, "inputs_hint", "")  # ``detect a.png b.png c.png``
            command.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}{_close_choice(message)} "
                     f"({self.prog} --help lists the options)\n")


def _command_parser(parser: argparse.ArgumentParser, parsed: argparse.Namespace):
    """The sub-command's parser that ``parsed`` went through, else ``parser`` itself."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(getattr(parsed, action.dest, None), parser)
    return parser


def _close_option(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """"; did you mean --classes?" for the first unknown option close to one of ``parser``'s."""
    known = [o for o in parser._option_string_actions if o.startswith("--")]
    for extra in extras:
        if extra.startswith("--"):
            close = difflib.get_close_matches(extra.split("=")[0], known, n=1)
            if close:
                return f"; did you mean {close[0]}?"
    return ""


def _close_choice(message: str) -> str:
    """"; did you mean onnx?" for argparse's "invalid choice: 'onx' (choose from ...)"."""
    match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    if not match:
        return ""
    close = difflib.get_close_matches(match[1], re.findall(r"'([^']*)'", match[2]), n=1)
    return f"; did you mean {close[0]}?" if close else ""


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


def wrap(text: str, width: int | None = None) -> str:
    """``text`` wrapped to ``width`` columns, by default the terminal's less 2, as argparse
    wraps the options' help (88 at most), its own line breaks kept."""
    width = width or min(88, shutil.get_terminal_size().columns - 2)
    return "\n".join(textwrap.fill(line, width) for line in text.splitlines())


def wrapped_lines(text: str, width: int = 80) -> list[str]:
    """``text`` as lines of at most ``width`` columns (80: a terminal's, what the tables of
    bench and eval fit), those after the first indented; a word longer than that (a path)
    kept whole on its own line."""
    return textwrap.wrap(text, width, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)
