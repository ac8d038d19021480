"""A YOLO detection dataset as ground truth, and predictions matched to its images by name.

The folder holds ``images/``, ``labels/`` beside it and the class names in ``data.yaml``
(``names`` as a list or an ``{id: name}`` mapping) or ``classes.txt`` (one a line), as
``detect --yolo`` writes it and labelling tools (Label Studio, CVAT, Ultralytics) export it.
A label line is ``CLASS cx cy w h`` normalized to 0..1 by the image's width and height,
which are read from the image file's header (not decoded). Lines are checked as Ultralytics
checks them when it trains: more than six values is a polygon (a segment), whose box is the
extent of its points; six values (a score column) is refused; coordinates outside 0..1, a
class the names do not have and a malformed line are refused; repeated lines count once. An
image without a label file has no objects.

Images are frames in natural order (the order ``detect`` reads a folder in), each named in
``Annotations.file_names``, and predictions are matched to them by file name, so a
prediction file of another folder holding these images (and more) scores as well.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from PIL import Image

from drivevision.evaluation.annotations import Annotations, FrameBoxes
from drivevision.labels import counted

# the images detect reads from a folder (drivevision.io.images.IMAGE_SUFFIXES, a module this
# layer may not import; a test keeps the two equal)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
NAMES_FILES = ("data.yaml", "classes.txt")
ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height (OpenCV applies them)
SHOWN = 3  # file names an error or note lists before "..."


def is_dataset(path: str | Path) -> bool:
    """True for a folder holding ``data.yaml`` or ``classes.txt``."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file() for name in NAMES_FILES)


def read_yolo(path: str | Path) -> Annotations:
    """The dataset at ``path`` as ground truth: frame i is the i-th image of ``images/`` in
    natural order, its boxes xyxy in that image's pixels."""
    root = Path(path)
    classes = _class_names(root)
    images = _images(root)
    frames, sizes, files = {}, {}, {}
    for f, image in enumerate(images):
        width, height = _size(image)
        label = root / "labels" / f"{image.stem}.txt"
        frames[f] = _labels(label, classes, width, height) if label.is_file() \
            else FrameBoxes(np.zeros((0, 4)), ())
        sizes[f], files[f] = (width, height), image.name
    return Annotations(str(path), frames, tuple(classes), sizes, file_names=files,
                       match_files=True)


def _class_names(root: Path) -> list[str]:
    if (root / "data.yaml").is_file():
        names = _yaml_names(root / "data.yaml")
    else:
        names = [ln.strip() for ln in _read(root / "classes.txt").splitlines() if ln.strip()]
        if not names:
            raise ValueError(f"{root / 'classes.txt'} names no class: expected one a line")
    lower = [n.lower() for n in names]
    if len(set(lower)) != len(lower):
        raise ValueError(f"{root}: a class named twice in {', '.join(names)}")
    return lower


def _yaml_names(path: Path) -> list[str]:
    try:
        import yaml
    except ImportError:
        raise ValueError(f"Reading {path} needs PyYAML: pip install pyyaml (or "
                         "drivevision[eval])") from None
    try:
        data = yaml.safe_load(_read(path))
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not YAML ({str(e).splitlines()[0]})") from None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        names = [names[i] for i in range(len(names))]
    if not (isinstance(names, list) and names
            and all(isinstance(n, (str, int)) and str(n).strip() for n in names)):
        raise ValueError(f"{path}: expected \"names\", a list of class names or a mapping "
                         f"0..n-1 to them, but got {str(names)[:80]}")
    nc = data.get("nc")
    if nc is not None and nc != len(names):
        raise ValueError(f"{path}: nc is {nc}, but names has {len(names)}")
    return [str(n).strip() for n in names]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"Cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


def _images(root: Path) -> list[Path]:
    folder = root / "images"
    if not folder.is_dir() or not (root / "labels").is_dir():
        raise ValueError(f"{root}: expected images/ and labels/ beside its "
                         f"{' or '.join(NAMES_FILES)} (a YOLO dataset)")
    entries = sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
    if any(p.is_dir() and not p.name.startswith(".") for p in entries):
        raise ValueError(f"{folder} holds folders: expected the images themselves (a "
                         "batch's dataset, one folder an input, is not read as one)")
    images = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
              and not p.name.startswith(".")]
    if not images:
        raise ValueError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    stems: dict[str, str] = {}
    for p in images:
        if p.stem in stems:
            raise ValueError(f"{folder}: {stems[p.stem]} and {p.name} share one label file, "
                             f"labels/{p.stem}.txt")
        stems[p.stem] = p.name
    return images


def natural_key(name: str) -> list:
    """Sort key that puts frame2.png before frame10.png, the order ``detect`` reads a folder
    in (its images are frames 0, 1, ... in it)."""
    return [int(t) if t.isdecimal() else t.lower() for t in re.split(r"(\d+)", name)]


def _size(image: Path) -> tuple[int, int]:
    """(width, height) as OpenCV decodes the image (EXIF rotation applied), from its header."""
    try:
        with Image.open(image) as im:
            width, height = im.size
            rotated = im.getexif().get(0x0112) in ROTATED
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"Cannot read the size of {image} ({str(e).splitlines()[0]})") from None
    return (height, width) if rotated else (width, height)


def _labels(path: Path, classes: list[str], width: int, height: int) -> FrameBoxes:
    rows = []
    for n, line in enumerate(_read(path).splitlines(), 1):
        if line.strip():
            row = _row(line, f"{path} line {n}", len(classes))
            if row not in rows:  # Ultralytics drops repeated lines
                rows.append(row)
    boxes = np.array([[(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                       (cy + h / 2) * height] for _, cx, cy, w, h in rows], np.float64)
    return FrameBoxes(boxes.reshape(-1, 4), tuple(classes[r[0]] for r in rows))


def _row(line: str, where: str, n_classes: int) -> tuple:
    try:
        values = [float(v) for v in line.split()]
    except ValueError:
        values = []
    if len(values) == 6:
        raise ValueError(f"{where}: 6 values, expected CLASS cx cy w h (a score column? "
                         "label files hold none)")
    if len(values) < 5 or (len(values) > 6 and len(values) % 2 == 0):
        raise ValueError(f"{where}: expected CLASS cx cy w h (or CLASS x1 y1 x2 y2 x3 y3 ... "
                         f"for a polygon), but got {line.strip()[:80]}")
    c, coords = values[0], values[1:]
    if not (math.isfinite(c) and c == int(c) and 0 <= c < n_classes):
        raise ValueError(f"{where}: class {line.split()[0]} is not one of the "
                         f"{counted(n_classes, 'class', 'classes')} named (0..{n_classes - 1})")
    if not all(0 <= v <= 1 for v in coords):
        raise ValueError(f"{where}: coordinates outside 0..1 (expected them divided by the "
                         f"image's width and height), got {line.strip()[:80]}")
    if len(coords) > 4:  # a polygon: its points' extent
        xs, ys = coords[0::2], coords[1::2]
        coords = [(min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2,
                  max(xs) - min(xs), max(ys) - min(ys)]
    return (int(c), *coords)


def image_stem(index: int, file: str | None) -> str:
    """The stem a frame is matched to a dataset's image by: its image file's (a folder of
    images), else ``frame_000123``, the name ``detect --yolo`` gives a video's frame 123."""
    return Path(file).stem if file else f"frame_{index:06d}"


def match_files(truth: Annotations, preds: Annotations, allow_unlabelled: bool,
                notes: list[str]) -> Annotations:
    """``preds`` with its frames renumbered as ``truth``'s images of the same file name
    (the stem, so ``a.png`` predicted matches a dataset's ``a.jpg``). A predicted frame that
    names no file (a video's) is matched by its number to ``frame_000123``, the name
    ``detect --yolo`` gives a video's frame. Predicted images the dataset lacks are a
    ValueError, or with ``allow_unlabelled`` left out with a note. Also for COCO ground truth
    and predictions that both name their images (``score.evaluate``)."""
    frame_of = {Path(name).stem: f for f, name in truth.file_names.items()}
    frames, names, sizes, extra = {}, {}, {}, []
    for f, fb in preds.frames.items():
        name = preds.file_names.get(f) or image_stem(f, None)
        target = frame_of.get(image_stem(f, name))
        if target is None:
            extra.append(name)
        elif target in frames:
            raise ValueError(f"{preds.path}: {names[target]} and {name} are both "
                             f"{truth.file_names[target]} of {truth.path}")
        else:
            frames[target], names[target] = fb, name
            if f in preds.sizes:
                sizes[target] = preds.sizes[f]
    if not frames:
        holder, whose = ("the dataset", "a dataset's") if truth.match_files else \
            ("the ground truth", "its")
        raise ValueError(f"{preds.path} has no image of {truth.path} (it names {_some(extra)}, "
                         f"{holder} holds {_some(truth.file_names.values())}): predictions "
                         f"are matched to {whose} images by file name")
    if extra and not allow_unlabelled:
        raise ValueError(f"{preds.path} has {counted(len(extra), 'image')} that {truth.path} "
                         f"does not label ({_some(extra)}); pass --allow-unlabelled to leave "
                         "them out")
    if extra:
        notes.append(f"left out {counted(len(extra), 'predicted image')} without ground truth "
                     f"({_some(extra)})")
    return Annotations(preds.path, dict(sorted(frames.items())), preds.classes, sizes,
                       file_names=names)


def _some(names) -> str:
    names = list(names)
    return ", ".join(names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")
