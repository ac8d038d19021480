"""The package layout is the architecture: layers (checked by import-linter in CI) and no
import cycles anywhere in the library, lazy imports inside functions included."""

from __future__ import annotations

import grimp


def test_no_import_cycles_in_the_library():
    graph = grimp.build_graph("drivevision")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported == module or imported.startswith(module + "."):
                continue  # a package importing its own module: not a cycle
            path = graph.find_shortest_chain(importer=imported, imported=module)
            if path and not any(p.startswith(imported + ".") for p in path[1:]):
                cycles.append(" -> ".join((module, *path)))
    assert not cycles, "import cycles:\n" + "\n".join(cycles[:20])


def test_the_top_level_holds_only_core_types_and_subpackages():
    from pathlib import Path

    import drivevision

    root = Path(drivevision.__file__).parent
    modules = sorted(p.stem for p in root.glob("*.py"))
    # hashing: file digests without torch (the batch manifest, `drivevision cache`)
    assert modules == ["__init__", "__main__", "config", "detections", "detector", "errors",
                       "hashing", "labels", "model", "proposals", "render"]


def test_batch_sits_between_the_commands_and_the_pipeline_and_alone_may_import_ray():
    graph = grimp.build_graph("drivevision", include_external_packages=True)
    batch = {m for m in graph.modules if m.startswith("drivevision.batch")}
    assert "drivevision.batch.driver" in batch
    importers = {m for b in batch for m in graph.find_modules_that_directly_import(b)}
    assert {m for m in importers - batch if not m.startswith("drivevision.cli")} == set()
    imported = {m for b in batch for m in graph.find_modules_directly_imported_by(b)}
    assert not {m for m in imported if m.startswith("drivevision.cli")}
    assert "drivevision.pipeline.runner" in imported  # it runs the one pipeline
    assert graph.find_modules_that_directly_import("ray") == {"drivevision.batch.ray_workers"}
