"""Every script's --help shows its docstring whole: what it does and how it is run."""

import ast
import runpy
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).parents[1] / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_shows_the_scripts_docstring_whole(script, capsys, monkeypatch):
    doc = ast.get_docstring(ast.parse(script.read_text()), clean=False)
    monkeypatch.setattr(sys, "argv", [script.name, "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    text = " ".join(capsys.readouterr().out.split())
    assert done.value.code == 0 and " ".join(doc.split()) in text
