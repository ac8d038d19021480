"""Where each decoded frame of a video belongs in the input: ``Reading``, the state of one
pass over a file (its frames' indices and timestamps, and what went wrong on the way)."""

from __future__ import annotations

import bisect

import av

from drivevision.labels import counted


class Reading:
    """The state of one pass over a video: where each frame belongs in the input, and what
    went wrong on the way.

    A frame's index is the number of packets with an earlier presentation time, counted
    over every packet demuxed so far (the decoder returns a frame only after the packets
    presented before it): packets that failed to decode still count. A packet at or before
    the first time of the clock's run starts a new run (a reset clock, joined files), whose
    frames count on after the packets of the runs before.

    AVI stores no presentation times: its packets' decode times count the frames (FFmpeg
    makes up presentation times a frame later for H.264), and a decoder that reorders
    (B-frames) hands its frames on with the times of other packets. There, the n-th frame a
    reading decodes takes the n-th packet's decode time.

    A reading that starts after a seek (``seeked``: at a keyframe, not at the first packet)
    has not seen the packets before: its first frame's index is its time at ``fps`` (exact
    for a constant frame rate, an estimate for a variable one), and the frames after count
    on from it as above.
    """

    def __init__(self, fps: float, stream: av.VideoStream, *, seeked: bool = False):
        self.fps = fps
        self.seeked = seeked
        self.period_ms = 1000.0 / fps
        self.base = stream.time_base
        self.start = stream.start_time or 0
        self.failed = self.decoded = 0
        self.cut = False
        self.refused: list[tuple[int, str]] = []
        # each run of the clock between jumps back: (packets before it, sorted packet times)
        self._runs: list[tuple[int, list[int]]] = [(0, [])]
        self._run = 0  # the run the frames come from now
        self._last_pts: int | None = None
        self._index = -1
        self.head = 0  # frames before the first that decoded, in a reading from the start
        self._last_ms: float | None = None
        self._offset_ms = 0.0
        self._jumps: list[int] = []  # frame indexes where the clock jumped back
        self._first: tuple[int, int] | None = None
        self._size: tuple[int, int] | None = None
        self._sizes: list[tuple[int, tuple[int, int]]] = []
        self._decode_order: list[int] | None = (  # the packets' times, where frames have none
            [] if stream.container.format.name == "avi" else None)
        self._placed = 0

    def add_packet(self, packet: av.Packet) -> None:
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None or not packet.size:
            return
        if self._decode_order is not None:
            pts = packet.dts if packet.dts is not None else pts
            self._decode_order.append(pts)
        before, times = self._runs[-1]
        if len(times) >= 4 and pts <= times[0]:  # reordering never goes back to the start
            self._runs.append((before + len(times), []))
        bisect.insort(self._runs[-1][1], pts)

    def lose_packet(self) -> None:
        """The packet added last failed to decode: its frame will not come."""
        self.failed += 1
        if self._decode_order:
            self._decode_order.pop()

    def place(self, frame: av.VideoFrame) -> tuple[int, float]:
        """(index in the input, timestamp in ms, never going back) of a decoded frame."""
        pts = frame.pts
        if self._decode_order is not None:
            order, self._placed = self._decode_order, self._placed + 1
            pts = order[self._placed - 1] if self._placed <= len(order) else None
        if pts is None:
            index = self._index + 1
            ms = index * self.period_ms
        else:
            jumped = self._last_pts is not None and pts <= self._last_pts  # frames come in order
            if jumped and self._run < len(self._runs) - 1:
                self._run += 1
            before, times = self._runs[self._run]
            if self.seeked and self._index < 0:  # the packets before the seek were not read
                before = round((pts - self.start) * self.base * self.fps) - bisect.bisect_left(
                    times, pts)
                self._runs[self._run] = (before, times)
            index = max(self._index + 1, before + bisect.bisect_left(times, pts))
            ms = float((pts - self.start) * self.base * 1000)  # exact, then rounded once
            self._last_pts = pts
        if self._index < 0 and not (self.seeked or self.failed):  # else: damaged packets
            self.head = index
        ms += self._offset_ms
        if self._last_ms is not None and ms <= self._last_ms:
            self._jumps.append(index)
            self._offset_ms += self._last_ms + self.period_ms - ms
            ms = self._last_ms + self.period_ms
        self._index, self._last_ms = index, ms
        return index, ms

    @property
    def last_index(self) -> int:
        """The index of the frame placed last (-1: none yet)."""
        return self._index

    @property
    def last_ms(self) -> float | None:
        """The timestamp of the frame placed last (None: none yet)."""
        return self._last_ms

    def note_size(self, index: int, size: tuple[int, int]) -> None:
        if self._size is not None and size != self._size:
            self._sizes.append((index, size))
        self._first = self._first or size
        self._size = size

    def irregularities(self, uri: str) -> list[str]:
        notes = []
        if self.head:
            notes.append(f"{uri}: the first {counted(self.head, 'frame')} could not be decoded "
                         "(the video starts without a keyframe, as a recording cut mid-stream "
                         f"does); the first frame read is frame {self.head}")
        if self._jumps:
            notes.append(f"{uri}: the timestamps jumped back "
                         f"{counted(len(self._jumps), 'time')}, first at frame {self._jumps[0]} "
                         "(joined files or a reset clock); the frames after a jump continue "
                         "one frame interval after the frame before it")
        if self._sizes:
            index, (w, h) = self._sizes[0]
            first = f"{self._first[0]}x{self._first[1]}"
            notes.append(f"{uri}: the frame size changed {counted(len(self._sizes), 'time')}, "
                         f"first at frame {index} from {first} to {w}x{h}; each frame is "
                         "detected at its own size")
        return notes
