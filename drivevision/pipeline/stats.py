"""What a run measures, with bounded memory (runs may last for hours): per-stage timings
(``StageStats``), per-source counters, rates and latency (``SourceStats``, ``Snapshot``),
(the rate meters are in ``rates``) and the end-of-run ``RunSummary``."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from drivevision.detections import Detections
from drivevision.io.frames import Frame, range_text
from drivevision.labels import counted, name_of, ordinal
from drivevision.pipeline.rates import ArrivalRate, RateMeter

# "wait": a live source's read waiting for its next frame (a camera's or stream's decode in
# it, which OpenCV does in the same call); no work of ours, but where a frame's time went.
# "write": every output's writing (the video's H.264 encode, images, detection files)
PIPELINE_STAGES = ("wait", "decode", "preprocess", "inference", "postprocess", "render",
                   "write")


class StageStats:
    """Per stage: the mean over the run and the p95 over the newest ``window`` samples, of
    the frames after the first ``warmup`` (the first detector call's: one-off work such as
    compiling the engine for the frame size is in them; ``first`` keeps their times). A run
    of no more frames than that reports those."""

    def __init__(self, window: int = 4096, warmup: int = 1):
        self._count: dict[str, int] = {}
        self._total: dict[str, float] = {}
        self._recent: dict[str, deque] = {}
        self._window = window
        self._warmup = warmup
        self.first: list[dict[str, float]] = []

    @property
    def steady(self) -> bool:
        """Whether frames came after the warm-up ones (the means are then theirs)."""
        return bool(self._count)

    def add(self, timings: dict[str, float]) -> None:
        if len(self.first) < self._warmup:
            self.first.append(dict(timings))
            return
        for stage, ms in timings.items():
            if stage not in self._recent:
                self._recent[stage] = deque(maxlen=self._window)
                self._count[stage], self._total[stage] = 0, 0.0
            self._recent[stage].append(ms)
            self._count[stage] += 1
            self._total[stage] += ms

    def mean(self, stage: str) -> float:
        if self.steady:
            return self._total.get(stage, 0.0) / max(self._count.get(stage, 0), 1)
        warm = self._warm(stage)
        return float(np.mean(warm)) if warm else 0.0

    def p95(self, stage: str) -> float:
        recent = self._recent.get(stage) if self.steady else self._warm(stage)
        return float(np.percentile(recent, 95)) if recent else 0.0

    def first_ms(self) -> float:
        """Milliseconds of the warm-up frames, every stage together, per frame."""
        return sum(sum(t.values()) for t in self.first) / max(len(self.first), 1)

    def stages(self) -> list[str]:
        seen = dict.fromkeys(s for t in self.first for s in t) | dict.fromkeys(self._recent)
        known = [s for s in PIPELINE_STAGES if s in seen]
        return known + [s for s in seen if s not in known]

    def _warm(self, stage: str) -> list[float]:
        return [t[stage] for t in self.first if stage in t]

    def __repr__(self) -> str:  # a printed RunSummary shows the means, not an address
        means = ", ".join(f"{s}={self.mean(s):.1f}" for s in self.stages())
        return f"StageStats(mean ms: {means})"


_HIST_MS = 60_000  # latencies above a minute count as a minute


@dataclass(frozen=True)
class Snapshot:
    """One source's state: rates in frames/s (``input_fps`` None until it is known, see
    ``ArrivalRate``), ``dropped_pct`` over the whole run, latency (capture to render) in
    ms over the window, None before the first result."""

    input_fps: float | None
    detector_fps: float
    captured: int
    processed: int
    dropped: int
    latency_p50: float | None
    latency_p95: float | None
    reconnects: int = 0
    lost_s: float = 0.0
    state: str = ""

    @property
    def dropped_pct(self) -> float:
        return 100.0 * self.dropped / self.captured if self.captured else 0.0

    def format(self) -> str:
        latency = ("-" if self.latency_p50 is None
                   else f"{self.latency_p50:.0f}/{self.latency_p95:.0f} ms")
        text = (f"in {_fps(self.input_fps)} fps  det {self.detector_fps:4.1f} fps  "
                f"dropped {self.dropped_pct:3.0f}%  latency p50/p95 {latency}")
        if self.reconnects or self.lost_s:
            text += f"  reconnects {self.reconnects} ({self.lost_s:.1f} s lost)"
        return f"{text}  {self.state}" if self.state else text


def _fps(rate: float | None) -> str:
    """A rate as the status line prints it, 4 wide: "-" while it is not known."""
    return f"{'-' if rate is None else f'{rate:.1f}':>4}"


class SourceStats:
    """Counters and sliding-window meters of one source; safe to use from several threads.

    ``captured`` frames were read, ``processed`` reached the render stage, ``dropped`` were
    replaced by a newer frame before the detector took them (live sources only). The input
    rate is the rate frames arrive at (``ArrivalRate``, over the last 2 s; on the stream's own
    timestamps where ``on_capture`` is given them; None until it has settled), never the rate
    a stream or container claims. Memory is bounded: the windows keep at most ``window_s``
    seconds and ``max_events``.
    """

    def __init__(self, window_s: float = 5.0, max_events: int = 20_000):
        self.window_s = window_s
        self._lock = threading.Lock()
        self.input_rate = ArrivalRate(min(window_s, 2.0))
        self.detector_rate = RateMeter(window_s, max_events)
        self._latency: deque[tuple[float, float]] = deque(maxlen=max_events)
        self.captured = self.processed = self.dropped = 0
        self._histogram = np.zeros(_HIST_MS + 1, np.int64)  # whole-run latency, 1 ms bins

    def on_capture(self, now: float | None = None, stamp_s: float | None = None) -> None:
        """A frame read at ``now``, with its own time ``stamp_s`` (see ``ArrivalRate.tick``)."""
        with self._lock:
            self.captured += 1
        self.input_rate.tick(now, stamp_s)

    def on_drop(self) -> None:
        with self._lock:
            self.dropped += 1

    def on_result(self, latency_ms: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.processed += 1
            self._latency.append((now, latency_ms))
            self._histogram[min(max(int(latency_ms), 0), _HIST_MS)] += 1
        self.detector_rate.tick(now)

    def run_latency(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) of the whole run's latency in ms (1 ms bins)."""
        with self._lock:
            total = int(self._histogram.sum())
            if total == 0:
                return None
            cumulative = np.cumsum(self._histogram)
            return float(np.searchsorted(cumulative, q / 100.0 * total))

    def snapshot(self, reconnects: int = 0, lost_s: float = 0.0, state: str = "") -> Snapshot:
        now = time.monotonic()
        with self._lock:
            while self._latency and self._latency[0][0] < now - self.window_s:
                self._latency.popleft()
            latency = np.array([ms for _, ms in self._latency], dtype=np.float64)
            p50, p95 = (np.percentile(latency, [50, 95]) if latency.size else (None, None))
            counts = self.captured, self.processed, self.dropped
        return Snapshot(self.input_rate.rate(now), self.detector_rate.rate(now), *counts,
                        None if p50 is None else float(p50),
                        None if p95 is None else float(p95), reconnects, lost_s, state)

    def __repr__(self) -> str:  # one line: the counters and the current rates
        snap = self.snapshot()
        return (f"SourceStats(captured={snap.captured}, processed={snap.processed}, "
                f"dropped={snap.dropped}, input_fps={_fps(snap.input_fps).strip()}, "
                f"detector_fps={snap.detector_fps:.1f})")


@dataclass
class RunSummary:
    """What a finished run reports: counts, per-class totals and stage timings."""

    frames: int
    seconds: float
    class_counts: dict[str, int]
    stages: StageStats
    notes: list[str]
    interrupted: bool = False
    dropped: int = 0  # live sources: frames replaced by newer ones before detection
    tracks: dict[str, int] | None = None  # with a tracker: distinct tracks per class
    median_track_length: float | None = None  # detected frames a track was in, median
    frame_stride: int = 1  # only every frame_stride-th frame of the input was detected
    read: int | None = None  # frames of the input read, those passed over too
    median_track_span: float | None = None  # frames of the input from its first to last, median
    input_fps: float | None = None  # the input's frame rate, where known
    range: tuple[float, float | None] | None = None  # the time range asked for (s; None: end)
    span: tuple[int, int] | None = None  # first and last index of the input read in it
    placed: dict = field(default_factory=dict)  # output path -> where it went, if elsewhere

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        lines = [self._frames_line()
                 + (f", {self.dropped} dropped (newest frame first)" if self.dropped else "")
                 + (", interrupted" if self.interrupted else "")]
        total = sum(self.class_counts.values())
        counts = ", ".join(f"{n} {c}" for c, n in sorted(self.class_counts.items(),
                                                          key=lambda kv: -kv[1]))
        lines.append(counted(total, "detection") + (f": {counts}" if counts else ""))
        if self.tracks is not None:
            lines.append(self._tracks_line())
        lines.append(f"{'stage':<12}{'mean ms':>10}{'p95 ms':>10}")
        for stage in self.stages.stages():
            lines.append(f"{stage:<12}{self.stages.mean(stage):>10.1f}{self.stages.p95(stage):>10.1f}")
        if self.stages.steady:
            n, ms = len(self.stages.first), self.stages.first_ms()
            what = (f"the first frame, {ms:.0f} ms, which holds" if n == 1 else
                    f"the first {n} frames, {ms:.0f} ms each, which hold")
            lines.append(f"(not in the table: {what} one-off work: compiling, first allocations)")
        if "wait" in self.stages.stages():
            lines.append("(wait: a live source's read waiting for its next frame; a camera's "
                         "or stream's decoding is in it)")
        return "\n".join(lines)

    def _tracks_line(self) -> str:
        """"20 tracks: 14 car, 6 person; median length 12 frames (0.40 s)": the median of
        the frames a track was detected in and, in seconds, of the input's frames from its
        first detection to its last, and the K its last one stands for (K: the frame stride,
        else 1). With a stride or frames dropped, both counts: "median length 3 detected
        frames, over 15 frames of the input (0.50 s)"."""
        tracks, median = self.tracks, self.median_track_length
        counts = ", ".join(f"{n} {c}" for c, n in sorted(tracks.items(), key=lambda kv: -kv[1]))
        line = counted(sum(tracks.values()), "track") + (f": {counts}" if counts else "")
        if median is None:
            return line
        gaps = self.frame_stride > 1 or self.dropped > 0
        length = f"{median:g} {'detected ' if gaps else ''}frame{'' if median == 1 else 's'}"
        span = self.median_track_span
        over = None if span is None else span + self.frame_stride
        if gaps and over is not None:
            length += f", over {over:g} frame{'' if over == 1 else 's'} of the input"
        if over is not None and self.input_fps:
            length += f" ({over / self.input_fps:.2f} s)"
        return f"{line}; median length {length}"

    def _frames_line(self) -> str:
        """"12 frames in 3.1 s (3.87 fps end to end)"; with a frame stride, how many frames
        were read and the rate of the input's frames too; with a time range, which frames
        of the input it held ("frames 900-1799 of the input (1:30 to 3:00): ...")."""
        line = (f"{counted(self.frames, 'frame')} in {self.seconds:.1f} s "
                f"({self.fps:.2f} fps end to end")
        where = ""
        if self.range is not None:
            frames = "no frame" if self.span is None else f"frames {self.span[0]}-{self.span[1]}"
            where = f"{frames} of the input ({range_text(*self.range)})"
        if self.frame_stride == 1 or self.read is None:
            return f"{where}: {line})" if where else line + ")"
        rate = self.read / self.seconds if self.seconds > 0 else 0.0
        read = f"{where}, every" if where else f"{counted(self.read, 'frame')} read, every"
        return (f"{read} {ordinal(self.frame_stride)} detected: {line}, {rate:.2f} frames "
                "of the input per second)")


class TrackStats:
    """Tracks seen in a run, per (source, track id): detected frames it was in, the index of
    its first and last one, and class votes. Falsy until it saw tracked detections.
    Memory grows with the number of tracks (a few numbers each)."""

    def __init__(self):
        self._seen: dict[tuple[int, int], list[int]] = {}  # [frames, first index, last]
        self._votes: dict[tuple[int, int], dict[int, int]] = {}
        self._tracked = False

    def __bool__(self) -> bool:
        return self._tracked

    def add(self, frame: Frame, detections: Detections) -> None:
        if detections.track_ids is None:
            return
        self._tracked = True
        for tid, cls in zip(detections.track_ids.tolist(), detections.class_ids.tolist()):
            key = (frame.source_id, tid)
            seen = self._seen.setdefault(key, [0, frame.index, frame.index])
            seen[0] += 1
            seen[2] = frame.index
            votes = self._votes.setdefault(key, {})
            votes[cls] = votes.get(cls, 0) + 1

    def per_class(self, names) -> dict[str, int]:
        """Distinct tracks per class name (a track's class: its most frequent one)."""
        counts: dict[str, int] = {}
        for votes in self._votes.values():
            name = name_of(max(votes, key=votes.get), names)
            counts[name] = counts.get(name, 0) + 1
        return counts

    def median_length(self) -> float | None:
        """Detected frames a track was in, the median over tracks (None: no track)."""
        return self._median(lambda s: s[0])

    def median_span(self) -> float | None:
        """Frames of the input from a track's first detection to its last, the median."""
        return self._median(lambda s: s[2] - s[1])

    def _median(self, of) -> float | None:
        return float(np.median([of(s) for s in self._seen.values()])) if self._seen else None
