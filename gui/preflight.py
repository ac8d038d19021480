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

# What Qt's xcb platform plugin (libqxcb.so and libQt6XcbQpa) and its wayland one
# (libqwayland.so) link against, by soname, with the Debian/Ubuntu package that provides it.
PACKAGES = {
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
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
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


def plugin_file(name: str) -> str:
    """The file of the platform plugin ``name``: one plugin serves every ``wayland-*``."""
    return "libqwayland.so" if name.startswith("wayland") else f"libq{name}.so"


def platform_names(requested: str) -> list[str]:
    """The plugin names of ``QT_QPA_PLATFORM=requested`` (``NAME[:OPTIONS]``, fallbacks
    after ``;``), in the order Qt tries them."""
    return [p.split(":")[0].strip() for p in requested.split(";") if p.strip()]


def unknown_platform(requested: str, folder: Path) -> str | None:
    """Why ``QT_QPA_PLATFORM=requested`` names no plugin in ``folder``, or None when one of
    its names is there (or the folder is not)."""
    if not folder.is_dir():
        return None
    names = platform_names(requested)
    if not names or any((folder / plugin_file(name)).is_file() for name in names):
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


def wayland_socket(env: Mapping[str, str]) -> str | None:
    """The socket Qt's wayland plugin connects to under ``env``, as libwayland finds it:
    ``WAYLAND_DISPLAY`` (default ``wayland-0``), under ``XDG_RUNTIME_DIR`` unless it is an
    absolute path; None without ``XDG_RUNTIME_DIR`` for a relative name."""
    name = env.get("WAYLAND_DISPLAY") or "wayland-0"
    if name.startswith("/"):
        return name
    folder = env.get("XDG_RUNTIME_DIR")
    return os.path.join(folder, name) if folder else None


def wayland_problem(env: Mapping[str, str], timeout: float = 3.0) -> str | None:
    """Why no Wayland compositor answers where Qt's wayland plugin would connect under
    ``env``, or None when one does or the connection is inherited (``WAYLAND_SOCKET``)."""
    if env.get("WAYLAND_SOCKET"):
        return None
    path = wayland_socket(env)
    if path is None:
        why = "XDG_RUNTIME_DIR, the folder of its socket, is not set"
    else:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(path)
                return None
        except FileNotFoundError:
            why = f"no socket {path}"
        except ConnectionRefusedError:
            why = f"nothing listens on {path}"
        except TimeoutError:
            why = f"{path} does not answer within {timeout:g} s"
        except OSError as e:
            why = f"cannot connect to {path} ({e.strerror})"
    todo = ("set QT_QPA_PLATFORM=xcb" if env.get("QT_QPA_PLATFORM")
            else "unset WAYLAND_DISPLAY")
    return (f"no Wayland compositor answers on WAYLAND_DISPLAY="
            f"{env.get('WAYLAND_DISPLAY') or 'wayland-0'}: {why} (start it from a Wayland "
            f"desktop session, or {todo} to use X11)")


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
    packages = list(dict.fromkeys(PACKAGES[s] for s in sonames if s in PACKAGES))
    unknown = [s for s in sonames if s not in PACKAGES]
    text = f"missing {', '.join(sonames)}"
    if packages:
        text += f"; install them with: sudo apt-get install {' '.join(packages)}"
    if unknown:
        text += f" (and the package that provides {', '.join(unknown)})"
    return text


def qt_platforms(env: Mapping[str, str]) -> list[str]:
    """The platform plugins Qt 6 tries under ``env`` on Linux, in order (the first that
    starts is used): ``QT_QPA_PLATFORM``'s when it is set; else wayland first when
    ``WAYLAND_DISPLAY`` is set (or ``XDG_SESSION_TYPE=wayland``), then xcb."""
    if env.get("QT_QPA_PLATFORM"):
        return platform_names(env["QT_QPA_PLATFORM"])
    wayland = env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland"
    return ["wayland", "xcb"] if wayland else ["xcb"]


def platform_problem(name: str, env: Mapping[str, str]) -> str | None:
    """Why Qt's platform plugin ``name`` cannot start under ``env``, or None when nothing is
    known to stop it (xcb and wayland are checked)."""
    if name == "xcb":
        return _xcb_problem(env)
    if name.startswith("wayland"):
        return _wayland_plugin_problem(env)
    return None


def _xcb_problem(env: Mapping[str, str]) -> str | None:
    plugin = xcb_plugin()
    missing = missing_libraries(plugin) if plugin is not None else []
    if missing:
        return f"Qt's xcb platform plugin cannot load: {install_hint(missing)}"
    if not env.get("DISPLAY"):
        return ("no display to open a window on: Qt's xcb plugin needs DISPLAY, which is not "
                "set (start it from a desktop session, over ssh -X, or under xvfb-run)")
    return x_server_problem(env["DISPLAY"])


def _wayland_plugin_problem(env: Mapping[str, str]) -> str | None:
    why = wayland_problem(env)
    if why is not None:
        return why
    plugin = platforms_folder() / "libqwayland.so"
    missing = missing_libraries(plugin) if plugin.is_file() else []
    if missing:
        return f"Qt's wayland platform plugin cannot load: {install_hint(missing)}"
    return None


def problem(env: Mapping[str, str] | None = None) -> str | None:
    """Why the viewer's window cannot open under ``env`` (default ``os.environ``), as one
    line; None when nothing is known to stop it. Linux only: other systems bring their own
    platform plugin. When Qt would try more than one plugin (wayland, then xcb), it is the
    first one's problem, and only when none of them can start."""
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
    problems = []
    for name in qt_platforms(env):
        why = platform_problem(name, env)
        if why is None:
            return None
        problems.append(why)
    return problems[0] if problems else None
