"""What every source yields and what every source is: ``Frame`` and ``Source``.

Kept apart from the readers so that sinks, stages and the viewer depend on these two
types only, not on OpenCV or the file readers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    ``timestamp_ms`` is the frame's position in its stream; ``captured_at`` is
    ``time.monotonic()`` when it was read, the start of its capture-to-render latency.
    """

    index: int
    timestamp_ms: float
    image: np.ndarray
    captured_at: float
    source_id: int = 0


@dataclass
class Source:
    """Base of every source: iterate for frames, ``close()`` when done (or use ``with``).

    ``notes`` collects what the user should hear at the end (e.g. a truncated file).
    """

    uri: str
    fps: float | None = None
    frame_count: int | None = None
    live: bool = False
    notes: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def interrupt(self) -> None:
        """Ask a blocked or waiting ``__iter__`` (on another thread) to end soon."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
