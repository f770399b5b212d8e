#!/usr/bin/env bash
# The project's main job on its embedded default, with nothing downloaded.
# (Switched to the synthetic-data detection run once that lands; for now: classification.)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=.venv/bin/python
OUT=outputs/demo
mkdir -p "$OUT"
$PY - "$OUT" <<'PYEOF'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
out = Path(sys.argv[1])
yy, xx = np.mgrid[0:240, 0:320]
img = np.stack([(xx * 0.8) % 256, (yy * 1.0) % 256, ((xx + yy) * 0.5) % 256], -1).astype(np.uint8)
Image.fromarray(img).save(out / "generated.jpg")
PYEOF
CKPT=$(ls checkpoints/*.pth 2>/dev/null | head -n1 || true)
if [ -z "$CKPT" ]; then
  echo "[demo] no checkpoint in ./checkpoints: fetch one of the README's 'Pretrained weights'"
  echo "[demo] e.g. $($PY -c 'from edgenext_dense.model_zoo import MODELS; print(MODELS["edgenext-xxsmall_3rdparty_in1k"].url)')"
  exit 0
fi
$PY tools/demo/image_classify.py "$OUT/generated.jpg" --checkpoint "$CKPT"
