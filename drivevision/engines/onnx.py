"""ONNX Runtime engine: the exported dense pieces on the best provider present (CUDA, CPU).

The pieces are exported on first use and cached (``drivevision.export.cached_onnx``). On
the CPU the batch goes through numpy (ONNX Runtime reads torch's memory without a copy);
on CUDA, I/O binding hands ONNX Runtime the torch tensors' device pointers, so nothing
crosses to the host. fp32 runs anywhere; fp16 needs the CUDA provider; int8 (the pieces
quantized on the user's footage, ``drivevision.engines.int8``) runs on the CPU provider.

On the CPU dense A hands its FPN levels over channels-last (a transpose appended to the
session's copy of the graph): the middle stage reads them as rows of C values without the
copy NCHW levels cost it. ONNX Runtime's int8 convolutions work channels-last already, so
there the transpose all but vanishes (the int8 frame 13-17% faster at 800x1344); in fp32 it
costs ONNX Runtime about what it saves the middle stage.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from drivevision.engines.base import DenseA, Engine
from drivevision.engines.export import cached_onnx, read_metadata
from drivevision.engines.int8 import cached_int8_onnx
from drivevision.model import LoadedModel


def providers_for(device: torch.device) -> list:
    """ONNX Runtime execution providers to use on ``device``, best first (CUDA on the GPU
    ``device`` names, e.g. cuda:1)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ValueError("Expected onnxruntime-gpu (CUDAExecutionProvider) for the onnx "
                             f"engine on {device}, but found only {', '.join(available)}")
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}),
                "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def check_precision(precision: str, device_type: str) -> None:
    """ValueError unless the onnx engine runs ``precision`` (a resolved one) on
    ``device_type`` ("cpu" or "cuda")."""
    if precision not in {"cpu": ("fp32", "int8"), "cuda": ("fp32", "fp16")}[device_type]:
        raise ValueError(f"Expected fp32 (CPU or CUDA), fp16 (CUDA) or int8 (CPU) for the "
                         f"onnx engine, but got {precision} on {device_type}")


class OnnxEngine(Engine):
    """Runs dense A and dense B with ONNX Runtime sessions; outputs float32 on ``device``."""

    name = "onnx"

    def __init__(self, loaded: LoadedModel, *, device: torch.device, precision: str,
                 exporter: str = "dynamo", progress: bool = False, calib=None):
        import onnxruntime as ort

        check_precision(precision, device.type)
        self.device = device
        paths = cached_int8_onnx(loaded, calib, "cpu", exporter=exporter, progress=progress) \
            if precision == "int8" else cached_onnx(loaded, precision, exporter=exporter,
                                                    progress=progress)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        # Idle ONNX Runtime threads must not spin: torchvision ops run between the pieces.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = providers_for(device)
        self.levels = int(read_metadata(paths["dense_a"])["fpn_levels"])
        self.channels_last = device.type == "cpu"
        models = {piece: str(p) for piece, p in paths.items()}
        if self.channels_last:
            models["dense_a"] = channels_last_levels(paths["dense_a"], self.levels)
        self.sessions = {piece: ort.InferenceSession(m, options, providers=providers)
                         for piece, m in models.items()}
        self.provider = self.sessions["dense_a"].get_providers()[0]

    def _run(self, piece: str, x: Tensor) -> list[Tensor]:
        session = self.sessions[piece]
        if self.device.type == "cuda":
            return _run_cuda(session, x.float().contiguous(), self.device)
        feed = {session.get_inputs()[0].name: x.float().contiguous().numpy()}
        return [torch.from_numpy(o) for o in session.run(None, feed)]

    @torch.inference_mode()
    def dense_a(self, images: Tensor) -> DenseA:
        outs = self._run("dense_a", images)
        n = self.levels
        features = outs[:n]
        if self.channels_last:  # [N, h, w, C] as [N, C, h, w] channels-last views
            features = [f.permute(0, 3, 1, 2) for f in features]
        return features, outs[n:2 * n], outs[2 * n:]

    @torch.inference_mode()
    def dense_b(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        logits, deltas = self._run("dense_b", pooled)
        return logits, deltas


def channels_last_levels(path, levels: int) -> bytes:
    """The ONNX model at ``path`` with its first ``levels`` outputs (dense A's FPN levels,
    [N, C, h, w]) transposed to [N, h, w, C], serialized for a session; the file itself
    is left as it is (export and TensorRT use it)."""
    import onnx

    model = onnx.load(str(path))
    for out in model.graph.output[:levels]:
        model.graph.node.append(onnx.helper.make_node(
            "Transpose", [out.name], [f"{out.name}_nhwc"], perm=[0, 2, 3, 1]))
        out.name = f"{out.name}_nhwc"
        dims = list(out.type.tensor_type.shape.dim)
        if len(dims) == 4:
            out.type.tensor_type.shape.ClearField("dim")
            out.type.tensor_type.shape.dim.extend([dims[0], dims[2], dims[3], dims[1]])
    return model.SerializeToString()


def _run_cuda(session, x: Tensor, device: torch.device) -> list[Tensor]:
    """Run on CUDA through I/O binding: input and outputs stay on the GPU (DLPack out)."""
    binding = session.io_binding()
    binding.bind_input(session.get_inputs()[0].name, "cuda", device.index or 0, np.float32,
                       tuple(x.shape), x.data_ptr())
    for out in session.get_outputs():
        binding.bind_output(out.name, "cuda", device.index or 0)
    torch.cuda.current_stream(device).synchronize()  # ORT uses its own stream
    session.run_with_iobinding(binding)  # returns once the bound outputs are ready
    return [ort_to_torch(v, device) for v in binding.get_outputs()]


def ort_to_torch(value, device: torch.device) -> Tensor:
    """An ONNX Runtime ``OrtValue`` as a torch tensor sharing its memory (DLPack), on the
    device it lives on; only an ONNX Runtime without DLPack goes through host memory."""
    if hasattr(value, "__dlpack__"):  # ONNX Runtime >= 1.20
        return torch.from_dlpack(value)
    if hasattr(value, "to_dlpack"):  # older builds that had it
        return torch.from_dlpack(value.to_dlpack())
    return torch.from_numpy(value.numpy()).to(device)


def create(loaded: LoadedModel, *, device: torch.device, precision: str,
           progress: bool = False, calib=None) -> OnnxEngine:
    return OnnxEngine(loaded, device=device, precision=precision, progress=progress,
                      calib=calib)
