"""``drivevision live SOURCE...``: cameras and streams until stopped, newest frame first.

Each source keeps only its newest frame; the detector takes the newest of every source in
one batch when it is free; drops are counted, never queued. A status line refreshes once a
second; Ctrl-C (or ``--duration``) ends the run with complete, playable outputs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from drivevision.cli.exits import EXIT_INPUT_DAMAGED as EXIT_INPUT_LOST
from drivevision.cli.exits import EXIT_INTERRUPTED, undo_on_quit
from drivevision.cli.help import add_command
from drivevision.cli.options import (
    add_detector_args,
    add_style_args,
    check_detector_args,
    check_detector_cost,
    detector_config,
    draw_style,
    image_fps,
    quiet_opencv,
    score_threshold,
    takes_fps,
    video_preset_arg,
)
from drivevision.cli.outputs import check_outputs, writes_stdout
from drivevision.cli.status import StatusLine, snapshot
from drivevision.cli.times import add_range_args, refuse_range, seconds, time_range
from drivevision.cli.tracking import add_track_args, check_track_args, track_stages
from drivevision.config import DEFAULT_VIDEO_PRESET
from drivevision.io.uri import TRANSPORTS, URI_HELP, display_uri
from drivevision.labels import counted


def add_parser(commands) -> None:
    """Register ``live`` on the ``drivevision`` sub-command parsers."""
    p = add_command(
        commands, "live", summary="detect objects in camera or network streams, live",
        description="Detect objects in one or more live sources, newest frame first (frames "
                    "the detector has no time for are dropped and counted).\n"
                    f"SOURCE is {URI_HELP}. Runs until Ctrl-C or --duration.",
        examples="""
drivevision live 0                                  # the first camera; Ctrl-C to stop
drivevision live rtsp://cam.local:8554/front -o front.mp4 --jsonl front.jsonl --serve
drivevision live assets/sample.mp4 --realtime --duration 10s  # a file paced like a camera
drivevision live dashcam.mp4 --realtime --start 12:25  # a recording from 12:25 on""")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="what to read (see above)")
    out = p.add_argument_group("outputs")
    out.add_argument("-o", "--output", metavar="VIDEO",
                     help="annotated video (.mp4 ...); with several sources NAME.0.mp4, "
                          "NAME.1.mp4")
    out.add_argument("--jsonl", metavar="FILE",
                     help="detections per processed frame, and gaps ('-': stdout)")
    out.add_argument("--mot", metavar="FILE",
                     help="tracked boxes as MOTChallenge text, as detect writes it (needs "
                          "--track; '-': stdout)")
    out.add_argument("--segment", type=seconds, metavar="TIME",
                     help="record in pieces this long by capture time, like a dashcam: "
                          "NAME_0001.mp4, NAME_0002.mp4, ... each with its own JSONL "
                          "and MOT text")
    video_preset_arg(out)
    add_style_args(out)
    out.add_argument("--clean", action="store_true",
                     help="remove the part files killed runs left beside the outputs")
    out.add_argument("--serve", nargs="?", const="127.0.0.1:8090", metavar="HOST:PORT",
                     type=serve_address,
                     help="publish the annotated video as MJPEG over HTTP (default "
                          "127.0.0.1:8090; other addresses are open to anyone who can reach "
                          "them)")
    src = p.add_argument_group("sources")
    src.add_argument("--realtime", action="store_true",
                     help="pace files and folders at their frame rate, with live drops")
    add_range_args(src)
    src.add_argument("--stall-timeout", type=seconds, default=5.0, metavar="TIME",
                     help="reconnect a stream that gives no frame for this long (default 5s)")
    src.add_argument("--max-reconnects", type=int, metavar="N",
                     help="give a stream up after N failed reconnects in a row (default: never)")
    src.add_argument("--rtsp-transport", choices=TRANSPORTS, default="tcp",
                     help="RTSP over tcp (default) or udp; a ?transport= in the URI wins")
    src.add_argument("--input-width", type=int, metavar="PX",
                     help="ask the camera for this width")
    src.add_argument("--input-height", type=int, metavar="PX",
                     help="ask the camera for this height")
    src.add_argument("--input-fps", type=float, metavar="FPS", help="ask the camera for this rate")
    src.add_argument("--fps", type=float,
                     help="frame rate of image folders (default: 10) and of raw .h264/.h265 "
                          "streams, which have no frame times (default: the rate they state, "
                          "else 25); other videos, cameras and streams keep their own")
    src.add_argument("--max-pixels", metavar="N",
                     help="largest frame a source may send, e.g. 50000000 or 50M; a stream or "
                          "camera whose frames are larger is refused when it opens (default: "
                          "$DRIVEVISION_MAX_PIXELS, else 50M)")
    run = p.add_argument_group("run")
    run.add_argument("--batch-timeout", type=seconds, default=0.04, metavar="TIME",
                     help="with several sources, wait this long for the others (default 40ms)")
    run.add_argument("--duration", type=seconds, metavar="TIME",
                     help="stop after this long (90, 90s, 15m, 2h; a bare number is seconds)")
    run.add_argument("-q", "--quiet", action="store_true", help="no status line or summary")
    run.add_argument("--frame-stride", type=int, help=argparse.SUPPRESS)  # refused: see below
    add_detector_args(p, tracked=True)
    add_track_args(p)
    p.set_defaults(func=cmd_live)


def serve_address(text: str) -> str:
    """``--serve``'s value, checked as it is parsed: ``live --serve rtsp://cam/live`` took
    the source for HOST:PORT, and would otherwise be told only that SOURCE is missing."""
    from drivevision.io.serve import parse_bind

    try:
        parse_bind(text)
    except ValueError as e:
        if "/" not in text and not Path(text).suffix:
            raise argparse.ArgumentTypeError(str(e)) from None
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT, but got {display_uri(text)!r}, a SOURCE: put the sources first "
            f"(live SOURCE --serve) or give --serve its HOST:PORT") from None
    return text


def output_paths(path: str | None, count: int) -> list[str | None]:
    """One output per source: ``path`` itself for one source, else ``stem.N.suffix``."""
    if path is None:
        return [None] * count
    if count == 1:
        return [path]
    p = Path(path)
    return [str(p.with_name(f"{p.stem}.{i}{p.suffix}")) for i in range(count)]


def reconnect_policy(args: argparse.Namespace):
    """The ``Reconnect`` policy of ``--stall-timeout`` and ``--max-reconnects`` (ValueError,
    naming the option, for a bad value)."""
    from drivevision.io.streams import Reconnect

    if args.stall_timeout <= 0:  # Reconnect names its keywords, a command its options
        raise ValueError(f"Expected --stall-timeout > 0 s, but got {args.stall_timeout}")
    if args.max_reconnects is not None and args.max_reconnects < 0:
        raise ValueError(f"Expected --max-reconnects >= 0, but got {args.max_reconnects}")

    class CommandReconnect(Reconnect):
        option = "--max-reconnects"  # a stream given up names the option, not the keyword

    return CommandReconnect(stall_timeout=args.stall_timeout, max_reconnects=args.max_reconnects)


def _check_args(args: argparse.Namespace) -> None:
    """Refuse bad values; none of these checks imports torch (seconds), so they answer at
    once (``check_detector_args``, which does, comes after them)."""
    from drivevision.io import limits
    from drivevision.io.uri import parse_uri

    _check_camera_args(args)
    if args.frame_stride is not None:
        raise ValueError("live drops the frames it has no time for by itself (it detects the "
                         "newest one); --frame-stride is for detect, batch and eval, which "
                         "read every frame of a file")
    time_range(args)
    for uri in args.sources:
        if parse_uri(uri).kind not in ("path", "http"):  # (http may serve a recording)
            refuse_range(args, uri)  # now: a stream may take seconds to answer
    draw_style(args)
    reconnect_policy(args)
    args.raw_fps = args.fps  # None when not given: a raw stream's own rate
    args.fps = image_fps(args, any(takes_fps(uri) for uri in args.sources), raw=True)
    score_threshold(args)
    check_track_args(args)
    args.max_pixels = limits.max_pixels(args.max_pixels)
    if args.batch_timeout > 10:
        raise ValueError(f"Expected --batch-timeout of at most 10 s, but got "
                         f"{args.batch_timeout:g} s (a bare number is seconds; write "
                         f"{args.batch_timeout:g}ms for milliseconds)")
    if args.duration is not None and args.duration <= 0:
        raise ValueError(f"Expected --duration > 0, but got {args.duration} s")
    if args.segment is not None and not args.segment > 0:
        raise ValueError(f"Expected --segment > 0, but got {args.segment} s")
    if args.mot and not args.track:
        raise ValueError("Expected --track with --mot: a MOT file holds track ids")
    if args.segment is not None and "-" in (args.output, args.jsonl, args.mot):
        raise ValueError("--segment writes files; it cannot split stdout ('-')")


def _claim_outputs(args: argparse.Namespace):
    """``check_outputs`` for every output of the run (held for the run)."""
    videos = [p for p in output_paths(args.output, len(args.sources)) if p]
    jsonls = [p for p in output_paths(args.jsonl, len(args.sources)) if p]
    mots = [p for p in output_paths(args.mot, len(args.sources)) if p]
    return check_outputs(args.sources, videos + jsonls + mots, videos, clean=args.clean,
                         options=["-o"] * len(videos) + ["--jsonl"] * len(jsonls)
                         + ["--mot"] * len(mots))


def _check_camera_args(args: argparse.Namespace) -> None:
    """--input-width/-height/-fps only with cameras, refused by the flags' own names."""
    from drivevision.io.uri import parse_uri

    asked = [flag for flag, value in (("--input-width", args.input_width),
                                      ("--input-height", args.input_height),
                                      ("--input-fps", args.input_fps)) if value is not None]
    for uri in args.sources if asked else ():
        if parse_uri(uri).kind not in ("camera", "csi"):
            raise ValueError(f"Expected {', '.join(asked)} only for a camera (0, /dev/videoN, "
                             f"csi://N), but {display_uri(uri)} is not one: it has its own size "
                             "and rate")


def open_sources(args: argparse.Namespace) -> Iterator:
    """Every SOURCE, opened one by one, keeping only ``--start``/``--end`` of a file (an
    unopenable one, or a range it cannot keep, fails before the model loads; a generator, so
    the caller can close those opened before it)."""
    from drivevision.io.sources import open_source

    policy = reconnect_policy(args)
    for uri in args.sources:
        source = open_source(uri, fps=args.fps, width=args.input_width,
                             height=args.input_height, input_fps=args.input_fps,
                             transport=args.rtsp_transport, reconnect=policy,
                             realtime=args.realtime, max_pixels=args.max_pixels,
                             raw_fps=args.raw_fps)
        try:
            if source.can_lose_input:  # a live stream (an http:// one, found when opened)
                refuse_range(args, uri)
            source.keep_range(args.start, args.end)
        except BaseException:
            source.close()
            raise
        yield source


def make_sinks(sources: list, names, video: str | None, jsonl: str | None,
               server=None, segment: float | None = None,
               preset: str = DEFAULT_VIDEO_PRESET, mot: str | None = None) -> list[Iterator]:
    """Per source: its video (capture clock for live sources; x264 ``preset``), JSONL with
    gaps, MOT text, served stream.

    Each source's sinks come from a generator, so the caller enters each before the next is
    made and none is left open if a later one fails.
    """
    videos, jsonls = output_paths(video, len(sources)), output_paths(jsonl, len(sources))
    mots = output_paths(mot, len(sources))
    return [_source_sinks(i, source, names, videos[i], jsonls[i], server, segment, preset,
                          mots[i]) for i, source in enumerate(sources)]


def _source_sinks(i: int, source, names, video: str | None, jsonl: str | None,
                  server, segment: float | None, preset: str, mot: str | None) -> Iterator:
    import functools

    from drivevision.io.live_sinks import (
        GapJsonlSink,
        LiveVideoSink,
        RecordedVideoSink,
        Segmented,
    )
    from drivevision.io.serve import ServeSink

    if video:
        make = functools.partial(RecordedVideoSink, fps=source.fps or 30.0, preset=preset)
        if source.live:
            make = functools.partial(LiveVideoSink, fps=source.fps or 30.0, preset=preset,
                                     stream_time=source.stream_clock)
        yield make(video) if segment is None else Segmented(video, make, segment)
    if jsonl:
        make = functools.partial(GapJsonlSink, names=names, gaps=source.gaps)
        yield make(jsonl) if segment is None else Segmented(jsonl, make, segment)
    if mot:
        from drivevision.io.mot import MotSink

        yield MotSink(mot) if segment is None else Segmented(mot, MotSink, segment)
    if server is not None:
        yield ServeSink(server, i)


def cmd_live(args: argparse.Namespace) -> int:
    _check_args(args)  # first: a bad value was refused only after torch's import
    from drivevision.config import PipelineConfig
    from drivevision.io.serve import MjpegServer, parse_bind
    from drivevision.pipeline import Pipeline, signals
    from drivevision.render import renderer

    bind = parse_bind(args.serve) if args.serve else None
    quiet_opencv()
    claims = _claim_outputs(args)  # the outputs are this run's until it ends
    with claims, undo_on_quit(claims.close), ExitStack() as finishing, ExitStack() as stack:
        # (stack unwinds first)
        check_detector_args(args)  # torch is imported from here, after every refusal above
        from drivevision.detector import Detector

        server = None
        if bind is not None:  # bound now, so a busy port fails before the model loads
            server = MjpegServer(*bind, streams=len(args.sources))
            stack.callback(server.close)
        sources = [stack.enter_context(s) for s in open_sources(args)]
        for source in sources:
            for line in source.about:
                _say(args, f"{source.name}: {line}")
        # (a source that fails says only that)
        if not (args.output or args.jsonl or args.mot or args.serve):
            _say(args, "nothing is saved: add -o VIDEO, --jsonl FILE or --serve to keep or "
                       "watch the detections")
        config = detector_config(args)
        _say(args, f"loading {config.weights_label}")
        detector = Detector.from_config(config, progress=not args.quiet)
        n = len(sources)  # one frame of each source per detector call, at most
        check_detector_cost(detector, n, f"{n} sources" if n > 1 else None)
        _say(args, detector.describe())
        if server is not None:
            server.start()
            if server.warning:
                print(f"drivevision: warning: {server.warning}", file=sys.stderr)
            _say(args, "serving " + ", ".join(server.url(i) for i in range(len(sources))))
        sinks = [[stack.enter_context(s) for s in ss]
                 for ss in make_sinks(sources, detector.names, args.output, args.jsonl, server,
                                      args.segment, args.video_preset, args.mot)]
        pipeline = Pipeline(sources, detector, sinks,
                            config=PipelineConfig(batch_timeout=args.batch_timeout),
                            stages=track_stages(args),
                            render=renderer(draw_style(args), detector.names))
        try:
            with StatusLine(pipeline, quiet=args.quiet, duration=args.duration):
                pipeline.run()
        finally:  # a signal while the outputs are finished waits until they are in place
            held = finishing.enter_context(signals.held())
    pipeline.interrupted = pipeline.interrupted or bool(held)
    return _report(args, sources, pipeline)


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr)


def _report(args: argparse.Namespace, sources: list, pipeline) -> int:
    out = sys.stderr if writes_stdout([args.output, args.jsonl, args.mot]) else sys.stdout
    if not args.quiet:
        for i, source in enumerate(sources):
            s, stats = snapshot(pipeline, i), pipeline.stats[i]
            p50, p95 = stats.run_latency(50), stats.run_latency(95)
            latency = "-" if p50 is None else f"{p50:.0f}/{p95:.0f} ms"
            lost = (f", {counted(s.reconnects, 'reconnect')} ({s.lost_s:.1f} s lost)"
                    if source.can_lose_input else "")
            print(f"[{i}] {source.name}: {counted(s.processed, 'frame')} detected of "
                  f"{s.captured} captured ({s.dropped_pct:.0f}% dropped), latency p50/p95 "
                  f"{latency}{lost}",
                  file=out)
        for sink in (sink for sinks in pipeline.sinks for sink in sinks):
            pieces = sink.segments
            if pieces:
                print(f"wrote {counted(len(pieces), 'segment')}: {pieces[0]} .. {pieces[-1]}",
                      file=out)
            elif _wrote(sink):
                print(f"wrote {sink.path}", file=out)
    notes = [n for s in sources for n in s.notes]
    notes += [f"{source.name}: {n}" for source, chain in zip(sources, pipeline.stages)
              for stage in chain for n in getattr(stage, "notes", ())]
    notes += [n for sinks in pipeline.sinks for sink in sinks for n in sink.notes]
    notes += _unwritten(sources, pipeline)
    for note in notes:
        print(f"drivevision: warning: {note}", file=sys.stderr)
    if pipeline.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_INPUT_LOST if any(_failed(s) for s in sources) else 0


def _failed(source) -> bool:
    """Whether ``source`` lost its input for good, or is a file (or folder) found damaged
    (truncated, undecodable stretches: its notes say how), as ``detect`` exits 3 for."""
    return source.gave_up or (not source.can_lose_input and bool(source.notes))


def _unwritten(sources: list, pipeline) -> list[str]:
    """A note per file output left unwritten because no frame reached it (a video with no
    frame is not kept, see ``VideoSink.keeps_empty``)."""
    notes = []
    for source, stats, sinks in zip(sources, pipeline.stats, pipeline.sinks):
        why = (f"no frame came from {source.name}" if stats.snapshot().captured == 0
               else "no frame was detected")
        notes += [f"{sink.path} was not written: {why}" for sink in sinks
                  if getattr(sink, "path", None) is not None and not sink.segments
                  and not _wrote(sink)]
    return notes


def _wrote(sink) -> bool:
    """Whether ``sink`` (not a segmented one) left its output: a file in place, or stdout
    written through. A ``--serve`` sink has no path (its ``stream`` is a stream's number)."""
    if getattr(sink, "path", None) is None:
        return False
    return getattr(sink, "final_path", None) is not None or getattr(sink, "stream", False) is True
