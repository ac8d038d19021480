"""Pipeline overhead benchmark: the detector alone vs the whole pipeline, in one run.

    python scripts/bench_pipeline.py                # all three measurements
    python scripts/bench_pipeline.py --only standin

1. real model: detector alone on decoded frames, then ``--reps`` times detect_video (decode,
   render, encode overlapped on their own threads) on the same frames followed by the
   detector alone again. The throughput compared is the pipeline's steady part (results
   after the first ``--settle``, so without its start and finish), each run over the mean
   of the detector just before and after it, and pooled over all runs; target >= 0.95.
   Whole-run ratios (start and finish included) are printed beside it: on a short clip
   they weigh the one-off start and finish, not the throughput.
   The contention measurement (``--only contention``) times the detector's calls with and
   without one frame's video work (draw, encode: the project's own) on another thread
   beside each, alternated frame by frame, so that a drifting machine speed cancels out.
   ``--detections-only``: both without the annotated video (the pipeline decodes and
   writes JSONL; the contention's video work is decoding a frame).
2. stand-in detector of a fixed 20 ms per frame at 1280x720; target >= 45 fps.
3. torch eager fp32 vs the bf16/channels-last CPU path on the same frames; target >= 2.5x
   where the CPU has bf16 instructions (AVX512-BF16 or AMX).
4. the detector with 1000 (torchvision's default) vs 300 RPN proposals (``--proposals``).
Weights are random unless --weights is given: speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import cv2
import torch

from drivevision.config import DEFAULT_VIDEO_PRESET, VIDEO_PRESETS
from drivevision.detections import Detections
from drivevision.detector import Detector
from drivevision.engines.hardware import cpu_features
from drivevision.io.sources import open_source
from drivevision.io.video_sink import VideoSink
from drivevision.labels import COCO_NAMES
from drivevision.model import LoadedModel, build_model, load_model
from drivevision.pipeline.runner import detect_video
from drivevision.render import annotate
from drivevision.synthetic import write_clip
from drivevision.synthetic.standin import StandInDetector

BOX = Detections([[100, 100, 300, 260]], [0.9], [3])


def decode_all(path: Path) -> list:
    cap, frames = cv2.VideoCapture(str(path)), []
    while (ok_frame := cap.read())[0]:
        frames.append(ok_frame[1])
    return frames


def real_detector(args, precision: str = "fp32", proposals: int | None = None,
                  engine: str = "torch") -> Detector:
    if args.weights:
        loaded = load_model(args.model, args.weights, min_size=args.min_size)
    else:
        torch.manual_seed(0)
        module = build_model(args.model, min_size=args.min_size, max_size=args.max_size)
        loaded = LoadedModel(module, args.model, COCO_NAMES, "random")
    return Detector(loaded, engine=engine, device="cpu", precision=precision, conf=0.5,
                    proposals=proposals, calib=args.calib)


def detector_alone_fps(detector, frames) -> float:
    n, seconds = detector_alone(detector, frames)
    return n / seconds


def detector_alone(detector, frames) -> tuple[int, float]:
    """(frames, seconds) of the detector on ``frames``, one call each, after a warm-up."""
    detector.infer(frames[:1])
    start = time.perf_counter()
    for frame in frames:
        detector.infer([frame])
    return len(frames), time.perf_counter() - start


def pipeline_fps(detector, clip: Path, out_dir: Path) -> float:
    return pipeline_run(detector, clip, out_dir)[0]


def pipeline_run(detector, clip: Path, out_dir: Path, settle: int = 0, video: bool = True,
                 preset: str = DEFAULT_VIDEO_PRESET) -> tuple[float, int, float]:
    """detect_video on ``clip``: (frames/s of the whole run, then the frames and seconds of
    its steady part: from the result ``settle`` to the last, so without the start (threads,
    files, first decode) and the end (encoder flush, closing and renaming the outputs)."""
    done: list[float] = []
    summary = detect_video(clip, out_dir / "bench.mp4" if video else None,
                           jsonl=out_dir / "bench.jsonl",
                           detector=detector, on_result=lambda _: done.append(time.perf_counter()),
                           video_preset=preset)
    return summary.fps, len(done) - 1 - settle, done[-1] - done[settle]


def bench_real(args, tmp: Path) -> None:
    clip = tmp / "real.mp4"
    w, h = args.size
    write_clip(clip, args.frames, width=w, height=h, seed=0)
    frames = decode_all(clip)
    detector = real_detector(args, args.precision, engine=args.engine)
    detector.infer(frames[:1])  # its first call compiles, if it does
    # H.264 at veryfast gives its first packet only after about 11 frames (its lookahead):
    # the steady part starts once the encoder does a long run's work for every frame
    settle = min(args.settle, len(frames) // 2)
    # alone, pipeline, alone, pipeline, ..., alone: each pipeline run is divided by the mean
    # of the detector alone just before and just after it, so a machine whose speed drifts
    # shows in the spread instead of in one ratio; the pooled ratio divides the pipeline's
    # frames/s over all its runs by the detector's over all of its own
    alone = [detector_alone(detector, frames)]
    whole, steady = [], []
    for _ in range(args.reps):
        fps, n, seconds = pipeline_run(detector, clip, tmp, settle,
                                       video=not args.detections_only, preset=args.video_preset)
        alone.append(detector_alone(detector, frames))
        around = (alone[-2][0] / alone[-2][1] + alone[-1][0] / alone[-1][1]) / 2
        whole.append(fps / around)
        steady.append((n, seconds, n / seconds / around))
    alone_fps = sum(n for n, _ in alone) / sum(s for _, s in alone)
    pooled = sum(n for n, _, _ in steady) / sum(s for _, s, _ in steady) / alone_fps
    print(f"[real] {args.model} random weights, {w}x{h} frames, min_size {args.min_size}, "
          f"{detector.engine.name} {detector.precision}"
          f"{_video(args)}: detector alone "
          f"{' '.join(f'{n / s:.3f}' for n, s in alone)} fps; pipeline / detector, steady "
          f"(results {settle + 1}-{len(frames)}): {' '.join(f'{r:.3f}' for *_, r in steady)}, "
          f"pooled {pooled:.3f} (target >= 0.95); whole runs (start and finish included): "
          f"{' '.join(f'{r:.3f}' for r in whole)}, median {statistics.median(whole):.3f}")


def _video(args) -> str:
    """What the figures' video work is, when not the default."""
    if args.detections_only:
        return ", detections only"
    return "" if args.video_preset == DEFAULT_VIDEO_PRESET else f", x264 {args.video_preset}"


def bench_contention(args, tmp: Path) -> None:
    """The detector's call with one frame's video work beside it (on another thread: decode
    a frame, draw, H.264 encode, as the pipeline does them) against without, the two
    alternated frame by frame (on, off, off, on, ...): a machine whose speed drifts over
    seconds moves both alike, which whole-run comparisons cannot promise."""
    w, h = args.size
    clip, video = tmp / "contention.mp4", tmp / "video.mp4"
    write_clip(clip, args.frames, width=w, height=h, seed=0)
    frames = decode_all(clip)
    detector = real_detector(args, args.precision, engine=args.engine)
    detections = detector.infer(frames[:1])[0]  # its first call compiles, if it does
    pattern = [True, False, False, True] * max(1, args.pairs // 2)
    write_clip(video, len(pattern), width=w, height=h, seed=1)
    source = open_source(video)
    sink = VideoSink(tmp / "contention-out.mp4", source.fps, preset=args.video_preset)
    go, done, work_ms, finished = threading.Semaphore(0), threading.Semaphore(0), [], []

    def video_work():
        frames_in = iter(source)
        while go.acquire() and not finished:
            start = time.perf_counter()
            if (frame := next(frames_in, None)) is None:
                break
            if not args.detections_only:
                annotated = annotate(frame.image, detections, detector.names)
                sink.write(frame, detections, annotated)
            work_ms.append((time.perf_counter() - start) * 1000)
            done.release()
        done.release()

    with source, sink:
        worker = threading.Thread(target=video_work, daemon=True)
        worker.start()
        calls: dict[bool, list[float]] = {True: [], False: []}
        for i, beside in enumerate(pattern):
            if beside:
                go.release()
            start = time.perf_counter()
            detector.infer([frames[i % len(frames)]])
            # a frame's time is until both are done: video work longer than the detector's
            # call (a fast GPU) would bound the pipeline
            if beside and not done.acquire(timeout=60):
                raise RuntimeError("the video work did not finish within 60 s")
            calls[beside].append(time.perf_counter() - start)
        finished.append(True)
        go.release()
        worker.join(10)
    on, off = calls[True], calls[False]
    pairs = sorted(b / a for a, b in zip(on, off))
    print(f"[contention] {args.model}, {w}x{h}, {detector.engine.name} {detector.precision}"
          f"{_video(args)}: "
          f"detector call {statistics.mean(off) * 1000:.0f} ms alone, "
          f"{statistics.mean(on) * 1000:.0f} ms with one frame's video work beside it "
          f"({'decoding' if args.detections_only else 'decoding, drawing and encoding'} "
          f"{statistics.median(work_ms):.0f} ms of it); "
          f"throughput kept {statistics.mean(off) / statistics.mean(on):.3f} (ratio of "
          f"means over {len(on)} pairs; pairs' median {statistics.median(pairs):.3f})")


def bench_standin(args, tmp: Path) -> None:
    clip = tmp / "hd.mp4"
    write_clip(clip, args.hd_frames, width=1280, height=720, fps=30.0, seed=1)
    fast_gpu = StandInDetector(per_frame_s=0.020, detections=BOX)
    piped = pipeline_fps(fast_gpu, clip, tmp)
    print(f"[standin] 20 ms/frame stand-in detector, 1280x720, {args.hd_frames} frames, "
          f"decode+render+encode (H.264) overlapped: {piped:.1f} fps (target >= 45; "
          f"serial bound {1000 / 20:.0f})")


def bench_bf16(args, tmp: Path) -> None:
    clip = tmp / "bf16.mp4"
    write_clip(clip, args.bf16_frames, width=640, height=360, seed=2)
    frames = decode_all(clip)
    model = real_detector(args).model
    torch_fps = []
    for _ in range(2):  # alternate to share any drift in machine speed
        torch_fps.append(_eager_fps(model, frames))
    fp32 = statistics.median(torch_fps)
    bf16 = detector_alone_fps(real_detector(args, "bf16"), frames)
    print(f"[bf16] torchvision eager fp32 {fp32:.3f} fps, bf16/channels-last {bf16:.3f} fps, "
          f"speedup {bf16 / fp32:.2f}x (target >= 2.5x where the CPU has bf16; this CPU "
          f"{'has' if cpu_features().bf16 else 'has NO'} AVX512-BF16/AMX)")


def bench_proposals(args, tmp: Path) -> None:
    clip = tmp / "proposals.mp4"
    write_clip(clip, args.bf16_frames, width=640, height=360, seed=3)
    frames = decode_all(clip)
    fps = {n: [] for n in (1000, 300)}
    for _ in range(2):  # alternate to share any drift in machine speed
        for n in fps:
            fps[n].append(detector_alone_fps(real_detector(args, proposals=n), frames))
    best = {n: max(v) for n, v in fps.items()}
    print(f"[proposals] {args.model}: 1000 proposals {best[1000]:.3f} fps, 300 proposals "
          f"{best[300]:.3f} fps, speedup {best[300] / best[1000]:.2f}x")


def _eager_fps(model, frames) -> float:
    tensors = [torch.from_numpy(f[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255
               for f in frames]
    with torch.inference_mode():
        model(tensors[:1])
        start = time.perf_counter()
        for t in tensors:
            model([t])
    return len(tensors) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="r50-fpn-v2")
    parser.add_argument("--weights")
    parser.add_argument("--min-size", type=int, default=360)
    parser.add_argument("--max-size", type=int, default=640)
    parser.add_argument("--frames", type=int, default=8, help="frames for the real model")
    parser.add_argument("--hd-frames", type=int, default=150)
    parser.add_argument("--bf16-frames", type=int, default=4)
    parser.add_argument("--size", type=lambda t: tuple(map(int, t.split("x"))),
                        default=(640, 360), metavar="WxH", help="frames for the real model")
    parser.add_argument("--engine", default="torch", help="engine of the real model")
    parser.add_argument("--precision", default="fp32", help="precision of the real model")
    parser.add_argument("--calib", help="int8: a clip or image folder to calibrate on")
    parser.add_argument("--settle", type=int, default=12,
                        help="results of each pipeline run left out of its steady part")
    parser.add_argument("--reps", type=int, default=3,
                        help="pipeline runs of the real model, each between two detector runs")
    parser.add_argument("--pairs", type=int, default=16,
                        help="contention: detector calls with video work beside them")
    parser.add_argument("--detections-only", action="store_true",
                        help="real, contention: no annotated video, only decoding and JSONL")
    parser.add_argument("--video-preset", choices=VIDEO_PRESETS, default=DEFAULT_VIDEO_PRESET,
                        help="real, contention: x264 preset of the annotated video")
    parser.add_argument("--only", choices=("real", "contention", "standin", "bf16",
                                           "proposals"))
    args = parser.parse_args()
    # as the CLI does: torch's UserWarnings and "No CUDA runtime is found" (Inductor, ONNX
    # export) say nothing a reader of these figures can act on
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    print(f"# {cpu_features().describe()}, {torch.get_num_threads()} torch "
          f"threads, torch {torch.__version__}, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, bench in (("standin", bench_standin), ("real", bench_real),
                            ("contention", bench_contention), ("bf16", bench_bf16),
                            ("proposals", bench_proposals)):
            if args.only in (None, name):
                bench(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
