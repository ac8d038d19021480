"""What the viewer writes over the picture: the frame (and an image's file name) and its
object count, the rates and latency, or, while a live source is lost, that it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PyQt6.QtCore import QObject, QTimer

from drivevision.io.frames import Source
from gui.packets import Packet
from gui.panel import rate
from gui.video_view import VideoView

if TYPE_CHECKING:
    from gui.messages import Messages


class Hud:
    """The HUD's lines on ``view``; a lost live source also in the status bar (``messages``)
    and told to ``on_outage`` (its state, "" once it is back).

    No frame comes while a stream is lost, so nothing would change the picture's lines: while
    a live source plays, its ``outage`` (``drivevision.io.frames.Source``) is asked every half
    second, as ``drivevision live``'s status line shows it. An outage ends when a frame comes
    again (reconnected), or when the playing stops (``stopped``): stopping a stream ends its
    outage too, so the source alone cannot tell the two apart.
    """

    def __init__(self, view: VideoView, messages: Messages, parent: QObject,
                 on_outage: Callable[[str], None] = lambda state: None):
        self.view, self.messages, self.on_outage = view, messages, on_outage
        self.lines: list[str] = []
        self.outage = ""  # what the HUD says of the source's outage ("": none)
        self._source: Callable[[], Source | None] = lambda: None
        self._uri = ""
        self._clock = QTimer(parent)
        self._clock.timeout.connect(self._poll)

    def watch(self, source: Callable[[], Source | None], uri: str, live: bool) -> None:
        """A newly opened source (``source()`` gives it while it plays): its outages are
        shown when it is ``live``."""
        self._source, self._uri, self.outage = source, uri, ""
        self._clock.start(500) if live else self._clock.stop()

    def show(self, packet: Packet, shown, latency_ms: float) -> None:
        """The lines for ``packet``, its ``shown`` detections counted."""
        stats = packet.stats
        self.lines = [
            _frame_line(packet, shown),
            f"in {rate(stats['input_fps'])}  det {rate(stats['detector_fps'])}",
            f"latency {latency_ms:.0f} ms  dropped {int(stats['dropped'])}"]
        if self.outage and self._lost():  # a frame from before the outage, shown late
            self.view.set_hud([self.outage, *self.lines[:1]])
            return
        if self.outage:
            self._end_outage(f"{self._uri}: reconnected", 10000)
        self.view.set_hud(self.lines)

    def stopped(self) -> None:
        """The playing stopped: a source lost until then is no longer reconnecting."""
        if self.outage:
            self._end_outage(f"{self._uri}: stopped while lost (Play tries to connect again)")
            self.view.set_hud(self.lines)

    def recount(self, packet: Packet, shown) -> None:
        """The object count of what the picture now draws (the overlay changed)."""
        if self.lines and not self.outage:
            self.lines[0] = _frame_line(packet, shown)
            self.view.set_hud(self.lines)

    def _lost(self) -> str:
        source = self._source()
        return source.outage if source is not None and source.live else ""

    def _poll(self) -> None:
        state = self._lost()
        if not state or state == self.outage:  # its end: a frame comes, or the playing stops
            return
        self.view.set_hud([state, *self.lines[:1]])  # the last frame stays on show
        self.messages.tell(f"{self._uri}: {state}", 0)
        self.outage = state
        self.on_outage(state)

    def _end_outage(self, message: str, ms: int = 0) -> None:
        self.messages.tell(message, ms)
        self.outage = ""
        self.on_outage("")


FILE_CHARS = 32  # a longer image name is cut in its middle, keeping its end and extension


def _frame_line(packet: Packet, shown) -> str:
    count = int(packet.stats.get("frame_count", 0))
    n = len(shown)
    file = f"  {elide(packet.frame.file)}" if packet.frame.file else ""
    return f"frame {packet.frame.index + 1}/{count or '-'}{file}  {n} object{'s' * (n != 1)}"


def elide(name: str, chars: int = FILE_CHARS) -> str:
    """``name`` in at most ``chars`` characters: its start and end around an ellipsis (the
    numbers and extension that tell images of a folder apart are at the end)."""
    if len(name) <= chars:
        return name
    tail = (chars - 1) * 3 // 5  # more of the end than of the start
    return f"{name[:chars - 1 - tail]}\u2026{name[-tail:]}"
