"""The compiled engine's pieces on the CPU, compiled ahead of time (AOTInductor) and kept
in the engine cache, so only the first run of a model, precision, calibration set and frame
size compiles.

Through ``torch.compile`` every process compiles again before its first frame (R50-FPN
bf16 at 800x1344: about 20-25 s; int8 also quantizes again: PT2E's export, prepare and
convert), since Inductor's own cache, under the temporary folder, keeps only the generated
kernels. AOTInductor writes the same generated code, built, with the frozen weights into
one ``.pt2`` package, which a later run loads in about a second.

Each package is keyed by the piece, the model and its weights id, the precision, the input
shape and strides (dense A: one package per (N, H, W) it was called with; dense B: any RoI
count), the torch version and the CPU's features and the vector instructions Inductor
generated code for (a package built for AMX must never run on a CPU without it), and
int8's calibration key fields.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils import _pytree as pytree

from drivevision.engines import cache as engine_cache
from drivevision.engines.hardware import cpu_features

_log = logging.getLogger(__name__)

FORMAT = 1  # bump when what a package holds changes
MIN_ROWS, MAX_ROWS = 2, 65536  # dense B's RoIs a package takes (fewer are padded)


class AheadOfTime:
    """A dense piece as AOTInductor packages: ``piece(x)`` runs the package for ``x``'s
    shape, loading it from the cache or compiling it first.

    Args:
        name: what the package is ("dense_a", "dense_b"), in file names and messages.
        module: makes the ``nn.Module`` to export (called only when a package is built, so
            int8 quantizes nothing when every package is cached).
        fields: what the packages depend on besides the input (model, weights, precision...).
        context: what the export and compilation run under (Inductor's freezing, autocast).
        any_rows: one package for every size of the first dimension (dense B's RoIs).
        progress: print a line before each compilation (R50-FPN: 35 s to a minute or more).
        strict: export through Dynamo (PT2E's int8 pieces need it: see ``_build``).
    """

    def __init__(self, name: str, module: Callable[[], nn.Module], fields: dict, *,
                 context: Callable[[], contextlib.AbstractContextManager],
                 any_rows: bool = False, progress: bool = False, strict: bool = True):
        self.name, self._module, self._context, self.any_rows = name, module, context, any_rows
        self.progress, self.strict = progress, strict
        self.fields = {"piece": name, "aot": FORMAT, "torch": torch.__version__,
                       "cpu": sorted(cpu_features().flags), "isa": _vector_isa(), **fields}
        self.packages: dict[tuple, Callable] = {}  # loaded, by input shape (and strides)
        self.paths: dict[tuple, Path] = {}

    def __call__(self, x: Tensor):
        # a package computes on the strides it was built for, unchecked: they are in its key
        # (dense A: channels-last as the engine hands it over), or made so (dense B)
        if self.any_rows:
            x = x.contiguous()
            shape = ("any",) + tuple(x.shape[1:])
        else:
            shape = tuple(x.shape) + ("strides",) + tuple(x.stride())
        runner = self.packages.get(shape)
        if runner is None:
            runner = self.packages[shape] = self._load(x, shape)
        if self.any_rows and x.shape[0] < MIN_ROWS:  # below the package's range: pad
            n = x.shape[0]
            padded = torch.cat([x, x.new_zeros((MIN_ROWS - n,) + tuple(x.shape[1:]))])
            return tuple(t[:n] for t in runner(padded))
        return runner(x)

    def path(self, shape: tuple) -> tuple[Path, dict]:
        fields = {**self.fields, "shape": [str(s) for s in shape]}
        folder = engine_cache.cache_root() / "compiled"
        model = self.fields.get("model", "model")
        return engine_cache.entry_path(folder, f"{model}-{self.name}", fields, "pt2"), fields

    def calls(self) -> Counter[str]:
        """The ATen and oneDNN operators the loaded packages' generated code calls, with
        how often (``mkldnn__convolution_pointwise``: a pre-packed, fused convolution)."""
        found: Counter[str] = Counter()
        for path in self.paths.values():
            with zipfile.ZipFile(path) as package:
                for name in package.namelist():
                    if name.endswith("wrapper.cpp"):
                        found.update(re.findall(r"aoti_torch_cpu_(\w+?)\(",
                                                package.read(name).decode()))
        return found

    def _load(self, x: Tensor, shape: tuple):
        path, fields = self.path(shape)
        what = f"the compiled {self.name} for input {self._sizes(x)}"
        engine_cache.get_or_build(path, fields, lambda target: self._build(x, target),
                                  what=what, reused=self._say_reused(what))
        self.paths[shape] = path
        return load_package(path)

    def _say_reused(self, what: str) -> Callable[[Path], None] | None:
        if not self.progress:
            return None
        model = self.fields.get("model", "the model")
        return lambda path: engine_cache.say_reused(f"{model}'s {what[4:]}", [path])

    def _sizes(self, x: Tensor) -> str:
        return f"[{', '.join(map(str, ['N', *x.shape[1:]] if self.any_rows else x.shape))}]"

    def _build(self, x: Tensor, target: Path) -> None:
        module = self._module()  # first: int8 quantizes here (outside autocast: it must)
        if self.progress:
            print(f"Compiling {self.fields.get('model', 'the model')}'s {self.name} for input "
                  f"{self._sizes(x)} (can take a minute or more, once: kept in "
                  f"{target.parent} for later runs)", file=sys.stderr, flush=True)
        example, dims = x, None
        if self.any_rows:
            # export takes a size of 1 as fixed, and PT2E's graphs are exported for 2 and up
            example = x.new_zeros((max(MIN_ROWS, x.shape[0]),) + tuple(x.shape[1:]))
            dims = ({0: torch.export.Dim("rows", min=MIN_ROWS, max=MAX_ROWS)},)
        with torch.no_grad(), self._context():
            # int8 strictly (Dynamo): under autocast, the non-strict export's casts keep
            # Inductor from fusing PT2E's int8 convolutions, which then run as float ones
            exported = torch.export.export(module, (example,), dynamic_shapes=dims,
                                           strict=self.strict)
            # into the cache's temporary file (a name would have to end in .pt2)
            with open(target, "wb") as package:
                torch._inductor.aoti_compile_and_package(exported, package_path=package)


def load_package(path: Path) -> Callable:
    """``Package(path)``; where this torch's loader differs from the one ``Package`` uses
    (torch's private runner API, as in torch 2.14), torch's own ``aoti_load_package``: the
    same outputs, on weights it leaves off cache lines (slower on AMX), said once."""
    try:
        return Package(path)
    except (AttributeError, TypeError) as e:
        _unaligned(f"{type(e).__name__}: {e}")
        return torch._inductor.aoti_load_package(str(path))


@functools.cache
def _unaligned(why: str) -> None:
    _log.warning("compiled packages run through torch %s's own loader, on weights it leaves "
                 "unaligned (slower on AMX CPUs): its runner API differs from the one this "
                 "project aligns them with (%s)", torch.__version__, why)


class Package:
    """A CPU package's model, run with its weights moved to memory aligned to 64 bytes.

    AOTInductor's own loader copies a CPU package's constants into one ``malloc`` block
    and lays them out at multiples of 64 bytes from its start; glibc starts a block that
    large 16 bytes past a page, so every weight sat 16 bytes off a cache line, and oneDNN's
    AMX convolutions ran up to twice as slow on it (R50-FPN bf16 dense A at 800x1344: 963
    against 783 ms a call, the same kernels and weight formats). Here each constant is
    copied once into PyTorch's own (aligned) memory and handed to the model as the
    caller's; the loader's block is freed, unless the package has constants that share a
    name (int8's scales and zero points), which only the loader can tell apart: those stay
    in it, and so does the block.
    """

    def __init__(self, path: Path):
        with zipfile.ZipFile(path) as package, tempfile.TemporaryDirectory() as tmp:
            (library,) = [n for n in package.namelist() if n.endswith(".so")]
            folder = library.rsplit("/", 1)[0] + "/"  # with it, what it reads at loading
            package.extractall(tmp, [n for n in package.namelist() if n.startswith(folder)])
            # a loaded library stays mapped once its file is gone
            runner = torch._C._aoti.AOTIModelContainerRunnerCpu(str(Path(tmp, library)), 1)
        fqns = runner.get_constant_names_to_original_fqns()  # the model's name -> original
        shared = {fqn for fqn, n in Counter(fqns.values()).items() if n > 1}
        found = runner.extract_constants_map(False)  # by original name
        self._constants = {name: found[fqn].clone() for name, fqn in fqns.items()
                           if fqn not in shared}
        if shared:  # replace those in use, the others stay where the loader put them
            runner.update_constant_buffer(self._constants, False, False, True)
        else:  # all into the spare buffer, made the one in use; the loader's is then freed
            runner.update_constant_buffer(self._constants, True, True, True)
            runner.swap_constant_buffer()
            runner.free_inactive_constant_buffer()
        self._runner = runner
        self._in_spec, self._out_spec = (pytree.treespec_loads(s)
                                         for s in runner.get_call_spec())

    def __call__(self, x: Tensor):
        inputs, spec = pytree.tree_flatten(((x,), {}))
        if spec != self._in_spec:
            raise ValueError(f"Expected the package's inputs {self._in_spec}, but got {spec}")
        return pytree.tree_unflatten(self._runner.run(inputs), self._out_spec)


def _vector_isa() -> str:
    """The vector instruction set Inductor generates CPU code for on this machine."""
    from torch._inductor import cpu_vec_isa

    return str(cpu_vec_isa.pick_vec_isa()) or "none"
