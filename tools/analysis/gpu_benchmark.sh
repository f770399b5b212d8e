#!/usr/bin/env bash
# The benchmark on a CUDA machine: eager float32 and AMP at batch 1 and 32, plus ONNX Runtime's
# CUDA provider when onnxruntime-gpu is installed. Needs the README's "GPU install".
#   bash tools/analysis/gpu_benchmark.sh [OUT_DIR]      (default work_dirs/gpu_benchmark)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PY:-.venv/bin/python}"
OUT="${1:-work_dirs/gpu_benchmark}"
mkdir -p "$OUT"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device for torch')"
runtimes=(pytorch pytorch-amp)
if "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())"; then
  runtimes+=(onnxruntime)
else
  echo "onnxruntime has no CUDA provider here (pip install onnxruntime-gpu): eager only" >&2
fi
for bs in 1 32; do
  "$PY" tools/analysis/benchmark.py --backbone small configs/det/ssdlite_edgenext-s_4xb32-200e_coco-320.py \
    configs/seg/deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py --compare --device cuda \
    --runtimes "${runtimes[@]}" --batch-size "$bs" --rounds 2 --no-isolate \
    --json "$OUT/cuda_bs$bs.json" --markdown "$OUT/cuda_bs$bs.md"
done
echo "tables: $OUT/cuda_bs1.md $OUT/cuda_bs32.md"
