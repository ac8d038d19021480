"""YOLO labels and object crops as outputs, in-process with a stand-in detector."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
from standins import ArraySource, FixedDetector

from drivevision.detections import Detections
from drivevision.errors import SinkError
from drivevision.io.dataset_sinks import (
    RECORD,
    CropSink,
    YoloSink,
    crop_box,
    frame_stems,
    kept_classes,
    yolo_lines,
)
from drivevision.io.frames import Frame
from drivevision.labels import COCO_NAMES
from drivevision.pipeline.runner import detect_video

# a car (COCO 3) and a truck (8) in every frame of 64x48, one box touching the right edge
BOXES = Detections([[2.4, 3.6, 20.2, 30.1], [40.0, 10.0, 64.0, 47.5]], [0.9, 0.8], [3, 8])


def files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def read_labels(path: Path, width: int, height: int) -> list[tuple[int, list[float]]]:
    """A YOLO label file back in pixels: (class, [x1, y1, x2, y2]) per line."""
    boxes = []
    for line in path.read_text().splitlines():
        c, x, y, w, h = line.split()
        x, y, w, h = float(x) * width, float(y) * height, float(w) * width, float(h) * height
        boxes.append((int(c), [x - w / 2, y - h / 2, x + w / 2, y + h / 2]))
    return boxes


def test_yolo_labels_read_back_to_the_boxes_within_a_pixel(tmp_path):
    summary = detect_video(ArraySource(3), detector=FixedDetector(detections=BOXES),
                           yolo=tmp_path / "ds")
    ds = tmp_path / "ds"
    assert summary.frames == 3
    names = (ds / "classes.txt").read_text().splitlines()
    assert names == [n for n in COCO_NAMES if n not in ("__background__", "N/A")]
    for i in range(3):
        assert cv2.imread(str(ds / f"images/frame_{i:06d}.jpg")).shape == (48, 64, 3)
        labels = read_labels(ds / f"labels/frame_{i:06d}.txt", 64, 48)
        assert [names[c] for c, _ in labels] == ["car", "truck"]
        for (_, box), want in zip(labels, BOXES.xyxy.tolist(), strict=True):
            assert box == pytest.approx(want, abs=1.0)
    assert "names:\n  0: \"person\"\n" in (ds / "data.yaml").read_text()
    assert files_in(ds) == sorted([RECORD, "classes.txt", "data.yaml",
                                   *(f"images/frame_{i:06d}.jpg" for i in range(3)),
                                   *(f"labels/frame_{i:06d}.txt" for i in range(3))])


def test_yolo_classes_are_renumbered_over_the_classes_kept():
    assert kept_classes(COCO_NAMES, (8, 3)) == (3, 8)
    lines = yolo_lines(BOXES, {3: 0, 8: 1}, 64, 48)
    assert [line.split()[0] for line in lines] == ["0", "1"]
    assert lines[1].split()[1:] == ["0.812500", "0.598958", "0.375000", "0.781250"]


def test_frames_without_detections_are_left_out_of_the_dataset(tmp_path):
    summary = detect_video(ArraySource(2), detector=FixedDetector(detections=Detections.empty()),
                           yolo=tmp_path / "ds", crops=tmp_path / "crops")
    assert summary.frames == 2
    assert files_in(tmp_path / "ds") == [RECORD, "classes.txt", "data.yaml"]
    assert files_in(tmp_path / "crops") == [RECORD]


def test_crops_are_their_boxes_cut_from_the_unannotated_frame(tmp_path):
    detect_video(ArraySource(2), detector=FixedDetector(detections=BOXES),
                 crops=tmp_path / "crops")
    crops = tmp_path / "crops"
    assert files_in(crops) == [RECORD, "car/frame_000000_0.jpg", "car/frame_000001_0.jpg",
                               "truck/frame_000000_1.jpg", "truck/frame_000001_1.jpg"]
    car = cv2.imread(str(crops / "car/frame_000001_0.jpg"))
    truck = cv2.imread(str(crops / "truck/frame_000001_1.jpg"))
    assert car.shape == (26, 18, 3) and truck.shape == (38, 24, 3)  # the boxes, rounded
    assert abs(int(car.mean()) - 1) <= 1  # frame 1's pixels are 1: no box or label drawn


@pytest.mark.parametrize("box, size, want", [
    ([2.4, 3.6, 20.2, 30.1], (64, 48), (2, 4, 20, 30)),
    ([-3.0, -1.0, 70.0, 50.0], (64, 48), (0, 0, 64, 48)),  # clipped to the frame
    ([10.2, 5.0, 10.3, 5.1], (64, 48), (10, 5, 11, 6)),    # never empty
    ([63.8, 47.9, 64.0, 48.0], (64, 48), (63, 47, 64, 48)),
])
def test_crop_box_rounds_to_pixels_inside_the_frame(box, size, want):
    x1, y1, x2, y2 = crop_box(box, *size)
    assert (x1, y1, x2, y2) == want
    assert abs((x2 - x1) - min(box[2] - box[0], size[0])) <= 1


def test_a_folder_of_images_keeps_their_names_and_formats(tmp_path):
    frames = [Frame(0, 0.0, np.full((48, 64, 3), 9, np.uint8), 0.0, file="left.png"),
              Frame(2, 200.0, np.full((48, 64, 3), 9, np.uint8), 0.0, file="right.jpeg")]
    with YoloSink(tmp_path / "ds", COCO_NAMES, (3, 8), ["left.png", "x.png", "right.jpeg"]) as ds, \
            CropSink(tmp_path / "crops", COCO_NAMES) as crops:
        for frame in frames:
            ds.write(frame, BOXES, None)
            crops.write(frame, BOXES, None)
    assert "images/left.png" in files_in(tmp_path / "ds")
    assert "images/right.jpeg" in files_in(tmp_path / "ds")
    assert "labels/right.txt" in files_in(tmp_path / "ds")
    assert "truck/right_1.jpg" in files_in(tmp_path / "crops")
    assert (tmp_path / "ds/classes.txt").read_text() == "car\ntruck\n"
    with pytest.raises(ValueError, match="a.png and a.jpg would both be labelled a.txt"):
        frame_stems(["a.png", "b.png", "a.jpg"])


@pytest.mark.parametrize("sink, mine", [
    (lambda p: YoloSink(p, COCO_NAMES, (3,)), "images/mine.jpg"),
    (lambda p: YoloSink(p, COCO_NAMES, (3,)), "data.yaml"),
    (lambda p: CropSink(p, COCO_NAMES), "car/mine.jpg"),
])
def test_a_folder_holding_files_no_run_wrote_is_refused_and_left_alone(tmp_path, sink, mine):
    folder = tmp_path / "out"
    (folder / mine).parent.mkdir(parents=True, exist_ok=True)
    (folder / mine).write_text("mine")
    (folder / "notes.txt").write_text("mine too")
    with pytest.raises(SinkError, match=rf"1 file that no drivevision run wrote there \({mine}\)"):
        sink(folder)
    assert files_in(folder) == sorted([mine, "notes.txt"])


def test_a_second_run_replaces_the_first_and_keeps_the_users_files(tmp_path):
    ds = tmp_path / "ds"
    detect_video(ArraySource(4), detector=FixedDetector(detections=BOXES), yolo=ds,
                 crops=tmp_path / "crops")
    (ds / "README.md").write_text("mine")
    summary = detect_video(ArraySource(2), detector=FixedDetector(detections=BOXES[:1]),
                           yolo=ds, crops=tmp_path / "crops")
    assert files_in(ds) == [RECORD, "README.md", "classes.txt", "data.yaml",
                            "images/frame_000000.jpg", "images/frame_000001.jpg",
                            "labels/frame_000000.txt", "labels/frame_000001.txt"]
    assert files_in(tmp_path / "crops") == [RECORD, "car/frame_000000_0.jpg",
                                            "car/frame_000001_0.jpg"]
    assert not (tmp_path / "crops" / "truck").exists()  # emptied by the replacement
    assert any("6 of them not written again were removed" in n for n in summary.notes)
    assert (ds / RECORD).read_text().splitlines()[1:] == files_in(ds)[2:]


def test_a_folder_another_run_is_writing_is_refused(tmp_path, held_by_another_run):
    pid = held_by_another_run(tmp_path / "ds")
    with pytest.raises(SinkError, match=rf"is being written by another run \(pid {pid}"):
        YoloSink(tmp_path / "ds", COCO_NAMES, (3,))
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("failure", ["full disk", "image refused by the encoder"])
def test_a_label_never_stays_without_its_image(tmp_path, monkeypatch, failure):
    """An image that cannot be written (a full disk) or encoded at frame 2, in a folder an
    earlier run filled: the run fails naming the file, the earlier run's dataset stays
    whole, and in what the failed run kept beside it every label file has its image."""
    detect_video(ArraySource(4), detector=FixedDetector(detections=BOXES), yolo=tmp_path / "ds")
    if failure == "full disk":
        real = Path.write_bytes

        def write_bytes(path, data):
            if path.name == ".frame_000002.part.jpg":
                real(path, data[:100])
                raise OSError(28, "No space left on device")
            return real(path, data)
        monkeypatch.setattr(Path, "write_bytes", write_bytes)
    else:
        import drivevision.io.dataset_sinks as dataset_sinks

        real = dataset_sinks.encode_image
        calls = []

        def encode(image, suffix):
            calls.append(suffix)
            if len(calls) == 3:
                raise SinkError("Cannot encode an image as .jpg")
            return real(image, suffix)
        monkeypatch.setattr(dataset_sinks, "encode_image", encode)
    with pytest.raises(Exception, match="frame_000002|encode") as failed:
        detect_video(ArraySource(4), detector=FixedDetector(detections=BOXES),
                     yolo=tmp_path / "ds")
    monkeypatch.undo()
    assert ".part" not in str(failed.value)
    for ds, frames in ((tmp_path / "ds", 4), (tmp_path / "ds.partial", 2)):
        labels = sorted(p.stem for p in (ds / "labels").iterdir())
        images = sorted(p.stem for p in (ds / "images").iterdir())
        assert labels == images == [f"frame_{i:06d}" for i in range(frames)]
        assert not [p for p in ds.rglob(".*") if p.name != RECORD]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "ds.partial"]


@pytest.mark.parametrize("kind", ["--yolo", "--crops", "-o folder"])
def test_ctrl_c_keeps_an_earlier_runs_folder_and_puts_its_own_beside(tmp_path, kind):
    """A run into a folder an earlier run filled, stopped part way: the folder stays as the
    earlier run left it; this run's files are in FOLDER.partial (a folder a later run may
    replace), named in a note and ``placed``. A finished rerun then replaces the folder."""
    out = tmp_path / "out"

    def run(n: int, on_result=None):
        where = {"--yolo": {"yolo": out}, "--crops": {"crops": out},
                 "-o folder": {"output": out}}[kind]
        return detect_video(ArraySource(n), detector=FixedDetector(0.002, detections=BOXES),
                            on_result=on_result, **where)

    run(6)
    before = {f: (out / f).read_bytes() for f in files_in(out)}
    seen = []

    def ctrl_c_at_the_third(result):
        seen.append(result)
        if len(seen) == 3:
            os.kill(os.getpid(), signal.SIGINT)

    summary = run(10_000, ctrl_c_at_the_third)
    assert summary.interrupted and summary.frames < 10_000
    assert {f: (out / f).read_bytes() for f in files_in(out)} == before
    partial = tmp_path / "out.partial"
    assert summary.placed == {out: partial}
    assert any(n.startswith(f"{out} was left as it was (the run was interrupted); this run's ")
               and n.endswith(f" are in {partial}") for n in summary.notes), summary.notes
    frames = {int(f.split("frame_")[1][:6]) for f in files_in(partial) if "frame_" in f}
    assert frames == set(range(summary.frames))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.partial"]
    run(2)  # finished: replaces the earlier run, whose frames 2-5 go
    assert {int(f.split("frame_")[1][:6]) for f in files_in(out) if "frame_" in f} == {0, 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.partial"]


def test_a_killed_runs_part_folder_is_named_and_a_running_ones_is_not(tmp_path):
    """A run into an earlier run's folder writes into .NAME.part.PID beside it, marked as a
    run's and locked while it runs: one a killed run left is what --clean removes; the
    running one is left alone, and so is a user's hidden folder of such a name (before:
    named, and removed whole by --clean)."""
    from drivevision.io.claims import PART_MARK
    from drivevision.io.leftovers import leftovers

    detect_video(ArraySource(2), detector=FixedDetector(detections=BOXES), yolo=tmp_path / "ds")
    killed = tmp_path / ".ds.part.99999"
    (killed / "labels").mkdir(parents=True)
    (killed / PART_MARK).touch()  # as the killed run marked it
    for users in (".photos.part.3", ".export-2026"):
        (tmp_path / users).mkdir()
        (tmp_path / users / "a.jpg").write_bytes(b"precious")
    with YoloSink(tmp_path / "ds", COCO_NAMES, None) as sink:
        running = sink.tree.root
        assert running.parent == tmp_path and running.name.startswith(".ds.part.")
        assert (running / PART_MARK).is_file()
        assert leftovers([tmp_path]) == [killed]
    assert not running.exists()


def test_the_warning_for_a_killed_runs_part_folder_speaks_of_a_folder(tmp_path):
    """A part folder is no file that plays or reads: the warning says to rename the folder
    (before: "a part file plays or reads as it is" for a folder alone)."""
    from drivevision.io.claims import PART_MARK
    from drivevision.io.leftovers import leftover_warning, leftovers

    (tmp_path / ".ds.part.99999" / "labels").mkdir(parents=True)
    (tmp_path / ".ds.part.99999" / PART_MARK).touch()
    folder_only = leftover_warning(leftovers([tmp_path]))
    assert "part file" not in folder_only
    assert "rename the folder to keep them; --clean removes them)" in folder_only
    (tmp_path / ".out.part.99999.mp4").write_bytes(b"killed")
    both = leftover_warning(leftovers([tmp_path]))
    assert "a part file plays or reads as it is: rename it to keep it; a part folder" in both


def test_a_file_that_failed_is_not_moved_in_when_the_folder_is_finished(tmp_path):
    """A caller that goes on after a failed file (an eval report closes its folder
    whatever happened) finishes the folder with the files that were written."""
    from drivevision.errors import WriteError
    from drivevision.io.dataset_sinks import CROPS_FOLDER
    from drivevision.io.recorded import RecordedTree

    first = RecordedTree(tmp_path / "out", "--crops", CROPS_FOLDER)
    first.put("car/a.jpg", b"a")
    first.close()
    tree = RecordedTree(tmp_path / "out", "--crops", CROPS_FOLDER)
    tree.put("car/b.jpg", b"b")

    def no_room(tmp):
        tmp.write_bytes(b"c"[:0])
        raise OSError(28, "No space left on device")
    with pytest.raises(WriteError, match=r"Cannot write .*out/car/c\.jpg: the disk is full"):
        tree.put_with("car/c.jpg", no_room)
    tree.close()
    assert files_in(tmp_path / "out") == [RECORD, "car/b.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
