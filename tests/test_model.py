"""Weights resolution: torchvision's COCO weights from torch's cache, offline errors,
checkpoints with names inside or beside them. Nothing here touches the network."""

import urllib.error

import pytest
import torch

from drivevision.errors import WeightsError
from drivevision.labels import COCO_NAMES
from drivevision.model import (
    COCO_WEIGHTS,
    LoadedModel,
    build_model,
    copy_with_proposals,
    load_model,
    save_checkpoint,
)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch cache, and downloads that fail as they do offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path


def test_offline_without_cached_weights_names_the_file_and_folder(torch_home):
    with pytest.raises(WeightsError) as info:
        load_model("r50-fpn")
    message = str(info.value)
    file = COCO_WEIGHTS["r50-fpn"].url.rsplit("/", 1)[1]
    assert file in message and str(torch_home / "hub" / "checkpoints") in message
    assert message.endswith("or give a local checkpoint: --weights PATH, or "
                            "DetectorConfig(weights=PATH)") and "\n" not in message


def test_a_model_without_published_weights_names_both_ways_to_give_a_checkpoint():
    with pytest.raises(WeightsError, match=r"^Model tiny-fpn has no published weights; give a "
                                           r"local checkpoint: --weights PATH, or "
                                           r"DetectorConfig\(weights=PATH\)$"):
        load_model("tiny-fpn")


def test_offline_without_cached_weights_prints_nothing_before_the_error(torch_home, capfd):
    with pytest.raises(WeightsError):
        load_model("r50-fpn", progress=True)
    assert capfd.readouterr() == ("", "")  # no "Downloading: ..." line before ours


@pytest.mark.slow
def test_coco_weights_load_from_torch_cache_without_network(torch_home):
    torch.manual_seed(1)
    reference = build_model("r50-fpn")
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(reference.state_dict(), folder / COCO_WEIGHTS["r50-fpn"].url.rsplit("/", 1)[1])
    loaded = load_model("r50-fpn")
    assert loaded.class_names == COCO_NAMES and loaded.name == "r50-fpn"
    for (k, a), b in zip(reference.state_dict().items(), loaded.module.state_dict().values()):
        assert torch.equal(a, b), k


def test_checkpoint_round_trip_keeps_architecture_names_and_resize(tmp_path):
    torch.manual_seed(2)
    module = build_model("tiny-fpn", num_classes=3, min_size=200, max_size=320)
    save_checkpoint(LoadedModel(module, "tiny-fpn", ("__background__", "car", "van"), "x"),
                    tmp_path / "m.pt")
    loaded = load_model("r50-fpn-v2", tmp_path / "m.pt")  # the checkpoint's arch wins
    assert loaded.name == "tiny-fpn" and loaded.class_names == ("__background__", "car", "van")
    assert loaded.module.transform.min_size == (200,) and loaded.module.transform.max_size == 320
    assert len(loaded.weights_id) == 16


def test_bare_state_dict_takes_names_from_a_sidecar_file(tmp_path):
    torch.save(build_model("tiny-fpn", num_classes=3).state_dict(), tmp_path / "m.pt")
    (tmp_path / "m.names").write_text("car\nvan\n")
    loaded = load_model("tiny-fpn", tmp_path / "m.pt")
    assert loaded.class_names == ("__background__", "car", "van")


def test_names_that_do_not_fit_the_class_count_are_refused(tmp_path):
    torch.save(build_model("tiny-fpn", num_classes=3).state_dict(), tmp_path / "m.pt")
    (tmp_path / "m.names").write_text("car\nvan\nbus\nlorry\n")
    with pytest.raises(WeightsError, match="3 classes but its names list has 4 entries"):
        load_model("tiny-fpn", tmp_path / "m.pt")


def test_a_checkpoint_that_is_not_a_detector_is_refused(tmp_path):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "m.pt")
    with pytest.raises(WeightsError, match="not a Faster R-CNN checkpoint"):
        load_model("tiny-fpn", tmp_path / "m.pt")


class Unsafe:
    """A class a checkpoint may name: loading it would import and build this."""


def write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda t: write(t / "clip.mp4", b"\x00\x00\x00 ftypisom" + bytes(64)),
     r"clip\.mp4 is not a PyTorch checkpoint \(a \.pt/\.pth file saved by torch\.save\)$"),
    (lambda t: write(t / "m.json", b'{"class_names": ["car"]}'),
     r"m\.json is not a PyTorch checkpoint \(a \.pt/\.pth file saved by torch\.save\)$"),
    (lambda t: t, r"is a folder, not a checkpoint \(a \.pt/\.pth file saved by torch\.save\)$"),
    (lambda t: t / "nowhere.pt", r"^No such checkpoint: .*nowhere\.pt$"),
    (lambda t: write(t / "dense_a.onnx", b"\x08\x08"),  # keywords: the commands name options
     r"dense_a\.onnx is what drivevision export writes, for deployment elsewhere; weights= "
     r"takes the \.pt checkpoint it was exported from, and engine='onnx' or 'tensorrt' runs"),
    (lambda t: write(t / "dense_a.engine", b"ftrt") and t,
     r"is what drivevision export writes, for deployment elsewhere; weights= takes the \.pt"),
    (lambda t: torch.save({"model": Unsafe()}, t / "m.pt") or t / "m.pt",
     r"Refusing checkpoint .*m\.pt: it holds Python objects other than tensors \(a reference "
     r"to [\w.]*Unsafe\), which loading could run as code"),
])
def test_a_file_that_is_no_checkpoint_is_refused_for_what_it_is(tmp_path, make, message):
    with pytest.raises(WeightsError, match=message) as refused:
        load_model("tiny-fpn", make(tmp_path))
    if "Refusing" not in message:
        assert "run as code" not in str(refused.value)


def test_copy_with_proposals_changes_only_the_copys_test_time_count():
    settings = dict(rpn_pre_nms_top_n_train=900, rpn_post_nms_top_n_train=400,
                    rpn_pre_nms_top_n_test=300, rpn_nms_thresh=0.6, rpn_score_thresh=0.1,
                    rpn_fg_iou_thresh=0.8, rpn_bg_iou_thresh=0.2)
    module = build_model("tiny-fpn", num_classes=3, **settings)
    copy = copy_with_proposals(module, 25)
    want = build_model("tiny-fpn", num_classes=3, rpn_post_nms_top_n_test=25, **settings).rpn
    for rpn, test_count in ((copy.rpn, 25), (module.rpn, 1000)):
        assert (rpn.pre_nms_top_n(), rpn.post_nms_top_n()) == (300, test_count)
        assert not rpn.training
        rpn.train()
        assert (rpn.pre_nms_top_n(), rpn.post_nms_top_n()) == (900, 400)
        rpn.eval()
    assert (copy.rpn.nms_thresh, copy.rpn.score_thresh) == (want.nms_thresh, want.score_thresh)
    assert copy.rpn.proposal_matcher.high_threshold == want.proposal_matcher.high_threshold
    assert copy.rpn.proposal_matcher.low_threshold == want.proposal_matcher.low_threshold
    assert copy.rpn.head is not module.rpn.head
    for (k, a), b in zip(module.state_dict().items(), copy.state_dict().values()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr(), k


@pytest.mark.parametrize("proposals", [0, -5, 2.5, "300"])
def test_copy_with_proposals_refuses_a_count_that_is_not_a_positive_int(proposals):
    with pytest.raises(ValueError, match="Expected proposals to be an int >= 1, but got"):
        copy_with_proposals(build_model("tiny-fpn", num_classes=3), proposals)
