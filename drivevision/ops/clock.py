"""The stage clock of a detector call: milliseconds per stage, without making a CUDA run wait
for the GPU."""

from __future__ import annotations

import time

import torch


class StageClock:
    """Milliseconds spent in each stage of one call.

    On CUDA nothing waits for the GPU by default: each lap records an event on the current
    stream, so the CPU goes on preparing work while the GPU runs, and the times are read
    from the events at the end, when the detections' copy to the host has already waited
    for the GPU. ``sync=True`` (bench) waits for the GPU at every lap instead, so that each
    stage's wall time is its own. On the CPU laps are wall times.
    """

    def __init__(self, device: torch.device, *, sync: bool = False):
        self.events = device.type == "cuda" and not sync
        self.sync = device.type == "cuda" and sync
        self._marks: list[tuple[str, object]] = [("start", self._mark())]

    def _mark(self):
        if self.events:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        if self.sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def lap(self, stage: str) -> None:
        self._marks.append((stage, self._mark()))

    @property
    def ms(self) -> dict[str, float]:
        """Stage -> milliseconds since the previous lap (read once the laps are done)."""
        if self.events:
            self._marks[-1][1].synchronize()  # already passed: the host copy came before it
            return {stage: before.elapsed_time(after) for (_, before), (stage, after)
                    in zip(self._marks, self._marks[1:])}
        return {stage: (after - before) * 1000.0 for (_, before), (stage, after)
                in zip(self._marks, self._marks[1:])}
