"""Every command's --help teaches: a description, help and defaults for every option, and
examples that are real command lines."""

import argparse
import shlex

import pytest

from drivevision.cli import build_parser


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"drivevision": parser, **sub.choices}


@pytest.mark.parametrize("name", list(commands()))  # every command, batch too
def test_help_has_a_description_examples_and_help_for_every_option(name):
    parser = commands()[name]
    text = parser.format_help()
    assert parser.description and len(parser.description) > 40
    assert "\nExamples:\n  drivevision " in text
    missing = [a.dest for a in parser._actions if not (a.help and a.help.strip())]
    assert missing == [], f"{name}: options without help: {missing}"


@pytest.mark.parametrize("name", [c for c in commands() if c != "drivevision"])
def test_every_option_with_a_default_shows_it(name):
    parser = commands()[name]
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in parser._get_formatter()._get_help_string(action), action.dest
    assert "default: " in text


def example_lines():
    for name, parser in commands().items():
        for line in parser.epilog.splitlines()[1:]:
            if line.strip().startswith("drivevision"):
                yield pytest.param(line.split("#")[0].split(">")[0].strip(), id=f"{name}: {line}")


@pytest.mark.parametrize("line", list(example_lines()))
def test_every_example_is_a_command_line_the_parser_takes(line):
    args = shlex.split(line)[1:]
    if "--help" in args:
        return
    assert callable(build_parser().parse_args(args).func)


def test_the_detect_page_names_every_model_choice():
    import re
    from pathlib import Path

    from drivevision.config import MODELS

    page = (Path(__file__).parents[2] / "docs" / "detect.md").read_text()  # its Model item
    assert [m for m in MODELS if not re.search(rf"--model {m}(?![-\w])", page)] == []


@pytest.mark.parametrize("line, expected", [
    ("detect in.mp4 --clases car", "drivevision detect: error: unrecognized arguments: --clases "
                                   "car; did you mean --classes? (drivevision detect --help "
                                   "lists the options)"),
    ("eval --gt gt.jsonl --pred=p.jsonl --jsno", "unrecognized arguments: --jsno; did you mean "
                                                 "--json? (drivevision eval --help"),
    ("detect in.mp4 --engine onx", "invalid choice: 'onx' (choose from 'auto', 'torch', "
                                   "'compiled', 'onnx', 'tensorrt'); did you mean onnx?"),
    ("detet in.mp4", "drivevision: error: argument COMMAND: invalid choice: 'detet'"),
    ("detect a.png b.png c.png", "unrecognized arguments: c.png; detect takes one input and an "
                                 "output (a glob such as pics/*.png gives several): for many "
                                 "inputs use drivevision batch"),
    ("detect", "drivevision detect: error: the following arguments are required: input"),
    ("cache --older-than soon", "argument --older-than: invalid float value: 'soon' "
                                "(drivevision cache --help lists the options)"),
])
def test_a_mistyped_command_line_is_one_line_naming_the_command_and_the_close_name(
        capsys, line, expected):
    with pytest.raises(SystemExit) as usage:
        build_parser().parse_args(shlex.split(line))
    err = capsys.readouterr().err.strip().splitlines()
    assert usage.value.code == 2 and len(err) == 1 and expected in err[0], err


def misaligned_comments(epilog: str) -> list[str]:
    """The example lines whose `# comment` starts off the column the others share; a command
    too long for that column has its comment two spaces after it."""
    lines = [line for line in epilog.splitlines()
             if line.strip().startswith("drivevision") and "  #" in line]
    starts = [line.index("  #") + 2 for line in lines]
    column = min(starts, key=lambda c: (-starts.count(c), c), default=0)
    return [line for line, start in zip(lines, starts)
            if start != column and not (start > column and line[start - 3] != " ")]


@pytest.mark.parametrize("name", list(commands()))
def test_the_comments_of_the_examples_line_up(name):
    assert misaligned_comments(commands()[name].epilog) == []


def test_a_comment_off_the_column_is_found():
    epilog = ("Examples:\n  drivevision a       # one\n  drivevision b c d e  # long, two spaces\n"
              "  drivevision f        # one column off\n  drivevision g       # two\n")
    assert misaligned_comments(epilog) == ["  drivevision f        # one column off"]


def test_descriptions_fit_the_terminal_they_are_shown_in(monkeypatch):
    """Wrapped to the terminal's width as argparse wraps the options' help (80 columns here),
    not at a fixed 88 that an 80-column terminal breaks again mid-line."""
    monkeypatch.setenv("COLUMNS", "80")
    for name, parser in commands().items():  # built now, in that terminal
        lines = parser.description.splitlines()  # printed as they are (raw description)
        assert max(len(line) for line in lines) <= 78, name  # argparse's margin: 2


@pytest.mark.parametrize("name", ["bench", "eval"])
def test_the_whole_help_fits_an_80_column_terminal(monkeypatch, name):
    monkeypatch.setenv("COLUMNS", "80")
    text = commands()[name].format_help()
    assert max(len(line) for line in text.splitlines()) <= 80, name
