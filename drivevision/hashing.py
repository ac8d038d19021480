"""The SHA-256 of a file, read in blocks: the identity of weights, calibration clips, cached
engines and batch outputs. Plain Python, so that what only reads the engine cache
(``drivevision cache``) starts without torch."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()
