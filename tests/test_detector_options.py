"""The detector's options as a user gives them: conf, classes, iou, max_det and device,
for the detector or for one call, what a printed detector shows, and the type hints of the
public API."""

import numpy as np
import pytest
import torch
from detector_scenes import scene

from drivevision.config import DetectorConfig
from drivevision.detector import Detector
from drivevision.labels import COCO_NAMES


def test_a_printed_detector_shows_what_it_runs_on_one_line(tiny_loaded):
    plain = repr(Detector(tiny_loaded, device="cpu"))
    assert plain == ("Detector(model='tiny-fpn', engine='torch', precision='fp32', device='cpu', "
                     "conf=0.5, classes='driving', proposals=100)")  # the fixture's 100
    tuned = Detector(tiny_loaded, device="cpu", conf=0.25, classes="Car, person", iou=0.6,
                     max_det=20, proposals=1000, agnostic_nms=True)
    assert repr(tuned) == str(tuned) == (
        "Detector(model='tiny-fpn', engine='torch', precision='fp32', device='cpu', conf=0.25, "
        "classes='person,car', agnostic_nms=True, iou=0.6, max_det=20)")
    assert "\n" not in repr(tuned)


def public_functions():
    """(name, function) for each function and public method among ``drivevision``'s names."""
    import inspect

    import drivevision

    for name in drivevision.__all__:
        public = getattr(drivevision, name)
        if inspect.isfunction(public):
            yield name, public
        elif inspect.isclass(public):
            for attr, function in {**vars(public), "__init__": public.__init__}.items():
                if inspect.isfunction(function) and (attr == "__init__" or attr[0] != "_"):
                    yield f"{name}.{attr}", function


def test_every_argument_of_the_public_api_has_a_type_hint():
    import inspect
    import typing

    for name, function in public_functions():
        hints = typing.get_type_hints(function)  # also: every hint names a real type
        bare = [p for p in inspect.signature(function).parameters
                if p not in ("self", "cls") and p not in hints]
        assert not bare, f"{name}: no type hint for {', '.join(bare)}"


@pytest.mark.parametrize("kwargs, message", [({"iou": 0.0}, r"iou in \(0, 1\], but got 0.0"),
                                             ({"max_det": 0}, "max_det to be an int >= 1")])
def test_an_iou_or_max_det_out_of_range_is_refused(tiny_loaded, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Detector(tiny_loaded, device="cpu", **kwargs)


def test_names_index_of_a_class_the_model_lacks_names_the_close_ones(tiny_loaded):
    names = Detector(tiny_loaded, device="cpu").names
    assert names.index("car") == 3 and names == COCO_NAMES and repr(names) == repr(COCO_NAMES)
    with pytest.raises(ValueError, match=r"^Unknown class 'cars'; did you mean car or "):
        names.index("cars")
    with pytest.raises(ValueError, match=r"^Unknown class 'zzz'; expected one of the model's "
                                         r"classes: person \(1\), bicycle \(2\), car \(3\)"):
        names.index("zzz")


def test_a_calls_conf_and_classes_replace_the_detectors_for_that_call_only(tiny_loaded):
    frame = scene(120, 200, seed=1)
    detector = Detector(tiny_loaded, device="cpu")  # 0.5, driving: random weights score ~0.01
    wide = detector.infer([frame], conf=0.0, classes="all")[0]
    conf, classes = float(np.median(wide.scores)), ["car", "truck", 1]  # 1: person
    some = detector(frame, conf=conf, classes=classes)
    assert some == Detector(tiny_loaded, device="cpu", conf=conf, classes=classes)(frame)
    assert 0 < len(some) < len(wide) and set(some.class_ids) <= {1, 3, 8}
    assert len(detector(frame)) == 0  # its own conf, 0.5, untouched
    detector.middle.fixed = True  # the sync-free path a CUDA run takes, here on the CPU
    assert detector(frame, conf=conf, classes=classes) == some


@pytest.mark.parametrize("options, message", [
    (dict(conf=1.5), r"Expected conf in \[0, 1\], but got 1.5"),
    (dict(conf=-0.1), r"Expected conf in \[0, 1\]"),
    (dict(classes="unicorn"), "Unknown class 'unicorn'"),
])
def test_a_bad_conf_or_class_for_one_call_says_what_was_expected(tiny_loaded, options, message):
    detector = Detector(tiny_loaded, device="cpu")
    with pytest.raises(ValueError, match=message):
        detector(scene(96, 160, seed=0), **options)
    with pytest.raises(ValueError, match=message):
        detector.infer([scene(96, 160, seed=0)], **options)


@pytest.mark.parametrize("given, name", [(torch.device("cpu"), "cpu"),
                                         (torch.device("cuda", 1), "cuda:1"), (0, "cuda:0"),
                                         (np.int64(2), "cuda:2"), ("cuda:1", "cuda:1")])
def test_a_torch_device_or_a_gpu_index_is_taken_as_its_name(given, name):
    # (was: AttributeError, 'torch.device' object has no attribute 'startswith')
    assert DetectorConfig(device=given).device == name


def test_a_detector_runs_on_the_torch_device_it_is_given(tiny_loaded):
    assert Detector(tiny_loaded, device=torch.device("cpu")).device == torch.device("cpu")


@pytest.mark.parametrize("given, found", [(1.5, r"1.5 \(float\)"), (True, r"True \(bool\)"),
                                          (None, r"None \(NoneType\)")])
def test_a_device_of_another_kind_is_a_type_error_saying_what_is_taken(tiny_loaded, given,
                                                                       found):
    expected = (r"^Expected device as a str \(auto, cpu, cuda, cuda:N\), a torch.device or a "
                r"GPU index, but got " + found + "$")
    with pytest.raises(TypeError, match=expected):
        DetectorConfig(device=given)
    with pytest.raises(TypeError, match=expected):
        Detector(tiny_loaded, device=given)


@pytest.mark.parametrize("conf, error, message", [
    (50, ValueError, r"^Expected conf in \[0, 1\], but got 50$"),
    (-0.1, ValueError, r"^Expected conf in \[0, 1\], but got -0.1$"),
    ("0.5", TypeError, r"^Expected conf as a number in \[0, 1\], but got '0.5' \(str\)$"),
])
def test_a_conf_outside_0_to_1_is_refused_by_the_constructor_as_by_the_config(tiny_loaded, conf,
                                                                            error, message):
    # (was: Detector(loaded, conf=50), a percentage, built and found nothing, silently)
    with pytest.raises(error, match=message):
        Detector(tiny_loaded, device="cpu", conf=conf)
    with pytest.raises(error, match=message):
        DetectorConfig(conf=conf)
    with pytest.raises(error, match=message):
        Detector(tiny_loaded, device="cpu")(scene(48, 64, seed=0), conf=conf)


NO_CUDA = "Expected a CUDA GPU for device='cuda', but torch sees none; use device='cpu'"


@pytest.mark.parametrize("device, gpus, message", [
    ("cuda", 0, NO_CUDA),
    (torch.device("cuda", 0), 0, NO_CUDA),
    (1, 1, "Expected device cuda:N with N below 1 (torch sees 1 GPU), but got cuda:1"),
    ("cuda:x", 1, "Expected device auto, cpu, cuda or cuda:N, but got 'cuda:x'"),
])
def test_a_device_this_machine_cannot_run_is_refused_naming_the_keyword_not_the_option(
        monkeypatch, tiny_loaded, tiny_checkpoint, clip_path, device, gpus, message):
    """A Python caller has no --device: the refusal names the keyword it gave, as conf's
    does (the commands name --device, tests/cli/test_options.py)."""
    from drivevision import detect_video

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    config = DetectorConfig(weights=tiny_checkpoint, device=device)
    for build in (lambda: Detector(tiny_loaded, device=device),
                  lambda: Detector.from_config(config, progress=False),
                  lambda: detect_video(clip_path, detector=config)):
        with pytest.raises(ValueError) as refused:
            build()
        assert str(refused.value) == message


NO_CALIB = ("int8 needs frames to calibrate on: pass calib=CLIP_OR_FOLDER, a video or a folder "
            "of images from your own cameras (16 frames are used{}; the result is cached)")


@pytest.mark.parametrize("settings, message", [
    (dict(precision="int8"), NO_CALIB.format(", calib_frames=N for more")),
    (dict(precision="int8", calib="clip.mp4", calib_frames=0),
     "Expected calib_frames between 1 and 256 (each frame is held in memory while "
     "calibrating), but got 0"),
])
def test_int8_settings_a_config_refuses_name_its_keywords_not_the_options(settings, message):
    """The commands name --calib and --calib-frames (tests/engines/test_int8.py)."""
    with pytest.raises(ValueError) as refused:
        DetectorConfig(engine="onnx", **settings)
    assert str(refused.value) == message


def test_int8_without_calib_is_refused_by_the_constructor_naming_calib(tiny_loaded):
    with pytest.raises(ValueError) as refused:
        Detector(tiny_loaded, engine="onnx", device="cpu", precision="int8")
    assert str(refused.value) == NO_CALIB.format("")  # calib_frames is not Detector's


@pytest.mark.parametrize("engine, precision, message", [
    ("onnx", "fp16", "Expected fp16 on a CUDA device; on the CPU the onnx engine runs fp32, "
                     "or int8 with calib="),
    ("tensorrt", "fp16", "Expected fp16 on a CUDA device, as the tensorrt engine runs on CUDA "
                         "only; on the CPU use engine='onnx' or 'compiled'"),
    ("torch", "int8", "Expected engine='onnx' or 'compiled' (or 'auto') for int8, but got "
                      "'torch'; a TensorRT int8 engine: drivevision export --format tensorrt "
                      "--precision int8 --calib CLIP_OR_FOLDER"),
])
def test_an_engine_that_cannot_run_a_precision_is_refused_naming_the_keywords(
        tiny_loaded, tiny_checkpoint, clip_path, engine, precision, message):
    """What to run instead is said in keywords, as typed in Python (the commands name
    --engine and --calib, tests/cli/test_options.py); the one command left is the export
    that makes a TensorRT int8 engine."""
    from drivevision import detect_video

    calib = clip_path if precision == "int8" else None
    config = DetectorConfig(weights=tiny_checkpoint, engine=engine, device="cpu",
                            precision=precision, calib=calib)
    for build in (lambda: Detector(tiny_loaded, engine=engine, device="cpu",
                                   precision=precision, calib=calib),
                  lambda: Detector.from_config(config, progress=False),
                  lambda: detect_video(clip_path, detector=config)):
        with pytest.raises(ValueError) as refused:
            build()
        assert str(refused.value) == message


@pytest.mark.parametrize("footage, says", [
    ("missing.mp4", "{} does not exist"),
    ("empty", "folder {} has no images"),
])
def test_calib_footage_that_cannot_be_read_is_refused_naming_calib(
        tiny_loaded, tiny_checkpoint, clip_path, tmp_path, footage, says):
    """As --calib is by the commands (tests/engines/test_int8.py), before any model runs."""
    from drivevision import detect_video
    from drivevision.errors import SourceError

    (tmp_path / "empty").mkdir()
    calib = str(tmp_path / footage)
    message = ("Expected calib to be a video file or a folder of images from your own cameras, "
               f"but {says.format(calib)}")
    config = DetectorConfig(weights=tiny_checkpoint, engine="onnx", device="cpu",
                            precision="int8", calib=calib)
    for build in (lambda: Detector(tiny_loaded, engine="onnx", device="cpu", precision="int8",
                                   calib=calib),
                  lambda: Detector.from_config(config, progress=False),
                  lambda: detect_video(clip_path, detector=config)):
        with pytest.raises(SourceError) as refused:
            build()
        assert str(refused.value) == message


def test_a_checkpoint_of_another_model_warns_naming_the_keyword_not_the_option(
        tiny_checkpoint, caplog):
    """Its own architecture wins, as with the commands' --model (tests/cli/test_cli.py)."""
    import logging

    from drivevision.model import load_model

    said = ("tiny.pt holds a tiny-fpn model, not r50-fpn: using tiny-fpn (a checkpoint's own "
            "architecture wins over {})")
    for load, keyword in ((lambda: load_model("r50-fpn", tiny_checkpoint), "name='r50-fpn'"),
                          (lambda: Detector.from_config(DetectorConfig(
                              model="r50-fpn", weights=tiny_checkpoint, device="cpu")).loaded,
                           "model='r50-fpn'")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="drivevision"):
            assert load().name == "tiny-fpn"
        assert [r.getMessage() for r in caplog.records] == [said.format(keyword)]


def test_compiled_int8_without_torchao_is_refused_naming_the_keyword(
        tiny_loaded, tiny_checkpoint, clip_path, monkeypatch):
    """The commands name --engine (tests/engines/test_int8.py)."""
    import sys

    monkeypatch.setitem(sys.modules, "torchao", None)  # as where it is not installed
    config = DetectorConfig(weights=tiny_checkpoint, engine="compiled", device="cpu",
                            precision="int8", calib=clip_path)
    for build in (lambda: Detector(tiny_loaded, engine="compiled", device="cpu",
                                   precision="int8", calib=clip_path),
                  lambda: Detector.from_config(config, progress=False)):
        with pytest.raises(ImportError) as refused:
            build()
        assert str(refused.value) == ("Expected torchao for int8 on the compiled engine (pip "
                                      "install 'drivevision[int8]'), or use engine='onnx'")
