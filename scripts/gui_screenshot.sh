#!/usr/bin/env bash
# Screenshot of the real viewer window (X11 under Xvfb, not Qt's offscreen platform) playing
# the sample clip with the overlay, the HUD and the side panel: docs/gui.png.
#
#   scripts/gui_screenshot.sh [OUT.png] [extra viewer options ...]
#
# Environment: SOURCE (default assets/sample.mp4; a file missing is generated, a stream URL
# such as http://... or rtsp://... is passed on as it is), WEIGHTS (default the
# trained demo model assets/tiny-fpn-synthetic.pt; with none, torchvision's COCO weights
# for --model r50-fpn-v2 are used and must be cached), DELAY seconds of playing before the
# grab (default 3), PYTHON (default python), SIZE of the virtual screen (default 1440x900).
# Installs, when missing, Debian's xvfb and the xcb/GL/font libraries Qt's xcb plugin needs.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-docs/gui.png}
shift || true
SOURCE=${SOURCE:-assets/sample.mp4}
WEIGHTS=${WEIGHTS:-assets/tiny-fpn-synthetic.pt}
DELAY=${DELAY:-3}
PYTHON=${PYTHON:-python}
SIZE=${SIZE:-1440x900}

PACKAGES="xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0
  libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3
  fonts-dejavu-core"
missing=$(dpkg-query -W -f='${Package} ${Status}\n' $PACKAGES 2>/dev/null \
          | awk '$NF != "installed" {print $1}'; for p in $PACKAGES; do
            dpkg-query -W "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y --no-install-recommends $missing
fi

case "$SOURCE" in
  *://*) ;;  # a stream (http://, rtsp://, ...): the viewer's to open, nothing to generate
  *) [ -e "$SOURCE" ] || "$PYTHON" scripts/make_sample.py --out "$SOURCE" ;;
esac
DETECTOR=(--device cpu --conf 0.5)
if [ -f "$WEIGHTS" ]; then
  DETECTOR+=(--model tiny-fpn --weights "$WEIGHTS")
fi

display=99
while [ -e "/tmp/.X11-unix/X$display" ] || [ -e "/tmp/.X$display-lock" ]; do
  display=$((display + 1))
done
Xvfb ":$display" -screen 0 "${SIZE}x24" -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
viewer_pid=
config_home=$(mktemp -d)  # fresh QSettings: default geometry, nothing from the user's runs
cleanup() {
  [ -n "$viewer_pid" ] && kill "$viewer_pid" 2>/dev/null && wait "$viewer_pid" 2>/dev/null
  kill "$xvfb_pid" 2>/dev/null || true
  rm -rf "$config_home"
}
trap cleanup EXIT
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$display" ] && break; sleep 0.1; done

export DISPLAY=":$display" QT_QPA_PLATFORM=xcb XDG_CONFIG_HOME="$config_home"
"$PYTHON" -m gui "$SOURCE" --play "${DETECTOR[@]}" "$@" &
viewer_pid=$!

# Grab the X server's screen from a second Qt client: real X11 pixels of the viewer window.
# Wait (up to 2 minutes) for the window to appear, then let it play DELAY seconds.
mkdir -p "$(dirname "$OUT")"
"$PYTHON" - "$OUT" "$DELAY" "$viewer_pid" <<'EOF'
import os
import sys
import time

from PyQt6.QtGui import QGuiApplication

out, delay, viewer = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
app = QGuiApplication(sys.argv[:1])
screen = app.primaryScreen()
deadline = time.monotonic() + 120
while screen.grabWindow(0).toImage().pixelColor(5, 5).name() == "#000000":
    os.kill(viewer, 0)  # raises when the viewer has exited
    if time.monotonic() > deadline:
        sys.exit("the viewer window did not appear within 2 minutes")
    time.sleep(0.5)
time.sleep(delay)
os.kill(viewer, 0)
image = screen.grabWindow(0)
if image.isNull() or not image.save(out):
    sys.exit(f"could not grab the screen into {out}")
print(f"wrote {out} ({image.width()}x{image.height()})")
EOF
