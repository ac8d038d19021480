"""Starting the viewer: a missing display or system library is one line naming what to do,
never Qt's abort; ``drivevision view`` starts it from any folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PyQt6.QtCore")

from gui import preflight  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]  # the checkout under test
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("ldd"),
                                reason="Qt's xcb plugin and ldd: Linux only")


def viewer_env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET", "QT_QPA_PLATFORM",
                        "XDG_SESSION_TYPE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def start_viewer(env: dict[str, str], *args: str, cwd: Path = ROOT):
    return subprocess.run([sys.executable, "-m", "gui", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@linux_only
def test_the_xcb_plugin_finds_every_library_it_links():
    """Fails where the real window could not open (the offscreen tests pass all the same):
    install what the message names (docs/viewer.md)."""
    plugin = preflight.xcb_plugin()
    assert plugin is not None, "PyQt6 has no xcb platform plugin"
    missing = preflight.missing_libraries(plugin)
    assert missing == [], f"Qt's xcb platform plugin cannot load: {preflight.install_hint(missing)}"


@linux_only
def test_missing_xcb_libraries_are_one_line_naming_the_packages(tmp_path):
    real = shutil.which("ldd")
    fake = tmp_path / "ldd"  # this system's ldd, with two libraries gone as on a plain desktop
    fake.write_text(f"#!/bin/sh\n{real} \"$@\" | sed -E "
                    "'s/(libxcb-(icccm|keysyms)[^ ]*) => .*/\\1 => not found/'\n")
    fake.chmod(0o755)
    env = viewer_env(PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}", DISPLAY=":987")
    run = start_viewer(env)
    assert run.returncode == 1, run.stderr  # not -6 (SIGABRT)
    assert run.stderr.strip().splitlines() == [
        "drivevision-gui: Qt's xcb platform plugin cannot load: missing libxcb-icccm.so.4, "
        "libxcb-keysyms.so.1; install them with: sudo apt-get install libxcb-icccm4 "
        "libxcb-keysyms1"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="displays: Linux only")
def test_no_display_is_one_line_saying_so():
    run = start_viewer(viewer_env())
    assert run.returncode == 1, run.stderr
    [line] = run.stderr.strip().splitlines()
    assert "no display" in line and "DISPLAY and WAYLAND_DISPLAY are not set" in line


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="displays: Linux only")
def test_drivevision_view_names_itself_in_its_messages(clip_path):
    run = subprocess.run([sys.executable, "-m", "drivevision", "view", clip_path],
                         cwd=ROOT, env=viewer_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("drivevision view: no display"), line


@linux_only
def test_a_display_no_x_server_answers_on_is_one_line():
    """A stale DISPLAY (an ssh session without X forwarding): Qt would abort (SIGABRT)."""
    run = start_viewer(viewer_env(DISPLAY=":986"))
    assert run.returncode == 1, run.stderr  # not -6 (SIGABRT)
    assert run.stderr.strip().splitlines() == [
        "drivevision-gui: no X server answers on DISPLAY=:986 (start it from a desktop "
        "session, over ssh -X, or under xvfb-run)"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="displays: Linux only")
def test_a_platform_plugin_qt_does_not_have_is_one_line():
    run = start_viewer(viewer_env(QT_QPA_PLATFORM="nosuch"))
    assert run.returncode == 1, run.stderr  # not -6 (SIGABRT)
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("drivevision-gui: Qt has no platform plugin nosuch "
                           "(QT_QPA_PLATFORM=nosuch); it has: ") and "offscreen" in line


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="displays: Linux only")
@pytest.mark.parametrize("platform, todo", [(None, "unset WAYLAND_DISPLAY"),
                                            ("wayland", "set QT_QPA_PLATFORM=xcb")])
def test_a_wayland_display_no_compositor_answers_on_is_one_line(tmp_path, platform, todo):
    """A stale WAYLAND_DISPLAY: Qt would abort (SIGABRT) or print a wall of text."""
    socket_path = tmp_path / "wayland-9"
    run = start_viewer(viewer_env(WAYLAND_DISPLAY=str(socket_path), QT_QPA_PLATFORM=platform))
    assert run.returncode == 1, run.stderr  # not -6 (SIGABRT)
    assert run.stderr.strip().splitlines() == [
        f"drivevision-gui: no Wayland compositor answers on WAYLAND_DISPLAY={socket_path}: "
        f"no socket {socket_path} (start it from a Wayland desktop session, or {todo} to "
        "use X11)"]


def a_file(path: Path) -> Path:
    path.write_text("")
    return path


def closed_socket(path: Path) -> Path:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # the file stays, nothing listens on it
    return path


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="Unix sockets")
@pytest.mark.parametrize("make, why", [
    (lambda path: path, "no socket {}"),
    (a_file, "nothing listens on {}"),
    (closed_socket, "nothing listens on {}"),
], ids=["missing", "a file", "closed socket"])
def test_a_wayland_socket_nothing_answers_on_is_named(tmp_path, make, why):
    path = make(tmp_path / "w")
    for env in ({"WAYLAND_DISPLAY": str(path)},
                {"WAYLAND_DISPLAY": "w", "XDG_RUNTIME_DIR": str(tmp_path)}):
        assert preflight.wayland_problem(env, timeout=1.0) == (
            f"no Wayland compositor answers on WAYLAND_DISPLAY={env['WAYLAND_DISPLAY']}: "
            f"{why.format(path)} (start it from a Wayland desktop session, or unset "
            "WAYLAND_DISPLAY to use X11)")


def test_without_xdg_runtime_dir_a_wayland_name_has_no_socket():
    assert "XDG_RUNTIME_DIR, the folder of its socket, is not set" in \
        preflight.wayland_problem({"WAYLAND_DISPLAY": "wayland-0"})


@pytest.fixture
def compositor(tmp_path):
    """A listening Unix socket standing in for a Wayland compositor: its path."""
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "w"))
        server.listen()
        yield tmp_path / "w"


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="Unix sockets")
def test_a_wayland_socket_that_answers_passes(tmp_path, compositor, monkeypatch):
    monkeypatch.setattr(preflight, "missing_libraries", lambda plugin: [])
    assert preflight.wayland_problem({"WAYLAND_DISPLAY": str(compositor)}) is None
    assert preflight.wayland_problem({"WAYLAND_DISPLAY": "w",
                                      "XDG_RUNTIME_DIR": str(tmp_path)}) is None
    assert preflight.wayland_problem({"WAYLAND_SOCKET": "3"}) is None  # an inherited one
    if sys.platform.startswith("linux"):
        assert preflight.problem({"WAYLAND_DISPLAY": str(compositor)}) is None
        assert preflight.problem({"WAYLAND_DISPLAY": str(compositor),
                                  "QT_QPA_PLATFORM": "wayland-egl"}) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="displays: Linux only")
def test_a_wayland_plugin_missing_libraries_names_the_packages(compositor, monkeypatch):
    monkeypatch.setattr(preflight, "missing_libraries",
                        lambda plugin: ["libwayland-cursor.so.0"]
                        if plugin.name == "libqwayland.so" else [])
    assert preflight.problem({"WAYLAND_DISPLAY": str(compositor)}) == (
        "Qt's wayland platform plugin cannot load: missing libwayland-cursor.so.0; install "
        "them with: sudo apt-get install libwayland-cursor0")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="displays: Linux only")
def test_without_a_compositor_qt_falls_back_to_a_usable_x_display(tmp_path, monkeypatch):
    answers = {":5": None, ":6": "no X server answers on DISPLAY=:6"}  # no connection made
    monkeypatch.setattr(preflight, "x_server_problem", answers.get)
    monkeypatch.setattr(preflight, "missing_libraries", lambda plugin: [])
    gone = {"WAYLAND_DISPLAY": str(tmp_path / "gone")}
    assert preflight.problem({**gone, "DISPLAY": ":5"}) is None  # Qt tries xcb next
    assert preflight.problem({**gone, "DISPLAY": ":5", "XDG_SESSION_TYPE": "wayland"}) is None
    assert preflight.problem({**gone, "DISPLAY": ":6"}).startswith(
        "no Wayland compositor answers on WAYLAND_DISPLAY=")
    assert preflight.problem({**gone, "DISPLAY": ":5", "QT_QPA_PLATFORM": "wayland"}) \
        .startswith("no Wayland compositor answers")  # no fallback when one is named
    assert preflight.problem({**gone, "DISPLAY": ":5", "QT_QPA_PLATFORM": "wayland;xcb"}) is None


def test_an_x_server_that_answers_passes():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        number = server.getsockname()[1] - 6000  # ephemeral ports are above 6000
        assert preflight.x_server_problem(f"127.0.0.1:{number}.0") is None
    assert "no X server answers" in preflight.x_server_problem(f"127.0.0.1:{number}")


def test_the_hint_names_packages_and_unknown_libraries():
    assert preflight.not_found("\tlibxcb-icccm.so.4 => not found\n"
                               "\tlibxcb.so.1 => /lib/libxcb.so.1 (0x1)\n"
                               "\tlibfoo.so.2 => not found\n") == ["libxcb-icccm.so.4",
                                                                  "libfoo.so.2"]
    assert preflight.install_hint(["libxcb-icccm.so.4", "libfoo.so.2"]) == (
        "missing libxcb-icccm.so.4, libfoo.so.2; install them with: sudo apt-get install "
        "libxcb-icccm4 (and the package that provides libfoo.so.2)")


# pip's editable install finds the packages with a finder that comes after the import path,
# so a folder named drivevision on the path (without __init__.py) wins as a namespace package.
EDITABLE_FINDER = """
import sys
from importlib.machinery import PathFinder

class CheckoutFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return PathFinder.find_spec(name, [{root!r}]) if name in ("drivevision", "gui") else None

sys.meta_path.insert(sys.meta_path.index(PathFinder) + 1, CheckoutFinder)
"""

# As pip's `drivevision` script (its own folder first on the path, not the working folder),
# with the window closing as soon as it is shown.
LAUNCHER = """
import sys
from PyQt6.QtCore import QTimer
from gui import main_window

show = main_window.MainWindow.show

def show_then_close(window):
    show(window)
    print("window shown", flush=True)
    QTimer.singleShot(0, window.close)

main_window.MainWindow.show = show_then_close
from drivevision.cli import main
sys.exit(main())
"""


@pytest.mark.timeout(120)
def test_drivevision_view_starts_from_the_folder_that_holds_the_clone(tmp_path,
                                                                     tiny_checkpoint):
    parent = tmp_path / "src"
    (parent / "drivevision").mkdir(parents=True)  # the clone, seen from its parent folder
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(EDITABLE_FINDER.format(root=str(ROOT)))
    launcher = tmp_path / "bin" / "drivevision"
    launcher.parent.mkdir()
    launcher.write_text(LAUNCHER)
    env = viewer_env(PYTHONPATH=str(site), QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path),
                     XDG_CONFIG_HOME=str(tmp_path / "config"))
    run = subprocess.run([sys.executable, str(launcher), "view", "--model", "tiny-fpn",
                          "--weights", tiny_checkpoint, "--device", "cpu"],
                         cwd=parent, env=env, capture_output=True, text=True, timeout=100)
    assert run.returncode == 0, run.stderr
    assert "window shown" in run.stdout


@pytest.mark.parametrize("classes, message", [
    ("truk", "Unknown class 'truk'; did you mean truck?"),
    ("cra", "Unknown class 'cra'; did you mean car?"),
])
def test_drivevision_view_refuses_a_class_the_model_lacks_before_the_window_opens(
        clip_path, classes, message):
    """Before: a dialog in the open window, then every class drawn."""
    weights = [] if classes == "truk" else ["--weights", str(ROOT / "assets" /
                                                          "tiny-fpn-synthetic.pt")]
    run = subprocess.run([sys.executable, "-m", "drivevision", "view", clip_path,
                          "--classes", classes, *weights], cwd=ROOT, env=viewer_env(),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [f"drivevision view: error: {message}"]
