#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one go, for docs/benchmarks.md's GPU section:
#   1. the `gpu` tests (engine parity in fp32/fp16, TensorRT, CUDA graphs, short batches);
#   2. `drivevision bench` at 800x1344, batch 1 and 8, fp32 and fp16, every engine present;
#   3. a detector call in fixed shapes (no wait for the GPU) against torchvision's way.
# Usage: scripts/gpu_run.sh [OUT_DIR]   (default gpu-results/; the folder is overwritten)
# Results: gpu.txt (GPU, driver, versions), gpu-tests.txt, bench.txt (tables), bench.json,
#   sync.txt.
set -uo pipefail

out=${1:-gpu-results}
mkdir -p "$out"
python - > "$out/gpu.txt" <<'EOF'
import torch, torchvision
assert torch.cuda.is_available(), "no CUDA GPU visible to torch"
print(torch.cuda.get_device_name(), "| torch", torch.__version__, "| torchvision",
      torchvision.__version__, "| CUDA", torch.version.cuda)
for name in ("tensorrt", "tensorrt_rtx", "onnxruntime"):
    try:
        module = __import__(name)
        print(name, module.__version__, getattr(module, "get_available_providers", lambda: "")())
    except (ImportError, OSError) as e:
        print(name, "absent:", str(e).splitlines()[0])
EOF
[ $? -eq 0 ] || { cat "$out/gpu.txt"; echo "gpu_run: no CUDA GPU visible to torch (see above); nothing run" >&2; exit 1; }
cat "$out/gpu.txt"

python -m pytest -m gpu -v -p no:cacheprovider 2>&1 | tee "$out/gpu-tests.txt"
tests=${PIPESTATUS[0]}

engines=torch,compiled,onnx,tensorrt  # those not installed are listed as skipped, with why
drivevision bench --engines "$engines" --precision fp32,fp16 --batch 1,8 \
    --input-size 800x1344 --device cuda --iters 30 --warmup 5 --json > "$out/bench.json"
bench=$?
python - "$out/bench.json" > "$out/bench.txt" <<'EOF'
import json, sys
from drivevision.cli.timing import format_tables
print(format_tables(json.load(open(sys.argv[1]))))
EOF
cat "$out/bench.txt"

python scripts/bench_cuda_sync.py --batch 1,8 --precision fp16 2>&1 | tee "$out/sync.txt"
sync=${PIPESTATUS[0]}
echo "gpu tests exit $tests, bench exit $bench, sync exit $sync; results in $out/"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ] && [ "$sync" -eq 0 ]
