"""Batch test helpers: a small tree of generated clips, the demo model, what a run left."""

from pathlib import Path

from drivevision.synthetic import write_clip

ROOT = Path(__file__).parents[2]
WEIGHTS = str(ROOT / "assets" / "tiny-fpn-synthetic.pt")
CLIPS = ("2026-11-28/front_0001.mp4", "2026-11-28/front_0002.mp4", "2026-11-29/rear_0001.mp4")


def make_footage(folder: Path, frames: int = 6) -> Path:
    """CLIPS under ``folder``: 160x96 H.264 clips of ``frames`` frames, seeds 1, 2, 3."""
    for seed, rel in enumerate(CLIPS, 1):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_clip(path, frames, width=160, height=96, seed=seed)
    return folder


def outputs_of(out: Path) -> dict[str, bytes]:
    """Every output file under ``out`` (relative path -> bytes), the batch's own files and
    hidden ones left out."""
    own = {"batch.json", "batch.csv", "batch-manifest.jsonl"}
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in own and not p.name.startswith(".")}


def hidden_or_partial(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*") if ".part" in p.name)
