"""The README and docs/ hold together: every relative link reaches a file and, where it names
one, a heading of that file (GitHub's anchors), every ``drivevision`` command line in their
shell blocks is one the CLI's parser takes, how-it-works.md lists the layers lint-imports
checks, and the README's sample output is what its quick start prints."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~)(.*)$")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)")
SHELL = {"", "bash", "sh", "shell", "console"}  # "": a block with no language


def split_fences(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(lines outside fenced blocks, [(block language, block lines)])."""
    prose, blocks, block = [], [], None
    for line in text.splitlines():
        fence = FENCE.match(line.strip())
        if fence and block is None:
            block = (fence.group(2).strip().lower(), [])
        elif fence and line.strip() == fence.group(1):
            blocks.append(block)
            block = None
        elif block is not None:
            block[1].append(line)
        else:
            prose.append(line)
    return prose, blocks


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lowercased, punctuation dropped, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path):
    seen: dict[str, int] = {}
    for line in split_fences(page.read_text())[0]:
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            yield base if count == 0 else f"{base}-{count}"


def links(page: Path):
    prose = "\n".join(split_fences(page.read_text())[0])
    prose = re.sub(r"`[^`\n]*`", "", prose)  # inline code is not a link
    for target in LINK.findall(prose):
        if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            yield target


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in set(anchors(file)):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_heading(page):
    assert broken_links(page) == []


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Which engine where\n\n## Watching: `--serve`\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](docs/a.md#which-engine-where) [ok](docs/a.md#watching---serve)\n"
                    "[gone](docs/b.md) [bad anchor](docs/a.md#caching) [self](#nothing)\n"
                    "```\n[in code](docs/c.md)\n```\n`[inline](docs/d.md)` [web](https://x.org)\n")
    assert broken_links(page) == ["docs/b.md: no such file",
                                  "docs/a.md#caching: no heading #caching in a.md",
                                  "#nothing: no heading #nothing in README.md"]


def command_lines(page: Path):
    for language, block in split_fences(page.read_text())[1]:
        for line in "\n".join(block).replace("\\\n", " ").splitlines():
            if language not in SHELL or (not language and not line.startswith("drivevision ")):
                continue  # a plain block holds command lines among other text
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split, words = True, []
            for word in [*lexer, ";"]:  # a command ends at ; && || | > and the line's end
                if word and set(word) <= set("();<>|&"):
                    if words[:1] == ["drivevision"]:
                        yield words
                    words = []
                else:
                    words.append(word)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_line_is_one_the_cli_takes(page):
    from drivevision.cli import build_parser

    lines = list(command_lines(page))
    for words in lines:
        if "--help" in words:
            continue
        try:
            assert callable(build_parser().parse_args(words[1:]).func)
        except SystemExit:
            pytest.fail(f"{page.name}: the CLI refuses {shlex.join(words)}")
    if page.name == "README.md":
        assert lines  # the blocks were found


def test_command_lines_are_read_from_shell_blocks(tmp_path):
    page = tmp_path / "a.md"
    page.write_text("```bash\npip install -e . && drivevision detect a.mp4 -o b.mp4  # x\n"
                    "drivevision eval --gt g.jsonl \\\n    --pred p.jsonl | head\n```\n"
                    "```python\ndrivevision detect c.mp4\n```\n"
                    "```\ndrivevision/cli/ modules\ndrivevision cache --clear\n```\n"
                    "drivevision detect d.mp4\n")
    assert [shlex.join(words) for words in command_lines(page)] == [
        "drivevision detect a.mp4 -o b.mp4", "drivevision eval --gt g.jsonl --pred p.jsonl",
        "drivevision cache --clear"]


def layer_contract() -> list[set[str]]:
    """The modules of each layer of pyproject.toml's import-linter `layers` contract, top first."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: pytest's own dependency
        import tomli as tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c["layers"] for c in config["contracts"] if c["type"] == "layers")
    return [{m.strip() for m in layer.split("|")} for layer in layers]


def documented_layers(page: Path, layers: list[set[str]]) -> list[int]:
    """The layer of each `drivevision/...` line of the page's first code block, in its order;
    `drivevision/*.py` is the bottom layer (the core types)."""
    block = split_fences(page.read_text())[1][0][1]
    found = []
    for line in block:
        path = line.split()[0] if line.strip() else ""
        if not path.startswith("drivevision/"):
            continue
        if path == "drivevision/*.py":
            found.append(len(layers) - 1)
            continue
        module = "drivevision." + path.removeprefix("drivevision/").strip("/").removesuffix(".py")
        found.append(next((i for i, layer in enumerate(layers) if module in layer), -1))
    return found


def test_how_it_works_lists_the_layers_in_the_order_lint_imports_checks():
    layers = layer_contract()
    found = documented_layers(ROOT / "docs" / "how-it-works.md", layers)
    assert -1 not in found, "a line names a module that is in no layer of the contract"
    assert found == sorted(found), "a layer is listed above one it sits below"
    named = {m for layer in layers[:-1] for m in layer}
    assert len(found) - found.count(len(layers) - 1) == len(named)  # every module, once


def test_a_layer_listed_out_of_order_is_found(tmp_path):
    layers = [{"drivevision.cli"}, {"drivevision.io", "drivevision.engines"},
              {"drivevision.ops"}, {"drivevision.labels"}]
    page = tmp_path / "a.md"
    page.write_text("```\ndrivevision/cli/  commands\ndrivevision/ops/  ops\n"
                    "drivevision/io/   io\ndrivevision/*.py  core\ngui/  viewer\n```\n")
    assert documented_layers(page, layers) == [0, 2, 1, 3]


def sample_output(page: Path) -> list[str]:
    """The page's block of a run's summary: the one whose first line is "N frames in ..."."""
    return next(lines for _, lines in split_fences(page.read_text())[1]
                if lines and re.match(r"\d+ frames in ", lines[0]))


def class_counts(line: str) -> dict[str, int]:
    """``340 detections: 96 bus, 94 person`` -> {"all": 340, "bus": 96, "person": 94}."""
    total, _, per_class = line.partition(" detections: ")
    pairs = (item.split(" ", 1) for item in per_class.split(", "))
    return {"all": int(total), **{name: int(n) for n, name in pairs}}


def near(found: dict[str, int], shown: dict[str, int]) -> bool:
    """The same classes, each count within 2 of the README's: bf16 sums round in the order
    the CPU's kernels add them (AMX and AVX512-BF16 differ), which moves a box or two across
    the score threshold; a changed model or threshold moves far more."""
    return found.keys() == shown.keys() and all(abs(found[k] - shown[k]) <= 2 for k in shown)


def test_counts_a_box_or_two_apart_are_near_and_others_not():
    shown = class_counts("340 detections: 96 bus, 94 person, 93 truck, 57 car")
    assert near(class_counts("341 detections: 96 bus, 94 person, 94 truck, 57 car"), shown)
    assert not near(class_counts("343 detections: 96 bus, 94 person, 96 truck, 57 car"), shown)
    assert not near(class_counts("340 detections: 96 bus, 94 person, 150 car"), shown)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_readme_quick_start_prints_what_the_readme_shows(tmp_path, precision):
    from drivevision.engines.hardware import cpu_features

    if precision == "bf16" and not cpu_features().bf16:
        pytest.skip("bf16 emulated on this CPU: its rounding is not what the README shows")
    readme = ROOT / "README.md"
    shown = sample_output(readme)
    run = subprocess.run(
        [sys.executable, "-m", "drivevision", "detect", str(ROOT / "assets" / "sample.mp4"),
         "-o", "annotated.mp4", "--jsonl", "detections.jsonl", "--precision", precision,
         "--weights", str(ROOT / "assets" / "tiny-fpn-synthetic.pt")],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    printed = run.stdout.splitlines()
    [counts] = [line for line in printed if " detections: " in line]

    def shape(lines):  # timings differ from machine to machine, counts by precision
        return [" detections: " in line or re.sub(r"\d+(\.\d+)?", "N", line).split()
                for line in lines]

    assert shape(printed) == shape(shown)
    if precision == "bf16":  # what the block shows; fp32's counts are in the text below it
        [expected] = [line for line in shown if " detections: " in line]
        assert near(class_counts(counts), class_counts(expected)), (counts, expected)
    else:
        assert f"fp32, which finds `{counts}`" in " ".join(readme.read_text().split())
