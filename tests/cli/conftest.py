"""Every command test runs in its own empty working folder, so a run with no output option
(which writes under ./runs) never writes into the checkout."""

import pytest


@pytest.fixture(autouse=True)
def in_tmp_folder(tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
