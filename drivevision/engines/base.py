"""The engine protocol and the type of dense A's outputs, apart from ``create_engine`` so
that engine modules depend on these alone (no import cycle through the package)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Protocol

from torch import Tensor

DenseA = tuple[list[Tensor], list[Tensor], list[Tensor]]


class Engine(Protocol):
    """What the detector runs. Engines subclass this for the ``auto_reason`` default.

    ``name`` is the engine's name ("torch", ...); ``auto_reason`` says why ``--engine auto``
    chose it (``create_engine`` sets it) and is None when the engine was asked for by name.
    """

    name: str
    auto_reason: str | None = None

    def dense_a(self, images: Tensor) -> DenseA: ...

    def dense_b(self, pooled: Tensor) -> tuple[Tensor, Tensor]: ...


@contextlib.contextmanager
def quiet_pytree_log() -> Iterator[None]:
    """Importing torchao registers an Enum with torch's pytree, for which torch 2.14 logs a
    deprecation warning on every run: a note for torchao's authors, not for our users."""
    log = logging.getLogger("torch.utils._pytree")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
