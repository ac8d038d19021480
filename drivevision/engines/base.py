"""The engine protocol and the type of dense A's outputs, apart from ``create_engine`` so
that engine modules depend on these alone (no import cycle through the package)."""

from __future__ import annotations

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
