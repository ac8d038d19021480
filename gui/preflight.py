"""Can a window open here? Checked before Qt loads a platform plugin, because a plugin that
cannot load aborts the process (SIGABRT) with a message that names neither the missing
system library nor the package that provides it.

Standard library only; nothing here imports Qt's GUI modules.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# What Qt's xcb platform plugin (libqxcb.so and libQt6XcbQpa) links against, by soname, with
# the Debian/Ubuntu package that provides it.
XCB_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def platforms_folder() -> Path:
    """The folder of PyQt6's platform plugins (``libqNAME.so``)."""
    from PyQt6.QtCore import QLibraryInfo  # QtCore loads no platform plugin

    return Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"


def xcb_plugin() -> Path | None:
    """Where PyQt6's xcb platform plugin is, or None (no PyQt6, or a build without it)."""
    path = platforms_folder() / "libqxcb.so"
    return path if path.is_file() else None


def unknown_platform(requested: str, folder: Path) -> str | None:
    """Why ``QT_QPA_PLATFORM=requested`` (``NAME[:OPTIONS]``, fallbacks after ``;``) names
    no plugin in ``folder``, or None when one of its names is there (or the folder is not)."""
    if not folder.is_dir():
        return None
    names = [p.split(":")[0].strip() for p in requested.split(";") if p.strip()]
    if not names or any((folder / f"libq{name}.so").is_file() for name in names):
        return None
    have = sorted(p.name[len("libq"):-len(".so")] for p in folder.glob("libq*.so"))
    return (f"Qt has no platform plugin {', '.join(names)} (QT_QPA_PLATFORM={requested}); "
            f"it has: {', '.join(have)}")


def x_server_problem(display: str, timeout: float = 3.0) -> str | None:
    """Why no X server answers on ``display`` (``[HOST]:N[.SCREEN]``), or None when one
    does or the name is one we cannot check."""
    host, sep, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not sep or not number.isdigit():
        return None
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        addresses = [(socket.AF_UNIX, "\0" + path), (socket.AF_UNIX, path)]
    elif host.startswith("/"):
        return None  # a socket path (macOS launchd): not ours to judge
    else:
        addresses = [(socket.AF_INET6 if ":" in host else socket.AF_INET,
                      (host.strip("[]"), 6000 + int(number)))]
    for family, address in addresses:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(address)
                return None
        except OSError:
            continue
    return (f"no X server answers on DISPLAY={display} (start it from a desktop session, "
            "over ssh -X, or under xvfb-run)")


def not_found(ldd_output: str) -> list[str]:
    """The sonames ``ldd`` reported as ``=> not found``, in its order, each once."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def missing_libraries(plugin: Path) -> list[str]:
    """Sonames ``plugin`` needs that the dynamic loader cannot find ([] when ``ldd`` is not
    there to ask: Qt then reports for itself)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        run = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return not_found(run.stdout + run.stderr)


def install_hint(sonames: list[str]) -> str:
    """``missing X, Y; install them with: sudo apt-get install P Q`` (Debian/Ubuntu names)."""
    packages = list(dict.fromkeys(XCB_PACKAGES[s] for s in sonames if s in XCB_PACKAGES))
    unknown = [s for s in sonames if s not in XCB_PACKAGES]
    text = f"missing {', '.join(sonames)}"
    if packages:
        text += f"; install them with: sudo apt-get install {' '.join(packages)}"
    if unknown:
        text += f" (and the package that provides {', '.join(unknown)})"
    return text


def _uses_xcb(env: Mapping[str, str]) -> bool:
    """Whether Qt will load the xcb plugin (first) under ``env``."""
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(";")[0].split(":")[0] == "xcb"
    wayland = env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland"
    return bool(env.get("DISPLAY")) and not wayland


def problem(env: Mapping[str, str] | None = None) -> str | None:
    """Why the viewer's window cannot open under ``env`` (default ``os.environ``), as one
    line; None when nothing is known to stop it. Linux only: other systems bring their own
    platform plugin."""
    env = os.environ if env is None else env
    if importlib.util.find_spec("PyQt6") is None:
        return "the viewer needs PyQt6: pip install 'drivevision[gui]' (or -e \".[gui]\")"
    if not sys.platform.startswith("linux"):
        return None
    if not env.get("QT_QPA_PLATFORM") and not env.get("DISPLAY") \
            and not env.get("WAYLAND_DISPLAY"):
        return ("no display to open a window on: DISPLAY and WAYLAND_DISPLAY are not set "
                "(start it from a desktop session, over ssh -X, or under xvfb-run)")
    if env.get("QT_QPA_PLATFORM"):
        unknown = unknown_platform(env["QT_QPA_PLATFORM"], platforms_folder())
        if unknown:
            return unknown
    if not _uses_xcb(env):
        return None
    plugin = xcb_plugin()
    missing = missing_libraries(plugin) if plugin is not None else []
    if missing:
        return f"Qt's xcb platform plugin cannot load: {install_hint(missing)}"
    if not env.get("DISPLAY"):
        return ("no display to open a window on: Qt's xcb plugin needs DISPLAY, which is not "
                "set (start it from a desktop session, over ssh -X, or under xvfb-run)")
    return x_server_problem(env["DISPLAY"])
