"""The viewer's worker: one Python thread that owns the detector, the media and the pipeline.

The GUI thread only sends commands (``open``, ``play``, ``seek`` ...; ``gui.commands``) and
paints what comes back. Results cross threads as ``Packet`` objects holding copies (a numpy
frame and a QImage that owns its pixels); only the newest packet is kept (``Mailbox``), so
repaints never pile up. Commands that change what plays interrupt the running pipeline
through its abort event (a source to open only once it is open: ``Worker.open``); ``stop()``
ends the thread with an event and waits for it (no thread is ever killed).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter, deque
from dataclasses import replace

from PyQt6.QtCore import QObject, pyqtSignal

from drivevision.config import DetectorConfig, PipelineConfig
from drivevision.io.frames import Source
from drivevision.pipeline import Pipeline, Result
from drivevision.pipeline.stats import Snapshot
from gui.commands import Ahead, CommandThread
from gui.media import Paced, SeekableSource, checked, open_media
from gui.overlay import OverlaySettings, draw, internal_config, to_qimage, visible
from gui.packets import Mailbox, MediaInfo, Packet
from gui.recording import Recording
from gui.tally import RunTally

TRANSPORT = frozenset({"open", "load", "play", "pause", "seek", "step"})


class Worker(CommandThread):
    """Runs detection off the GUI thread. Create it on the GUI thread; ``start()``, ``stop()``.

    Signals: ``frame_ready`` (take the packet with ``take()``), ``opened(MediaInfo)``,
    ``playing(bool)``, ``ended``, ``failed(str)`` (one line), ``status(str)``,
    ``warned(str)`` (what went wrong with the media without stopping it: an image skipped, a
    video that stops decoding before its end),
    ``busy(bool)`` (detector loading), ``detector_ready(names, model)`` (the loaded
    architecture), ``load_failed`` (the detector before runs on; ``failed`` says why),
    ``recording(bool)`` (files open / finished), ``recorded(str)`` (what was saved).

    ``tracking``: the per-source stages of ``drivevision.cli.tracking.track_stages`` (or a
    list of ``TrackStage``), kept for the whole session: playing on, pausing and stepping
    forward continue the tracks; a seek, a step back or a replay from the start resets them
    and says so in ``status``.
    """

    frame_ready = pyqtSignal()
    opened = pyqtSignal(object)
    playing = pyqtSignal(bool)
    ended = pyqtSignal()
    status = pyqtSignal(str)
    warned = pyqtSignal(str)
    busy = pyqtSignal(bool)
    detector_ready = pyqtSignal(object, str)
    load_failed = pyqtSignal()
    recording = pyqtSignal(bool)
    recorded = pyqtSignal(str)
    interrupting = TRANSPORT

    def __init__(self, detector=None, parent: QObject | None = None, *, tracking=()):
        super().__init__(parent, name="drivevision-viewer-worker")
        self.detector = detector
        self.tracking = list(tracking(0)) if callable(tracking) else list(tracking)
        self._tally = RunTally()  # shown detections per class, track spans
        self.overlay = OverlaySettings()  # replaced whole by the GUI; read by the worker
        self._pipeline: Pipeline | None = None
        self._pace_stop: threading.Event | None = None
        self._mailbox = Mailbox()
        self.opening = 0
        self.media: Source | None = None
        self.position, self._shown = -1, None  # the frame shown last: its index, its result
        self._notes_told = 0  # of the media's notes, those already in the status bar
        self._played_live = False  # a live source is spent once a pipeline has stopped it
        self._recording = Recording()
        self.loading = 0  # detectors being loaded (read from the GUI thread)
        self._reset_run()

    # -- GUI thread ------------------------------------------------------------------------

    @property
    def display_drops(self) -> int:
        """Packets replaced before the GUI took them, since the media was opened."""
        return self._mailbox.drops

    def nothing_to_finish(self) -> bool:
        """True while a detector loads and nothing is recorded: quitting loses nothing."""
        return self.loading > 0 and not self._recording.active

    def track_span(self, track_id: int) -> tuple[int, int, int] | None:
        """First and last frame index of a track and the frames it was seen in, or None
        when the tracker does not know it (never seen, or reset since)."""
        return self._tally.span(track_id)

    def take(self) -> Packet | None:
        """The newest packet, or None when it was already taken."""
        return self._mailbox.take()

    def open(self, uri: str) -> None:
        """Open ``uri`` in place of the media open now. It is opened on a thread of its own
        first, and what plays plays on until it is; when it cannot be opened, that media
        stays as it was (a lost stream reconnecting) and ``failed`` says why."""
        opening = Ahead(lambda: checked(open_media(uri)),
                        on_done=lambda _: self._done_ahead(command),
                        close=lambda media: media.close(), name="drivevision-viewer-open")
        command = ("open", (uri, opening))
        self._queue(command, interrupt=False)
        opening.start()

    def load(self, config: DetectorConfig, *, seek: int | None = None,
             play: tuple[float, bool] | None = None) -> None:
        """Load ``config``'s detector on a thread of its own (importing torch and reading the
        weights take seconds): what plays plays on with the detector before until it is
        loaded; then frame ``seek`` is detected again with it, and the playing goes on as
        ``play`` (speed, every frame) says. When it cannot load, nothing was stopped:
        ``load_failed``, and ``failed`` says why."""
        with self._cond:
            self.loading += 1
        self.busy.emit(True)
        self.status.emit(f"loading {config.weights_label} on "
                         f"{config.engine}/{config.device}/{config.precision} ...")

        def done(_: Ahead) -> None:
            with self._cond:
                self.loading -= 1
            self.busy.emit(self.loading > 0)
            self._done_ahead(command)

        loading = Ahead(lambda: build_detector(config), on_done=done,
                        name="drivevision-viewer-load")
        command = ("load", (config, seek, play, loading))
        self._queue(command, interrupt=False)
        loading.start()

    def _done_ahead(self, command: tuple[str, tuple]) -> None:
        """On the thread of the command's ``Ahead`` (its last argument), done: it stops what
        runs, for the queued command to run; one that failed is taken back from the queue
        and run here, only to raise its error (nothing was stopped)."""
        if command[1][-1].error is None:
            self._interrupt()
        elif self._withdraw(command):  # else the thread took it: it raises the error
            self._execute(*command)

    def _interrupt_locked(self) -> None:
        if self._pace_stop is not None:
            self._pace_stop.set()
        if self._pipeline is not None:
            self._pipeline.abort()

    # -- worker thread ---------------------------------------------------------------------

    def _finish(self) -> None:
        with self._cond:
            left, self._pending = list(self._pending), deque()
        for _, args in left:
            if args and isinstance(args[-1], Ahead):
                args[-1].drop()
        self._close_recorder()
        if self.media is not None:
            self.media.close()

    def _do_load(self, config: DetectorConfig, seek: int | None,
                 play: tuple[float, bool] | None, loading: Ahead) -> None:
        """Run the detector ``loading`` loaded (``Worker.load``); raise why it did not load."""
        try:
            detector = loading.result(self._quit)
        except Exception:
            self.load_failed.emit()
            raise
        if detector is None:  # the viewer is closing
            return
        self.detector = detector
        self._reset_run()
        self.detector_ready.emit(detector.names, detector.loaded.name)
        self.status.emit(f"detector ready: {detector.loaded.name}, {detector.describe()}")
        if seek is not None:
            self._do_seek(seek, play)
        elif play is not None:
            self._do_play(*play)

    def _do_open(self, uri: str, opening: Ahead) -> None:
        """Put the media ``opening`` opened (``uri``) in place of the media open now (a
        recording of it ends); raise why it could not be opened (then nothing was stopped)."""
        media = opening.result(self._quit)
        if media is None:  # the viewer is closing
            return
        self._close_recorder()
        if self.media is not None:
            self.media.close()
        self.media = media
        self.position, self._played_live, self._notes_told, self._shown = -1, False, 0, None
        self._reset_run()
        self._mailbox.clear()  # the last source's frame, not taken: not a display drop
        self.opening += 1
        seekable = isinstance(self.media, SeekableSource)
        self.opened.emit(MediaInfo(uri, self.media.fps, self.media.frame_count, seekable,
                                   bool(self.media.live), self.opening))
        if seekable and self.detector is not None:
            self._show(0)

    def _do_seek(self, index: int, play: tuple[float, bool] | None = None) -> None:
        """Show frame ``index``, then play on from it with ``play`` (speed, every frame)."""
        self._show(index)
        if play is not None:
            self._do_play(*play)

    def _do_step(self, delta: int) -> None:
        self.playing.emit(False)
        self._show(max(0, self.position + delta))

    def _do_pause(self) -> None:
        self.playing.emit(False)

    def _do_record(self, video: str | None, jsonl: str | None) -> None:
        self._close_recorder()
        self._need_detector()
        fps = (self.media.fps if self.media is not None else None) or 30.0
        on_show = None if self._shown is None else (self._shown, self.overlay)
        self.status.emit(self._recording.start(video, jsonl, fps=fps, names=self.detector.names,
                                               on_show=on_show))
        self.recording.emit(True)

    def _do_stop_record(self) -> None:
        self._close_recorder()

    def _close_recorder(self) -> None:
        message = self._recording.stop()
        if message is not None:
            self.recording.emit(False)
            self.recorded.emit(message)

    def _need_detector(self) -> None:
        if self.detector is None:
            raise RuntimeError("No detector is loaded (choose a model and press Apply)")

    def _show(self, index: int) -> None:
        """Detect and publish one frame of seekable media (seek, step); a recording gets it,
        lasting until the next frame shown."""
        self._need_detector()
        if not isinstance(self.media, SeekableSource):
            raise RuntimeError("Open a file or folder to seek; live sources only play")
        asked, readable = index, self.media.readable_count()
        if readable:  # the frame count, or fewer where reading found the file ends early
            index = min(index, readable - 1)
        frame = self.media.read_closest(index, -1 if index < self.position else 1)
        if self.tracking and self.position >= 0 and frame.index != self.position + 1:
            self._reset_tracks(f"frame {frame.index + 1} does not follow frame "
                               f"{self.position + 1}")
        detections, ms = self.detector.infer_timed([frame.image])
        result = Result(frame, detections[0], {"inference": sum(ms.values())})
        for stage in self.tracking:
            result = stage(result)
        self._publish(result, None)
        self._recording.write(result, self.overlay, self.detector.names)
        cut = readable_count(self.media)
        if cut and asked >= cut:  # a seek or step past where the media was found to end
            self.warned.emit(f"{self.media.uri}: frame {asked + 1} cannot be shown, none from "
                             f"{cut + 1} on decodes; showing frame {frame.index + 1}")

    def _do_play(self, speed: float = 1.0, every_frame: bool = False) -> None:
        self._need_detector()
        if self.media is None:
            raise RuntimeError("Open a file, folder, camera or stream first")
        self._reopen_spent_live()
        start = self.position + 1
        seekable = isinstance(self.media, SeekableSource)
        count = self.media.readable_count() if seekable else self.media.frame_count
        if count and start >= count:  # at the end: from the first frame again
            start = 0
            if self.tracking:
                self._reset_tracks("playing again from the first frame")
        source, stop = self.media, threading.Event()
        if seekable:
            source = Paced(self.media, start, speed, stop)
        newest = bool(self.media.live) or not every_frame
        pipeline = Pipeline(source, self.detector, stages=self.tracking,
                            config=PipelineConfig(frames="newest" if newest else "all"))
        with self._cond:
            if self._interrupting_pending():
                return
            self._pipeline, self._pace_stop = pipeline, stop
        self.playing.emit(True)
        self._played_live = bool(self.media.live)
        try:
            self._consume(pipeline, stop, source_time=not newest)
        finally:
            with self._cond:
                self._pipeline = self._pace_stop = None
            self.playing.emit(False)

    def _reopen_spent_live(self) -> None:
        """Stopping a pipeline interrupts and releases a live source for good; open it anew.
        When it cannot be opened, the spent one stays, so that Play tries it again."""
        if self._played_live:
            self.media.close()  # released already; a camera may be opened only once at a time
            self.media = open_media(self.media.uri)
            self._played_live, self._notes_told = False, 0

    def _consume(self, pipeline: Pipeline, interrupted: threading.Event, *,
                 source_time: bool) -> None:
        told = self._notes_told
        results = pipeline.results()
        with contextlib.closing(results):
            for result in results:
                self._publish(result, pipeline.stats[0].snapshot())
                self._recording.write(result, self.overlay, self.detector.names,
                                      source_time=source_time,
                                      stream_clock=bool(pipeline.sources[0].stream_clock))
                while (command := self._next_command(inline_only=True)) is not None:
                    self._execute(*command)
        if not interrupted.is_set():
            self.ended.emit()
            self._tell_notes(since=told)  # after "end of ...": what the playing skipped

    def _reset_run(self) -> None:
        self._tally.reset()
        self._mailbox.drops = 0
        self._reset_tracks()

    def _reset_tracks(self, why: str | None = None) -> None:
        """Forget every track and trail; ``why`` (the frames no longer follow each other)
        goes to the status bar."""
        for stage in self.tracking:
            stage.reset()
        self._tally.reset_tracks()
        if why:
            self.status.emit(f"tracker reset: {why}")

    def _publish(self, result: Result, snapshot: Snapshot | None) -> None:
        """Post ``result`` to the GUI; ``snapshot`` is the pipeline's count of its source
        (None for a single frame shown on a seek or step)."""
        self._tell_notes()
        overlay = replace(self.overlay, highlight=None)
        image = result.frame.image.copy()
        shown = visible(result.detections, overlay)
        qimage = to_qimage(draw(image, shown, self.detector.names, overlay, result.trails))
        self.position, self._shown = result.frame.index, result
        self._tally.add(result.frame.index, shown, result.detections,
                       replaces=isinstance(self.media, SeekableSource))  # live: never again
        stats = {"input_fps": snapshot.input_fps if snapshot else None,  # no rate to tell
                 "detector_fps": snapshot.detector_fps if snapshot else None,
                 "dropped": (snapshot.dropped if snapshot else 0) + self._mailbox.drops,
                 "frame_count": (self.media.frame_count if self.media else None) or 0,
                 "readable_count": readable_count(self.media)}
        frame = replace(result.frame, image=image)  # every other field kept (file, ...)
        if self._mailbox.post(Packet(frame, result.detections, shown, qimage,
                                     dict(result.timings), stats, overlay,
                                     Counter(self._tally.counts), self.opening, result.trails)):
            self.frame_ready.emit()  # else the GUI has not taken the last one yet

    def _tell_notes(self, since: int | None = None) -> None:
        """The media's notes (images skipped ...) not told yet, or all from number ``since``,
        as ``warned``."""
        notes = self.media.notes if self.media is not None else []
        new = notes[self._notes_told if since is None else since:]
        self._notes_told = len(notes)
        if new:
            more = f" (and {len(new) - 1} more)" if len(new) > 1 else ""
            self.warned.emit(new[-1] + more)


def build_detector(config: DetectorConfig):
    """The detector ``config`` asks for; the overlay applies conf, classes and agnostic NMS,
    so a slider redraws at once."""
    from drivevision.detector import Detector

    return Detector.from_config(internal_config(config), progress=False)


def readable_count(media: Source | None) -> int:
    """The frames of ``media`` up to the last that can be read, where reading found fewer than
    its frame count (``SeekableSource.readable_count``: a video that stops decoding early,
    damaged last images); else 0."""
    count = media.readable_count() if isinstance(media, SeekableSource) else None
    return count if count and count != media.frame_count else 0
