"""Batch tests: commands run in an empty folder; one tree of generated clips per module."""

import os
from pathlib import Path

import pytest

from tests.batch.helpers import ROOT, make_footage


@pytest.fixture(autouse=True)
def in_tmp_folder(tmp_path_factory, monkeypatch):
    """Commands run in an empty folder; processes they start import this checkout."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    return make_footage(tmp_path_factory.mktemp("footage"))
