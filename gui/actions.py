"""Menus, toolbar, keyboard shortcuts and the small dialogs behind them."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from PyQt6.QtCore import QStandardPaths, Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QFileDialog, QInputDialog, QMainWindow

from drivevision.io.uri import display_uri

VIDEO_FILTER = ("Video and images (*.mp4 *.mkv *.avi *.mov *.webm *.m4v *.jpg *.jpeg *.png "
                "*.bmp *.tif *.tiff *.webp);;All files (*)")

SHORTCUTS = (  # (key, what it does), shown in the Help menu and in docs/viewer.md
    ("Space", "play / pause"),
    ("Right / Left", "one frame forward / back (files and folders)"),
    ("+ / -", "faster / slower playback"),
    ("F", "full screen on / off (Esc leaves it)"),
    ("S", "save a screenshot of the frame with its overlay"),
    ("H", "HUD on / off"),
    ("Ctrl+O / Ctrl+Shift+O / Ctrl+L", "open a file / a folder / a camera or stream URL"),
    ("Ctrl+R", "start / stop recording"),
    ("Ctrl+Q", "quit"),
)


def _action(window: QMainWindow, text: str, slot, *keys) -> QAction:
    action = QAction(text, window)
    if keys:
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.triggered.connect(lambda _checked=False: slot())
    window.addAction(action)
    return action


def install(window) -> None:
    """Create the window's menus, toolbar and shortcuts."""
    menu = window.menuBar()
    file = menu.addMenu("&File")
    file.addAction(_action(window, "&Open file...", partial(open_file, window), "Ctrl+O"))
    file.addAction(_action(window, "Open &folder...", partial(open_folder, window),
                           "Ctrl+Shift+O"))
    file.addAction(_action(window, "Open &camera or stream...", partial(open_uri, window),
                           "Ctrl+L"))
    window.recent_menu = file.addMenu("&Recent sources")
    file.addSeparator()
    file.addAction(_action(window, "&Record...", window.transport.record.toggle, "Ctrl+R"))
    file.addAction(_action(window, "&Save screenshot", partial(quick_screenshot, window), "S"))
    file.addAction(_action(window, "Save screenshot &as...",
                           partial(screenshot_as, window)))
    file.addSeparator()
    file.addAction(_action(window, "&Quit", window.close, "Ctrl+Q"))
    play = menu.addMenu("&Playback")
    window.play_action = _action(window, "Play / pause", window.toggle_play, "Space")
    play.addAction(window.play_action)
    set_playable(window, False)
    play.addAction(_action(window, "Step forward", partial(window.step, 1), "Right"))
    play.addAction(_action(window, "Step back", partial(window.step, -1), "Left"))
    play.addAction(_action(window, "Faster", partial(window.transport.change_speed, 1),
                           "+", "="))
    play.addAction(_action(window, "Slower", partial(window.transport.change_speed, -1), "-"))
    view = menu.addMenu("&View")
    view.addAction(_action(window, "&Full screen", partial(toggle_full_screen, window), "F"))
    _action(window, "Leave full screen", window.showNormal, "Esc")
    view.addAction(_action(window, "&HUD", partial(toggle_hud, window), "H"))
    panel = _action(window, "Side &panel", lambda: None)
    panel.setCheckable(True)
    panel.setChecked(True)
    panel.toggled.connect(lambda on: window.splitter.widget(1).setVisible(on))
    view.addAction(panel)
    help_menu = menu.addMenu("&Help")
    help_menu.addAction(_action(window, "&Keyboard shortcuts", partial(show_shortcuts, window)))
    bar = window.addToolBar("Main")
    bar.setObjectName("main-toolbar")
    for action in file.actions()[:3]:
        bar.addAction(action)


def set_playable(window, playable: bool) -> None:
    """Play (its menu entry, Space, the transport bar's button) is greyed out, its tooltip
    saying why, while nothing is open to play."""
    tip = ("Play / pause (Space)" if playable
           else "Nothing to play yet: open a file, folder, camera or stream first")
    for control in (window.play_action, window.transport.play):
        control.setEnabled(playable)
        control.setToolTip(tip)


def refresh_recent(window) -> None:
    window.recent_menu.clear()
    recent = window.settings.recent()
    for uri in recent:
        action = window.recent_menu.addAction(display_uri(uri))  # opens the URL as given
        action.triggered.connect(partial(window.open_source, uri))
    window.recent_menu.setEnabled(bool(recent))


def _start_dir(window) -> str:
    return window.settings.get("last_dir", str(Path.home()), str)


def open_file(window) -> None:
    path, _ = QFileDialog.getOpenFileName(window, "Open video or image", _start_dir(window),
                                          VIDEO_FILTER)
    if path:
        window.settings.set("last_dir", str(Path(path).parent))
        window.open_source(path)


def open_folder(window) -> None:
    path = QFileDialog.getExistingDirectory(window, "Open a folder of images", _start_dir(window))
    if path:
        window.settings.set("last_dir", path)
        window.open_source(path)


def open_uri(window) -> None:
    uri, ok = QInputDialog.getText(window, "Open camera or stream",
                                   "Camera index (0), device (/dev/video0) or URL "
                                   "(rtsp://..., http://...):")
    if ok and uri.strip():
        window.open_source(uri.strip())


def dropped_uri(data) -> str | None:
    """What a drop (``QMimeData``) names: its first URL (a local path if it is a file) or its
    text; None when it has neither."""
    if data.hasUrls() and data.urls():
        url = data.urls()[0]
        return url.toLocalFile() if url.isLocalFile() else url.toString()
    return data.text() if data.hasText() else None


def ask_recording(window) -> bool:
    """Ask where to record; the detections go beside the video as .jsonl. False if cancelled."""
    start = str(Path(_start_dir(window)) / "drivevision-recording.mp4")
    path, _ = QFileDialog.getSaveFileName(window, "Record annotated video", start,
                                          "Video (*.mp4 *.mkv *.avi *.mov)")
    if not path:
        return False
    video = Path(path) if Path(path).suffix else Path(path).with_suffix(".mp4")
    window.start_recording(str(video), str(video.with_suffix(".jsonl")))
    return True


def screenshot_dir(window) -> Path:
    """The folder last chosen in *Save screenshot as*, else the user's Pictures folder."""
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return Path(window.settings.get("screenshot_dir", pictures or str(Path.home()), str))


def quick_screenshot(window) -> None:
    """S: save to the screenshot folder (made when missing; asked for when it cannot be),
    named with the frame number the HUD shows (from 1)."""
    number = window.packet.frame.index + 1 if window.packet is not None else 0
    folder = screenshot_dir(window)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        screenshot_as(window)  # the folder chosen there is used from then on
        return
    window.save_screenshot(folder / f"drivevision-{time.strftime('%Y%m%d-%H%M%S')}"
                                    f"-frame{number}.png")


def screenshot_as(window) -> None:
    path, _ = QFileDialog.getSaveFileName(window, "Save screenshot",
                                          str(screenshot_dir(window) / "drivevision.png"),
                                          "Images (*.png *.jpg)")
    if path and window.save_screenshot(path):
        window.settings.set("screenshot_dir", str(Path(path).parent))


def toggle_full_screen(window) -> None:
    window.showNormal() if window.isFullScreen() else window.showFullScreen()


def toggle_hud(window) -> None:
    window.view.hud_visible = not window.view.hud_visible
    window.view.update()


def show_shortcuts(window) -> None:
    from PyQt6.QtWidgets import QMessageBox

    text = "\n".join(f"{key}: {what}" for key, what in SHORTCUTS)
    QMessageBox.information(window, "Keyboard shortcuts", text)
