"""The engine and precision pairs ``bench`` and ``eval`` compare: which of them can run on
this device, said before the model loads, so that what is checked or built for them (the
engine cache) is only what will run."""

from __future__ import annotations


def why_not_here(engine: str, precision: str, kind: str) -> str | None:
    """Why ``engine`` in ``precision`` cannot run on a device of ``kind`` ("cpu" or
    "cuda"), in one line; None: it may (the engine itself can still fail once built, an
    ``auto`` precision is settled then)."""
    from drivevision.engines import check_int8_engine
    from drivevision.engines.hardware import check_precision

    try:
        check_precision(precision, kind, engine)
        if precision == "int8":
            check_int8_engine(engine)
            if kind != "cpu":  # onnx and compiled (auto picks one) run int8 on the CPU only
                raise ValueError(f"Expected the CPU for int8, but got {kind}; on CUDA use fp16, "
                                 "or a TensorRT int8 engine: drivevision export --format "
                                 "tensorrt --precision int8 --calib CLIP_OR_FOLDER")
        if engine == "onnx" and precision != "auto":
            from drivevision.engines.onnx import check_precision as check_onnx

            check_onnx(precision, kind)
        if (engine, precision, kind) == ("compiled", "int8", "cpu"):  # said with the option
            from drivevision.engines.pt2e import check_torchao

            check_torchao("--engine")
    except (ValueError, ImportError) as e:
        return str(e).splitlines()[0]
    if engine == "tensorrt" and kind != "cuda":  # TensorRT runs on CUDA only
        return f"Expected a CUDA device for the tensorrt engine, but got {kind}"
    if engine == "tensorrt":  # said with the option: the engine would name the keyword
        from drivevision.engines.trt_build import gpu_problem

        return gpu_problem("cuda")
    return None


def runnable(settings, kind: str) -> list[tuple[str, str]]:
    """The (engine, precision) ``settings`` that may run on a device of ``kind``."""
    return [s for s in settings if why_not_here(*s, kind) is None]
