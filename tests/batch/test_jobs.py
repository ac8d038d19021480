"""Which inputs a command line names, and where their outputs go."""

from pathlib import Path

import pytest

from drivevision.batch import find_jobs


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "footage"
    touch(root / "2026-11-28" / "front_0001.mp4")
    touch(root / "2026-11-28" / "front_0002.MOV")
    touch(root / "2026-11-28" / "notes.txt")
    touch(root / "cam" / "frame1.jpg")
    touch(root / "cam" / "frame2.jpg")
    touch(root / ".hidden" / "x.mp4")
    touch(root / "2026-11-28" / ".front_0001.part.7.mp4")
    return root


def test_the_output_folder_is_no_input_when_a_glob_matches_it(tree):
    out = tree / "det"  # footage/* with --out footage/det: an earlier run's annotated video
    touch(out / "2026-11-28" / "front_0001.mp4")
    expanded = sorted(str(p) for p in tree.glob("[!.]*"))  # as the shell gives footage/*
    for inputs in ([str(tree / "*")], expanded):
        assert [j.rel for j in find_jobs(inputs, out)] == [  # was: + det/2026-11-28/front_0001
            "2026-11-28/front_0001", "2026-11-28/front_0002", "cam"]
    with pytest.raises(ValueError, match="Nothing but the output folder"):
        find_jobs([str(tree / "d*")], out)
    assert [j.rel for j in find_jobs([str(tree)], tree)] == [  # --out the footage itself
        "2026-11-28/front_0001", "2026-11-28/front_0002", "cam", "det/2026-11-28/front_0001"]


def test_a_folder_is_searched_for_videos_and_folders_of_images(tree, tmp_path):
    jobs = find_jobs([str(tree)], tmp_path / "out")
    assert [(j.rel, j.kind) for j in jobs] == [("2026-11-28/front_0001", "video"),
                                              ("2026-11-28/front_0002", "video"),
                                              ("cam", "images")]
    assert jobs[0].source == str(tree / "2026-11-28" / "front_0001.mp4")


def test_a_glob_is_relative_to_its_fixed_part_and_a_file_to_its_folder(tree, tmp_path):
    globbed = find_jobs([str(tree / "*" / "*.mp4")], tmp_path / "out")
    assert [j.rel for j in globbed] == ["2026-11-28/front_0001"]
    single = find_jobs([str(tree / "2026-11-28" / "front_0002.MOV")], tmp_path / "out")
    assert [j.rel for j in single] == ["front_0002"]


def test_a_list_file_names_inputs_relative_to_its_folder(tree, tmp_path):
    listing = touch(tree / "list.txt", b"# today\n2026-11-28/front_0001.mp4\n\ncam\n")
    jobs = find_jobs([], tmp_path / "out", str(listing))
    assert [j.rel for j in jobs] == ["2026-11-28/front_0001", "cam"]


def test_the_output_folder_inside_an_input_folder_is_never_searched(tree):
    out = tree / "det"
    touch(out / "2026-11-28" / "front_0001.mp4")  # an annotated video of an earlier run
    assert [j.rel for j in find_jobs([str(tree)], out)] == [
        "2026-11-28/front_0001", "2026-11-28/front_0002", "cam"]


@pytest.mark.parametrize("inputs, message", [
    (["missing.mp4"], "No such file or folder: missing.mp4"),
    (["nothing*.mp4"], "Nothing matches nothing*.mp4"),
    ([], "No inputs"),
])
def test_inputs_that_name_nothing_are_one_line(tmp_path, monkeypatch, inputs, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        find_jobs(inputs, tmp_path / "out")


@pytest.mark.parametrize("name, message", [
    ("list.txt", "list.txt is a .txt file, not a video, an image or a folder: if it lists "
                 "inputs one path a line, give it as --list list.txt"),
    ("front.jsonl", "front.jsonl is a .jsonl file, not a video, an image or a folder"),
    ("front.CSV", "front.CSV is a .csv file, not a video, an image or a folder"),
    ("info.json", "info.json is a .json file, not a video, an image or a folder"),
])
def test_a_file_plainly_not_footage_is_refused_up_front(tmp_path, monkeypatch, name, message):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / name, b"clip.mp4\n")
    with pytest.raises(ValueError) as refused:
        find_jobs([name], tmp_path / "out")
    assert str(refused.value) == message


def test_a_folder_named_like_a_text_file_and_a_video_of_any_suffix_stay_inputs(tmp_path):
    folder = touch(tmp_path / "takes.txt" / "clip.mp4").parent
    odd = touch(tmp_path / "drive.dat")  # named on the command line: tried as a video
    jobs = find_jobs([str(folder), str(odd)], tmp_path / "out")
    assert [(j.rel, j.kind) for j in jobs] == [("takes.txt/clip", "video"), ("drive", "video")]


def test_several_inputs_are_named_relative_to_the_folder_holding_them_all(tmp_path):
    for day in ("2026-11-28", "2026-11-29"):  # a dashcam numbers each day's clips afresh
        touch(tmp_path / "footage" / day / "FILE0001.MP4")
        touch(tmp_path / "footage" / day / "cam" / "frame1.jpg")
    days = [str(tmp_path / "footage" / day) for day in ("2026-11-28", "2026-11-29")]
    assert [j.rel for j in find_jobs(days, tmp_path / "out")] == [
        "2026-11-28/FILE0001", "2026-11-28/cam", "2026-11-29/FILE0001", "2026-11-29/cam"]
    clips = sorted(str(p) for p in (tmp_path / "footage").glob("*/FILE0001.MP4"))
    quoted = find_jobs([str(tmp_path / "footage" / "*" / "FILE0001.MP4")], tmp_path / "out")
    assert [j.rel for j in find_jobs(clips, tmp_path / "out")] == [j.rel for j in quoted] == [
        "2026-11-28/FILE0001", "2026-11-29/FILE0001"]  # the shell's expansion, or the glob's


def test_two_inputs_with_the_same_output_name_are_refused(tmp_path):
    touch(tmp_path / "a" / "clip.mp4")
    touch(tmp_path / "a" / "clip.MOV")
    with pytest.raises(ValueError, match="would write the same outputs"):
        find_jobs([str(tmp_path / "a")], tmp_path / "out")
    with pytest.raises(ValueError, match="batch's own report"):
        find_jobs([str(touch(tmp_path / "batch.mp4"))], tmp_path / "out")


def test_the_manifest_records_what_auto_settles_to_on_this_machine(monkeypatch):
    from drivevision.batch.work import BatchSettings
    from drivevision.config import DetectorConfig
    from drivevision.engines import hardware
    from tests.engines.test_hardware import EPYC, SAPPHIRE

    def key_on(cpuinfo: str, **config) -> dict:
        monkeypatch.setattr(hardware, "cpu_features", lambda: hardware.parse_cpuinfo(cpuinfo))
        return BatchSettings(DetectorConfig(device="cpu", **config)).key()["config"]

    amx = key_on(SAPPHIRE, engine="auto", precision="auto")
    assert (amx["engine"], amx["precision"]) == ("compiled", "bf16")
    assert amx == key_on(SAPPHIRE, engine="compiled", precision="bf16")  # the same outputs
    avx2 = key_on(EPYC, engine="auto", precision="auto")
    assert avx2["precision"] == "fp32" and avx2 != amx  # a rerun there redoes the inputs


def test_agnostic_nms_is_a_setting_of_its_own_and_old_manifests_stay_done():
    from drivevision.batch.work import BatchSettings
    from drivevision.config import DetectorConfig

    plain = BatchSettings(DetectorConfig(device="cpu", engine="torch", precision="fp32")).key()
    one_box = BatchSettings(DetectorConfig(device="cpu", engine="torch", precision="fp32",
                                           agnostic_nms=True)).key()
    assert not {"agnostic_nms", "iou", "max_det"} & set(plain["config"])  # as older manifests
    assert one_box["config"]["agnostic_nms"] is True and one_box != plain


def test_the_drawing_style_counts_only_where_a_video_is_drawn():
    from drivevision.batch.work import BatchSettings
    from drivevision.config import DetectorConfig, DrawStyle

    config = DetectorConfig(device="cpu", engine="torch", precision="fp32")
    thin = DrawStyle(labels=False, line_width=1)
    assert "style" not in BatchSettings(config, video=True).key()  # as older manifests
    assert BatchSettings(config, style=thin).key() == BatchSettings(config).key()  # no video
    drawn = BatchSettings(config, video=True, style=thin).key()
    assert drawn["style"] == {"labels": False, "scores": True, "line_width": 1}


@pytest.mark.parametrize("option", [{"iou": 0.6}, {"max_det": 20}])
def test_the_box_nms_options_are_settings_of_their_own(option):
    from drivevision.batch.work import BatchSettings
    from drivevision.config import DetectorConfig

    fp32 = {"device": "cpu", "engine": "torch", "precision": "fp32"}
    changed = BatchSettings(DetectorConfig(**fp32, **option)).key()
    assert changed != BatchSettings(DetectorConfig(**fp32)).key()
    assert changed["config"][next(iter(option))] == next(iter(option.values()))


def test_batch_csv_lists_outputs_whose_names_hold_spaces_so_they_can_be_told_apart(tmp_path):
    """Dashcam folders and clips named by people hold spaces ("rear 0001 Straße ü.mp4"):
    the outputs cell of batch.csv must split back into the files batch.json lists."""
    import csv

    from drivevision.batch.manifest import write_reports

    outputs = ["2026-11-28/rear 0001 Straße ü.jsonl", "2026-11-28/rear 0001 Straße ü.mp4"]
    row = {"input": "/f/2026-11-28/rear 0001 Straße ü.mp4", "status": "done", "frames": 8,
           "detections": 68, "seconds": 0.4, "error": "", "outputs": outputs}
    write_reports(tmp_path, [row], {})
    with (tmp_path / "batch.csv").open(encoding="utf-8", newline="") as f:
        [listed] = list(csv.DictReader(f))
    assert listed["outputs"].split("; ") == outputs


def test_a_glob_passes_over_what_it_matches_that_is_not_footage_and_says_so(tmp_path):
    day = tmp_path / "day"
    touch(day / "front_2.mp4")
    touch(day / "front_10.mp4")
    touch(day / "notes.txt")
    touch(day / "IMG 1.jpg")
    (day / "gone.mp4").symlink_to(day / "deleted.mp4")
    passed: list[str] = []
    jobs = find_jobs([str(day / "*")], tmp_path / "out", passed=passed)
    # before: notes.txt and the link were inputs, each failing as a video (exit 3)
    assert [(j.rel, j.kind) for j in jobs] == [
        ("front_2", "video"), ("front_10", "video"), ("IMG 1", "images")]
    assert passed == [f"{day / 'gone.mp4'} (a link to a missing file)",
                      f"{day / 'notes.txt'} (a .txt file)"]


def test_a_glob_matching_only_what_is_not_footage_and_a_link_to_nothing_are_one_line(
        tmp_path):
    touch(tmp_path / "notes.txt")
    with pytest.raises(ValueError) as refused:
        find_jobs([str(tmp_path / "*.txt")], tmp_path / "out")
    assert str(refused.value) == (f"Nothing but what is not footage matches "
                                  f"{tmp_path / '*.txt'}: {tmp_path / 'notes.txt'} (a .txt file)")
    (tmp_path / "clip.mp4").symlink_to(tmp_path / "deleted.mp4")
    with pytest.raises(ValueError) as refused:
        find_jobs([str(tmp_path / "clip.mp4")], tmp_path / "out")
    assert str(refused.value) == (f"{tmp_path / 'clip.mp4'} is a link to "
                                  f"{tmp_path / 'deleted.mp4'}, which does not exist")


@pytest.fixture
def share(tmp_path):
    """A dashcam export on a NAS share or a card: each day's folder with the NAS's
    thumbnails of its photos beside them, recycle bins and the system's own folders."""
    root = tmp_path / "share"
    for day in ("2026-11-28", "2026-11-29"):
        touch(root / day / "IMG_0001.jpg")
        for size in ("M", "S"):  # Synology: a folder named as the photo, its thumbnails in it
            touch(root / day / "@eaDir" / "IMG_0001.jpg" / f"SYNOFILE_THUMB_{size}.jpg")
        touch(root / day / ".@__thumb" / "s100IMG_0001.jpg")  # QNAP's
    for bin_ in ("#recycle", "@Recycle", "$RECYCLE.BIN", "System Volume Information",
                 ".Trashes"):
        touch(root / bin_ / "old" / "front_0001.mp4")
    return root


def test_the_folders_a_nas_or_the_system_keeps_are_passed_over_and_named(share, tmp_path):
    metadata: list[Path] = []
    jobs = find_jobs([str(share)], tmp_path / "out", metadata=metadata)
    # before: also each @eaDir/IMG_0001.jpg (its thumbnails) and every recycle bin's video
    assert [(j.rel, j.kind) for j in jobs] == [("2026-11-28", "images"),
                                              ("2026-11-29", "images")]
    assert metadata == [share / n for n in ("#recycle", "$RECYCLE.BIN", "@Recycle",
                                            "System Volume Information",
                                            "2026-11-28/@eaDir", "2026-11-29/@eaDir")]


def test_a_glob_passes_over_what_lies_in_a_nas_s_folders(share, tmp_path):
    metadata: list[Path] = []
    jobs = find_jobs([str(share / "**" / "*.jpg")], tmp_path / "out", metadata=metadata)
    assert [j.rel for j in jobs] == ["2026-11-28/IMG_0001", "2026-11-29/IMG_0001"]
    assert metadata == [share / "2026-11-28" / "@eaDir", share / "2026-11-29" / "@eaDir"]
    with pytest.raises(ValueError, match="^Nothing but folders a NAS or the system keeps "):
        find_jobs([str(share / "*" / "@eaDir" / "*")], tmp_path / "out")
    named = find_jobs([str(share / "2026-11-28" / "@eaDir")], tmp_path / "out")
    assert [j.rel for j in named] == ["IMG_0001.jpg"]  # named itself: searched as asked


def test_a_folder_holding_only_a_nas_s_folders_is_no_input_and_says_why(tmp_path):
    card = tmp_path / "card"
    touch(card / "@eaDir" / "IMG_0001.jpg" / "SYNOFILE_THUMB_M.jpg")
    touch(card / "System Volume Information" / "IndexerVolumeGuid")
    with pytest.raises(ValueError) as refused:
        find_jobs([str(card)], tmp_path / "out")
    assert str(refused.value) == (
        "No inputs: expected video files, folders with videos or images, globs or --list "
        f"FILE (passed over the folders a NAS or the system keeps: {card / '@eaDir'}, "
        f"{card / 'System Volume Information'})")


def test_a_link_to_a_folder_outside_is_searched_once_and_a_loop_ends(tmp_path):
    card = touch(tmp_path / "sd" / "DCIM" / "FILE0001.MP4").parent
    touch(tmp_path / "footage" / "2026-11-28" / "front.mp4")
    (tmp_path / "footage" / "card").symlink_to(card)  # an SD card's folder linked in
    (tmp_path / "footage" / "same-card").symlink_to(card)  # a second way to the same one
    (tmp_path / "footage" / "2026-11-28" / "up").symlink_to(tmp_path / "footage")  # a loop
    (tmp_path / "footage" / "0-latest").symlink_to(tmp_path / "footage" / "2026-11-28")
    jobs = find_jobs([str(tmp_path / "footage")], tmp_path / "out")
    assert [j.rel for j in jobs] == ["2026-11-28/front", "card/FILE0001"]  # was: no card
