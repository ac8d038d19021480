"""The main window: video with overlay and HUD, transport bar, side panel, menus, dialogs.

Widgets only paint and send commands; detection runs on the worker thread (``gui.worker``).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QSettings, QTimer
from PyQt6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QImage
from PyQt6.QtWidgets import QMainWindow

from drivevision.config import MODELS, DetectorConfig
from drivevision.io.uri import display_uri
from drivevision.labels import counted, resolve_classes
from gui import actions, layout
from gui.hud import Hud
from gui.messages import Messages
from gui.overlay import OverlaySettings, draw, to_qimage, visible
from gui.packets import MediaInfo, Packet
from gui.settings import ViewerSettings
from gui.worker import Worker, readable_count


class MainWindow(QMainWindow):
    """The viewer.

    Args:
        config: detector settings (the same as ``drivevision detect``'s options); ``conf``
            and ``classes`` set the overlay's initial threshold and class toggles.
        detector: an already built detector (then ``config`` does not load one).
        settings: where to remember things; default the user's QSettings.
        tracking: the tracker stages (``drivevision.cli.tracking.track_stages(args)``), or
            nothing for no tracking. Clicking a tracked box selects its track.
    """

    close_timeout_s = 15.0  # how long closing waits for the worker's detector call to finish

    def __init__(self, config: DetectorConfig | None = None, *, detector=None,
                 settings: QSettings | None = None, tracking=()):
        super().__init__()
        self.config = config or DetectorConfig()
        self.loaded: DetectorConfig | None = None  # the detector running, once one is
        self._loads: deque[DetectorConfig] = deque()  # asked for, not loaded or failed yet
        self.settings = ViewerSettings(settings)
        self.packet: Packet | None = None
        self.media: MediaInfo | None = None
        self.names: tuple[str, ...] = ()
        self.is_playing = False
        self.highlight: int | None = None
        self.selected_track: int | None = None
        self._play_on_open = False
        layout.build(self, self.config)
        self.messages = Messages(self)
        self._recording_since: float | None = None
        self._recording_clock = QTimer(self)
        self._recording_clock.timeout.connect(self._show_recording_time)
        self.hud = Hud(self.view, self.messages, self, on_outage=self.panel.show_outage)
        actions.install(self)
        self._connect_controls()
        self.worker = Worker(detector, tracking=tracking)
        self.panel.overlay.set_tracking(bool(self.worker.tracking))
        self._connect_worker()
        self.worker.start()
        layout.restore(self, self.settings)
        actions.refresh_recent(self)
        if detector is not None:
            self._detector_ready(detector.names)
        else:
            self.load_detector(self.config)

    # -- wiring ----------------------------------------------------------------------------

    def _connect_controls(self) -> None:
        self.panel.overlay.changed.connect(self._overlay_changed)
        self.panel.detection_selected.connect(self._select_detection)
        self.panel.detector.apply_clicked.connect(self._apply_detector)
        self.view.clicked.connect(self._clicked_at)
        t = self.transport
        t.play.clicked.connect(self.toggle_play)
        t.back.clicked.connect(lambda: self.step(-1))
        t.forward.clicked.connect(lambda: self.step(1))
        t.seek.valueChanged.connect(self._seek_moved)
        t.seek.sliderReleased.connect(lambda: self._seek_moved(t.seek.value()))
        t.speed.currentIndexChanged.connect(self._playback_changed)
        t.every_frame.toggled.connect(self._playback_changed)
        t.record.toggled.connect(self._record_toggled)

    def _connect_worker(self) -> None:
        w = self.worker
        w.frame_ready.connect(self._frame_ready)
        w.opened.connect(self._opened)
        w.playing.connect(self._playing)
        w.ended.connect(self._ended)
        w.failed.connect(self.show_error)
        w.status.connect(self.messages.tell)
        w.warned.connect(self.messages.warn)
        w.busy.connect(self.progress.setVisible)
        w.detector_ready.connect(self._detector_ready)
        w.load_failed.connect(self._load_failed)
        w.recording.connect(self._recording_changed)
        w.recorded.connect(lambda text: self.messages.tell(text, 15000))

    # -- commands (also used by menus, shortcuts and tests) --------------------------------

    def open_source(self, uri: str, *, play: bool = False) -> None:
        """Open a file, folder, camera index or stream URL (the worker reports errors; what
        was playing plays on when it cannot be opened).

        Live sources start playing once open; files and folders too when ``play``.
        """
        uri = str(uri).strip()
        if not uri:
            return
        self._play_on_open = play
        self.messages.opening(uri)
        self.worker.open(uri)

    def load_detector(self, config: DetectorConfig) -> None:
        """Load ``config``'s detector; the frame on show (a file's first, when none could be
        detected yet) is detected again with it, and what was playing plays on."""
        self.config = config
        play = self._playback() if self.is_playing else None
        self._loads.append(config)
        seek = None
        if self.media is not None and self.media.seekable:
            seek = 0 if self.packet is None else self.packet.frame.index
        self.worker.load(config, seek=seek, play=play)

    def toggle_play(self) -> None:
        self.pause() if self.is_playing else self.play()

    def play(self) -> None:
        self.worker.send("play", *self._playback())

    def _playback(self) -> tuple[float, bool]:
        """How to play, as the transport bar says: speed, and every frame or not."""
        return self.transport.speed_value(), self.transport.every_frame.isChecked()

    def pause(self) -> None:
        self.worker.send("pause")

    def step(self, delta: int) -> None:
        if self.media is not None and self.media.seekable:
            self.worker.send("step", delta)

    def seek(self, index: int) -> None:
        if self.media is not None and self.media.seekable:
            self.worker.send("seek", index, self._playback() if self.is_playing else None)

    def start_recording(self, video: str | None, jsonl: str | None) -> None:
        self.worker.send("record", video, jsonl)

    def stop_recording(self) -> None:
        self.worker.send("stop_record")

    def save_screenshot(self, path: str | Path) -> bool:
        """Save the current frame with its overlay at the frame's own resolution."""
        image = self.rendered_frame()
        if image.isNull():
            self.messages.tell("no frame to save yet", 5000)
            return False
        if not image.save(str(path)):
            self.show_error(f"Cannot save a screenshot to {path} (expected a writable .png "
                            "or .jpg path)")
            return False
        self.messages.tell(f"saved {path}")
        return True

    def rendered_frame(self) -> QImage:
        """The frame as painted: current overlay on the current packet, RGB888."""
        return self.view.image()

    def show_error(self, message: str) -> None:
        """Status bar and a dialog; while one dialog is open, later errors go to the bar."""
        self.messages.error(message)

    # -- worker results --------------------------------------------------------------------

    def _frame_ready(self) -> None:
        packet = self.worker.take()
        if packet is None:
            return
        self.packet, self.highlight = packet, None
        overlay = self.overlay_settings()
        if overlay == packet.overlay:
            self.view.set_image(packet.image)
        else:
            self._redraw()
        latency = (time.monotonic() - packet.frame.captured_at) * 1000.0
        self._show_panel(packet, latency)
        if self.selected_track is not None:
            self._follow_track()

    def _show_panel(self, packet: Packet, latency: float) -> None:
        frame, stats = packet.frame, packet.stats
        shown = visible(packet.detections, self.overlay_settings())
        count = int(stats.get("frame_count", 0))
        fps = self.media.fps if self.media else None
        self.transport.set_position(frame.index, count, frame.timestamp_ms, fps,
                                    int(stats.get("readable_count", 0)))
        self.panel.show_stats(stats, packet.timings, latency)
        self.panel.show_counts(shown, packet.run_counts, self.names)
        self.panel.show_detections(shown, self.names)
        self.hud.show(packet, shown, latency)

    def overlay_settings(self) -> OverlaySettings:
        return self.panel.overlay.settings()

    def _redraw(self) -> None:
        if self.packet is None:
            return
        overlay = self.panel.overlay.settings(self.highlight)
        shown = visible(self.packet.detections, overlay)
        self.view.set_image(to_qimage(draw(self.packet.frame.image, shown, self.names, overlay,
                                           self.packet.trails)))

    def _overlay_changed(self) -> None:
        self.worker.overlay = self.overlay_settings()
        self.highlight = None
        self._redraw()
        if self.packet is not None:
            shown = visible(self.packet.detections, self.overlay_settings())
            self.panel.show_detections(shown, self.names)
            self.panel.show_counts(shown, self.packet.run_counts, self.names)
            self.hud.recount(self.packet, shown)

    def _select_detection(self, row: int) -> None:
        self.highlight = row if row >= 0 else None
        self._select_track(row)
        self._redraw()

    def _select_track(self, row: int) -> None:
        """The track of the shown detection ``row`` becomes the selected one (none for -1)."""
        shown = None if self.packet is None else visible(self.packet.detections,
                                                         self.overlay_settings())
        tracked = shown is not None and shown.track_ids is not None and 0 <= row < len(shown)
        self.selected_track = int(shown.track_ids[row]) if tracked else None
        self._show_track()

    def _follow_track(self) -> None:
        """On a new frame: highlight the selected track again where it is, update its span."""
        shown = visible(self.packet.detections, self.overlay_settings())
        rows = ([] if shown.track_ids is None
                else np.flatnonzero(shown.track_ids == self.selected_track).tolist())
        if rows:
            self.panel.detections.setCurrentRow(rows[0])  # selects it again
        else:
            self._show_track()

    def _show_track(self) -> None:
        span = (None if self.selected_track is None
                else self.worker.track_span(self.selected_track))
        if span is None:  # none selected, or the tracker was reset
            self.selected_track = None
            self.panel.track_info.clear()
            return
        first, last, seen = span
        self.panel.track_info.setText(
            f"track #{self.selected_track}: first frame {first + 1}, last frame {last + 1}, "
            f"{counted(last - first + 1, 'frame')} long (seen in {seen})")

    def _clicked_at(self, x: float, y: float) -> None:
        if self.packet is None:
            return
        shown = visible(self.packet.detections, self.overlay_settings())
        inside = [(float((b[2] - b[0]) * (b[3] - b[1])), i) for i, b in enumerate(shown.xyxy)
                  if b[0] <= x <= b[2] and b[1] <= y <= b[3]]
        self.panel.detections.setCurrentRow(min(inside)[1] if inside else -1)
        if inside:
            self.panel.show_table("detections")  # the box clicked, selected in its row

    def _opened(self, info: MediaInfo) -> None:
        self.media = info
        if self.packet is not None and self.packet.opening != info.opening:
            self.packet = None  # the last source's frame (the new one's may already be here)
        self.transport.seek.setEnabled(info.seekable)
        self.transport.back.setEnabled(info.seekable)
        self.transport.forward.setEnabled(info.seekable)
        self.transport.set_live(info.live)
        actions.set_playable(self, True)
        self.setWindowTitle(f"DriveVision - {display_uri(info.uri)}")
        self.settings.add_recent(info.uri)
        actions.refresh_recent(self)
        self.hud.watch(lambda: self.worker.media, info.uri, info.live)
        self.messages.opened(info)
        play, self._play_on_open = self._play_on_open or not info.seekable, False
        if play:
            self.play()

    def _ended(self) -> None:
        """Played to the end, which may be found only now: where a video stops decoding."""
        self.messages.ended(self.media)
        self.transport.limit(readable_count(self.worker.media))

    def _playing(self, playing: bool) -> None:
        self.is_playing = playing
        self.transport.set_playing(playing)
        if not playing:
            self.hud.stopped()

    def _detector_ready(self, names, model: str | None = None) -> None:
        self.names = tuple(names)
        self.loaded = self._loads.popleft() if self._loads else self.config
        if model in MODELS:  # a checkpoint's own architecture wins over the one asked for
            self.loaded = replace(self.loaded, model=model)
            if not self._loads:
                self.config = replace(self.config, model=model)
                self.panel.detector.model.setCurrentText(model)
        try:
            enabled = resolve_classes(self.config.classes, self.names)
        except ValueError as e:
            self.show_error(str(e))
            enabled = None
        self.panel.overlay.set_classes(self.names, enabled)

    def _load_failed(self) -> None:
        """The detector asked for did not load (the error dialog says why): the one running
        stays, and the panel shows it again (with none loaded yet, it keeps what was asked)."""
        if self._loads:
            self._loads.popleft()
        if self.loaded is not None and not self._loads:
            self.config = self.loaded
            layout.show_detector(self, self.loaded)

    def _recording_changed(self, on: bool) -> None:
        self._recording_since = time.monotonic() if on else None
        self._recording_clock.start(250) if on else self._recording_clock.stop()
        self._show_recording_time()

    def _show_recording_time(self) -> None:
        since = self._recording_since
        self.transport.set_recording(None if since is None else time.monotonic() - since)

    # -- control callbacks -----------------------------------------------------------------

    def _seek_moved(self, value: int) -> None:
        moved = self.packet is None or value != self.packet.frame.index
        if moved and not self.transport.seek.isSliderDown():
            self.seek(value)

    def _playback_changed(self) -> None:
        if self.is_playing:
            self.play()  # restarts from the current frame at the new speed

    def _record_toggled(self, on: bool) -> None:
        if not on:
            self.stop_recording()
            return
        self._show_recording_time()  # pressed only once the worker has the files open
        actions.ask_recording(self)

    def _apply_detector(self) -> None:
        try:
            config = replace(self.config, **self.panel.detector.values())
        except ValueError as e:
            layout.show_detector(self, self.loaded or self.config)
            self.show_error(str(e))
            return
        self.load_detector(config)

    # -- window events ---------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls() or event.mimeData().hasText():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        uri = actions.dropped_uri(event.mimeData())
        if uri:
            self.open_source(uri)

    def nothing_to_finish(self) -> bool:
        """True while the worker only loads a detector: closing need not wait for it."""
        return self.worker.nothing_to_finish()

    def save_layout(self) -> None:
        """Remember the window's geometry and the overlay and playback choices."""
        layout.save(self, self.settings)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.save_layout()
        if self.worker.stop(self.close_timeout_s):
            event.accept()
            return
        self.messages.tell("still finishing a detector call; close again in a moment", 0)
        event.ignore()
