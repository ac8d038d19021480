"""The ``Sink`` base every output builds on, and the text outputs: JSONL and CSV.

Each sink is a context manager. Crash safety: every JSONL line and CSV frame is flushed to
the operating system as it is written and fsynced at least once a second (``_Syncer``, for
every open output), so a process killed by SIGKILL or a power cut loses only about its last
second. While the run lasts an output is written under ``.NAME.part.PID.EXT`` beside its
target (see ``drivevision.io.claims``, which also claims it for the run) and moved into
place when closed, so an existing file is never clobbered by a failed run. A run that fails
leaves what it wrote as ``<name>.partial<suffix>``; one stopped part way (Ctrl-C:
``interrupted``) is complete and takes its name, unless a file of that name exists: that one
is the user's and stays, and the run's output goes beside it as ``<name>.partial<suffix>``
(never over an earlier ``.partial`` either: ``<name>.partial2<suffix>``, ...). Outputs that
are not regular files (``-``, ``/dev/null``, a FIFO) are written straight
through. A sink never closed (dropped, or still open at exit) is finished as a stopped
run's output is, with a ``ResourceWarning`` (``drivevision.io.unclosed``). The annotated
video is in ``drivevision.io.video_sink``.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import threading
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import av
import numpy as np

from drivevision.detections import Detections
from drivevision.errors import SinkError, WriteError, unwritable
from drivevision.io import unclosed
from drivevision.io.claims import (
    Claim,
    hold_part,
    is_stream,
    keep_beside,
    part_name,
    target_of,
    whole_lines,
)
from drivevision.io.frames import Frame
from drivevision.labels import name_of

SYNC_SECONDS = 1.0


class _Syncer:
    """One thread that fsyncs every open output once a second while any is open, so a power
    cut loses at most the last second (a flush alone survives only a killed process)."""

    def __init__(self):
        self._fds: set[int] = set()
        # reentrant, as every lock a sink takes to close: a sink dropped in a reference cycle
        # is finished (``unclosed``) by a collection that may start in any thread holding it
        self._mutex = threading.RLock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, fd: int) -> None:
        with self._mutex:
            self._fds.add(fd)
            if self._thread is None or not self._thread.is_alive():
                self._wake.clear()
                self._thread = threading.Thread(target=self._loop, name="drivevision-fsync",
                                                daemon=True)
                self._thread.start()

    def remove(self, fd: int) -> None:
        """Stop syncing ``fd`` (before it is closed); syncs it once more first."""
        with self._mutex:
            self._fds.discard(fd)
            with suppress(OSError):
                os.fsync(fd)
            if not self._fds:
                self._wake.set()

    def _loop(self) -> None:
        while not self._wake.wait(SYNC_SECONDS):
            with self._mutex:
                for fd in tuple(self._fds):  # one finished meanwhile: see _mutex
                    with suppress(OSError):
                        os.fsync(fd)
        with self._mutex:
            if self._fds:  # one added while this thread was ending: keep going for it
                self._wake.clear()
                self._thread = threading.Thread(target=self._loop, name="drivevision-fsync",
                                                daemon=True)
                self._thread.start()


_SYNCER = _Syncer()
_CLOSING = threading.RLock()  # one close per sink, whichever thread (or finalizer) asks


class Sink:
    """Writes results to ``path``; ``needs_annotated`` asks the pipeline to render frames.

    An output that is not a file (the MJPEG server's ``ServeSink``) has no ``path``
    (None): closing it only finishes it. ``path`` may be ``-`` (stdout, for text outputs),
    a device or FIFO (written straight through) or a symbolic link (its target is written,
    through a part file in the target's folder). Raises ``SinkError`` when another run is
    writing the same output. ``frames`` counts the frames written; ``notes`` collects what
    the user should hear at the end; ``segments`` lists the finished pieces of an output
    recorded in pieces (``live_sinks.Segmented``), empty for one file.

    Close it (``close()``, or leave its ``with``) to put the output in place, from any
    thread. One never closed, collected or still open at exit, is finished as a run stopped
    part way (``interrupted``): it takes its name, or goes beside a file of that name as
    ``NAME.partial.EXT``, with a ``ResourceWarning`` saying where (``unclosed``).
    """

    needs_annotated = False
    keeps_empty = True  # a finished output with no frame is still one (an empty JSONL)
    interrupted = False  # stopped part way: an existing file of its name is kept (``_move``)
    lines = False  # a text file of lines: one that failed is cut after its last whole line

    def __init__(self, path: str | os.PathLike | None = None):
        self.notes: list[str] = []
        self.segments: list[Path] = []
        self.final_path: Path | None = None
        self.frames = 0
        self._closed = False
        self._finalizer = None  # finishes the output of a sink never closed (_watch)
        self._claim: Claim | None = None
        self._hold: int | None = None
        self._failure: SinkError | None = None
        self.path = self.tmp = self.target = None
        self.stream = False
        if path is None:
            return
        self.path = Path(path)
        self.stream = is_stream(path)
        if self.stream:
            self.target = self.tmp = self.path
            self._watch()
            return
        self.target = target_of(path)
        if self.target.is_dir():
            raise SinkError(f"Output {path} is a folder; give a file name")
        if not self.target.parent.is_dir():
            raise SinkError(f"Output folder {self.target.parent} does not exist")
        self._claim = Claim(self.target)
        self.tmp = part_name(self.target)
        try:
            self._hold = hold_part(self.tmp)
        except OSError as e:
            self._claim.release()
            raise SinkError(f"Cannot write {path}: {e.strerror or e}") from e
        _SYNCER.add(self._hold)
        self._watch()

    def write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        """Write one frame's result (``annotated`` is the drawn frame, or None); a failure
        (a full disk) is a ``SinkError`` naming the output, not its part file."""
        try:
            self._write(frame, detections, annotated)
        except SinkError:
            raise  # names its file already (one of a folder output's)
        except (OSError, av.FFmpegError) as e:
            raise self._failed(e) from e
        self.frames += 1

    def _failed(self, error: BaseException) -> WriteError:
        """The SinkError for ``error``, naming the output and why (``unwritable``); it
        names the ``.partial`` file too once the output is closed (``SinkError.kept``).
        The first failure is the one to tell: closing after it often fails the same way."""
        if self._failure is None:
            self._failure = WriteError(f"Cannot write {self.path}: {unwritable(error)}", error)
        return self._failure

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush and close the temporary file."""

    def _complete(self) -> None:
        """Last touches to a finished output before it moves into place."""

    def close(self, complete: bool = True) -> None:
        """Move the output into place, or keep it as ``.partial`` when ``complete`` is False.

        An incomplete output with no frame in it is deleted. A failure to finish the file
        (e.g. a full disk) still keeps what was written as ``.partial``, with a note; that
        error is raised only when ``complete`` is True: an incomplete close follows an error
        that is already on its way to the caller, and a second one would only bury it.
        Only the first call closes, from whichever thread it comes.
        """
        with _CLOSING:
            if self._closed:
                return
            self._closed = True
        self._unwatch()
        self._close(complete)

    def _watch(self) -> None:
        """Have the output finished should the sink never be closed (``unclosed``)."""
        self._finalizer = unclosed.watch(self)

    def _unwatch(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()

    def _close(self, complete: bool) -> None:
        try:
            self._finish()
            if complete and not self.stream:
                self._complete()
        except (OSError, av.FFmpegError) as e:
            told = self._failure is not None  # a write failed: that error is on its way
            failure = self._failed(e)
            self._release(complete=False)
            if not told:  # not a write's failure, which is already on its way
                self.notes.append(str(failure))
            if complete:
                raise failure from e
            return
        self._release(complete)

    def _release(self, complete: bool) -> None:
        self._unwatch()  # closed, or never made whole (a text output that cannot open)
        try:
            if not self.stream:
                self._move(complete)
        except OSError as e:  # the folder turned read-only: the part file is all there is
            failure = self._failed(e)
            if self.tmp is not None and self.tmp.exists():
                failure.kept = self.final_path = self.tmp
            raise failure from e
        finally:
            if self._hold is not None:
                _SYNCER.remove(self._hold)
                os.close(self._hold)
                self._hold = None
            if self._claim is not None:
                self._claim.release()

    def _move(self, complete: bool) -> None:
        if self.tmp is None:
            return
        empty_is_nothing = not complete or not self.keeps_empty
        if not self.tmp.exists() or (self.frames == 0 and empty_is_nothing):
            self.tmp.unlink(missing_ok=True)
            return
        if complete and not (self.interrupted and self.target.exists()):
            os.replace(self.tmp, self.target)
            self.final_path = self.target
            return
        if complete and self.frames == 0:  # stopped before its first frame: nothing to keep
            self.tmp.unlink(missing_ok=True)
            return
        if not complete and self.lines:
            whole_lines(self.tmp)
        self.final_path = keep_beside(self.tmp, self.target)
        if self._failure is not None:
            self._failure.kept = str(self.final_path)
        elif not complete:
            self.notes.append(f"{self.path}: the run failed; what was written is kept in "
                              f"{self.final_path}")
        if complete:
            self.notes.append(f"{self.path} was left as it was (the run was interrupted); "
                              f"this run's {_frames(self.frames)} are in {self.final_path}")

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.interrupted = True
        self.close(complete=exc_type is None or self.interrupted)


def _frames(n: int) -> str:
    return "1 frame" if n == 1 else f"{n} frames"


def open_text(tmp: Path, path: Path, **kwargs):
    """A text output's file: stdout for ``-``, else ``tmp`` (its part file) opened to write."""
    if str(path) == "-":
        return sys.stdout
    try:
        return tmp.open("w", encoding="utf-8", **kwargs)
    except OSError as e:
        raise SinkError(f"Cannot write {path}: {e.strerror or e}") from e


def close_text(file) -> None:
    if file is sys.stdout:
        file.flush()
    elif not file.closed:
        file.close()


def detection_records(detections: Detections, names: Sequence[str]) -> list[dict]:
    """Detections as plain dicts: class id and name, score, box xyxy in original pixels."""
    records = []
    for i in range(len(detections)):
        record = {
            "class_id": int(detections.class_ids[i]),
            "class_name": name_of(int(detections.class_ids[i]), names),
            "score": round(float(detections.scores[i]), 4),
            "box": [round(float(v), 2) for v in detections.xyxy[i]],
        }
        if detections.track_ids is not None:
            record["track_id"] = int(detections.track_ids[i])
        records.append(record)
    return records


class JsonlSink(Sink):
    """One JSON object per input frame, in order, also for frames with no detections; a
    frame of an image input also names its image (``"file"``, from ``Frame.file``). Each
    line states the frame's ``"width"`` and ``"height"`` in pixels, the size its boxes are
    in, so a file scored later against ground truth of another size is told apart."""

    lines = True

    def __init__(self, path: str | os.PathLike, names: Sequence[str]):
        super().__init__(path)
        self.names = names
        try:
            self._file = open_text(self.tmp, self.path)
        except SinkError:
            self._release(complete=False)
            raise

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        line = {"frame": frame.index}
        if frame.file is not None:
            line["file"] = frame.file
        line["timestamp_ms"] = round(frame.timestamp_ms, 3)
        height, width = frame.image.shape[:2]
        line["width"], line["height"] = int(width), int(height)
        line["detections"] = detection_records(detections, self.names)
        if frame.source_id:
            line["source"] = frame.source_id
        self._line(line)

    def _line(self, record: dict) -> None:
        """One line, flushed to the operating system at once (a killed run keeps it)."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def _finish(self) -> None:
        close_text(self._file)


class CsvSink(Sink):
    """One row per detection: frame, timestamp_ms, track_id, class, score, x1, y1, x2, y2;
    with ``files`` (an image input) a trailing ``file`` column names each row's image
    (``Frame.file``). Without it the columns stay as they always were: a video's CSV keeps
    the header its readers check."""

    lines = True
    HEADER = ("frame", "timestamp_ms", "track_id", "class_id", "class_name", "score",
              "x1", "y1", "x2", "y2")

    def __init__(self, path: str | os.PathLike, names: Sequence[str], *, files: bool = False):
        super().__init__(path)
        self.names = names
        self.files = files
        try:
            self._file = open_text(self.tmp, self.path, newline="")
        except SinkError:
            self._release(complete=False)
            raise
        self._writer = csv.writer(self._file)
        self._writer.writerow((*self.HEADER, "file") if files else self.HEADER)

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        file = [frame.file] if self.files else []
        for record in detection_records(detections, self.names):
            self._writer.writerow([frame.index, round(frame.timestamp_ms, 3),
                                   record.get("track_id", -1), record["class_id"],
                                   record["class_name"], record["score"], *record["box"],
                                   *file])
        self._file.flush()

    def _finish(self) -> None:
        close_text(self._file)
