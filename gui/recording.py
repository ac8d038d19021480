"""Recording what the viewer shows: the annotated stream to video, the detections to JSONL.

:class:`Recorder` writes the files; :class:`Recording` is the viewer worker's on/off switch
around one recorder, drawing each result as the overlay shows it and wording what happened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import av
import numpy as np

from drivevision.detections import Detections
from drivevision.io.frames import Frame
from drivevision.io.live_sinks import LiveVideoSink
from drivevision.io.sinks import JsonlSink, Sink
from drivevision.labels import counted
from drivevision.pipeline import Result
from gui.overlay import OverlaySettings, draw, visible


class Recorder:
    """Writes each shown frame: annotated (H, W, 3) BGR to ``video``, detections to ``jsonl``.

    Either path may be None. The detections written are the ones the overlay shows (after the
    confidence slider and class toggles), in original-frame pixels xyxy. Each video frame is
    shown at its ``Frame.captured_at`` (seconds, counted from the first frame's);
    :class:`Recording` sets that clock. ``fps`` is only nominal (an AVI, which has one frame
    rate, takes the rate measured on its first frames: ``LiveVideoSink``).
    ``close(hold=...)`` shows the last frame once more, in the video only, so it lasts
    until then.
    """

    def __init__(self, video: str | Path | None, jsonl: str | Path | None, *, fps: float,
                 names: Sequence[str]):
        if video is None and jsonl is None:
            raise ValueError("Expected a video path, a JSONL path or both to record to")
        self._sinks: list[Sink] = []
        self._lock = threading.Lock()
        self._last: tuple[Detections, np.ndarray] | None = None  # the last frame's, drawn
        try:
            if video is not None:
                self._sinks.append(LiveVideoSink(video, fps))
            if jsonl is not None:
                self._sinks.append(JsonlSink(jsonl, names))
        except BaseException:
            self._close_all(complete=False)  # the error that got us here is the one to raise
            raise
        self.frames = 0
        self.closed = False

    @property
    def paths(self) -> list[Path]:
        """The files: where they go while recording; once closed, those written (a video
        with no frame is not)."""
        if not self.closed:
            return [s.path for s in self._sinks]
        return [s.final_path for s in self._sinks if s.final_path is not None]

    @property
    def notes(self) -> list[str]:
        return [note for sink in self._sinks for note in sink.notes]

    def write(self, frame: Frame, shown: Detections, annotated: np.ndarray) -> None:
        with self._lock:
            for sink in self._sinks:
                sink.write(frame, shown, annotated)
            self.frames += 1
            self._last = shown, annotated

    def close(self, hold: Frame | None = None) -> list[str]:
        """Finish every file; returns the notes the sinks left (e.g. a codec fallback).
        ``hold``: the last frame written lasts until ``hold.captured_at`` in the video.

        A file that cannot be finished (e.g. a full disk) does not stop the others from being
        finished; the first such error is raised once every file is closed (what it had is
        kept as ``.partial``, with a note).
        """
        with self._lock:
            error = None
            videos = [s for s in self._sinks if isinstance(s, LiveVideoSink)]
            if hold is not None and self._last is not None and videos:
                try:
                    videos[0].write(hold, *self._last)
                except (OSError, av.FFmpegError) as e:  # raised once every file is closed
                    error = e
            error = self._close_all(complete=True) or error
        if error is not None:
            raise error
        return self.notes

    def _close_all(self, complete: bool) -> Exception | None:
        """Close every sink; returns the first error instead of stopping at it."""
        self.closed, first = True, None
        for sink in self._sinks:
            try:
                sink.close(complete=complete)
            except Exception as e:  # noqa: BLE001 - raised by close() after the others
                first = first or e
        return first


class Recording:
    """At most one :class:`Recorder` at a time, used from the viewer's worker thread only.

    The video's clock: while frames are skipped (real-time playing, live sources) a frame
    lasts until the next was captured, so the video lasts as long as the watching (a pause is
    a still frame): from the frame on show when recording starts (``start``'s ``on_show``)
    to ``stop``, the last frame on show until then. With every frame shown, frames are as
    far apart as in the source (the video lasts as long as the clip, as the JSONL's
    ``timestamp_ms`` say, however long the detector took), and so are those of a stream with
    its own clock (``Source.stream_clock``: HLS hands over a segment's frames at once, which
    by arrival would be one instant); these videos end with their last frame. A
    jump back moves the clock on by one nominal frame (a replay, a seek), or by the time
    between the arrivals (a stream opened anew after a pause: a still frame).
    """

    def __init__(self) -> None:
        self._recorder: Recorder | None = None
        self._fps = 30.0
        self._clock = 0.0
        self._last: Frame | None = None
        self._by_arrival = False  # the last frame was timed by its arrival

    @property
    def active(self) -> bool:
        """True while a recorder has files open."""
        return self._recorder is not None

    def start(self, video: str | Path | None, jsonl: str | Path | None, *, fps: float,
              names: Sequence[str], on_show: tuple[Result, OverlaySettings] | None = None
              ) -> str:
        """Open the files and record ``on_show`` (the result on screen, as the overlay shows
        it), the video's first frame from now; returns the status line. RuntimeError while
        a recording runs (``stop`` it first): it stays as it was, its files open."""
        if self._recorder is not None:
            raise RuntimeError("Already recording to " + self._where(self._recorder)
                               + "; stop that recording first")
        self._recorder = Recorder(video, jsonl, fps=fps, names=names)
        self._fps, self._clock, self._last = fps, 0.0, None
        if on_show is not None:  # on show from now
            result, overlay = on_show
            try:
                self.write(replace(result, frame=replace(result.frame,
                                                         captured_at=time.monotonic())),
                           overlay, names)
            except BaseException:
                self.stop()  # no recording left half started
                raise
        return "recording to " + self._where(self._recorder)

    def stop(self) -> str | None:
        """Finish the files: one line saying what was saved, or None when not recording.

        Never raises for a file that could not be finished (the worker stops with it and
        must still close its media): the line then starts with what failed, and every other
        file is finished all the same.
        """
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        failed: list[str] = []
        hold = None
        if self._last is not None and self._by_arrival:  # on show until now
            held = self._clock + max(time.monotonic() - self._last.captured_at, 0.0)
            hold = replace(self._last, captured_at=held)
        try:
            notes = recorder.close(hold)
        except (OSError, av.FFmpegError) as e:
            failed = [f"recording failed: {e.strerror or e}"]
            notes = recorder.notes
        if recorder.frames:
            saved = f"saved {counted(recorder.frames, 'frame')} to {self._where(recorder)}"
        else:
            left = f" ({self._where(recorder)} left empty)" if recorder.paths else ""
            saved = f"nothing recorded: no frame was shown while recording{left}"
        return "; ".join([*failed, saved, *notes])

    @staticmethod
    def _where(recorder: Recorder) -> str:
        return ", ".join(str(p) for p in recorder.paths)

    def write(self, result: Result, overlay: OverlaySettings, names: Sequence[str], *,
              source_time: bool = False, stream_clock: bool = False) -> None:
        """Record ``result`` as ``overlay`` shows it (no hover highlight); nothing when stopped.
        ``source_time``: every frame is shown, so time the video by the source's timestamps;
        ``stream_clock``: the source's timestamps are a stream's own (``Source.stream_clock``),
        so time it by them whichever frames are shown."""
        if self._recorder is None:
            return
        shown = visible(result.detections, overlay)
        annotated = draw(result.frame.image, shown, names, replace(overlay, highlight=None),
                         trails=result.trails)  # as the viewer shows them
        self._recorder.write(self._stamped(result.frame, source_time, stream_clock), shown,
                             annotated)

    def _stamped(self, frame: Frame, source_time: bool, stream_clock: bool) -> Frame:
        last, self._last = self._last, frame
        self._by_arrival = not (source_time or stream_clock)
        arrival = 0.0 if last is None else max(frame.captured_at - last.captured_at, 0.0)
        if last is None or not (source_time or stream_clock):
            step = arrival
        elif frame.timestamp_ms > last.timestamp_ms:
            step = (frame.timestamp_ms - last.timestamp_ms) / 1000.0
        else:  # a jump back: a file replayed or sought; a stream opened anew after a pause
            step = arrival if stream_clock else 1.0 / self._fps
        self._clock += step
        return replace(frame, captured_at=self._clock)
