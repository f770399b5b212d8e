#!/usr/bin/env bash
# One-command set-up of edgenext_dense on a fresh CPU machine, then the project's main job.
#
#   bash tools/setup.sh            # install into .venv, then run the no-download demo
#   bash tools/setup.sh --no-run   # install only (what tools/run_tests.sh uses)
#
# Creates .venv at the repository root and installs: torch 2.13.0 (CPU), setuptools<82, ninja,
# mmcv 2.1.0 built from source with its ops (about 18 minutes on 2 cores the first time; pip
# caches the wheel, so later set-ups take seconds), mmengine 0.10.7, mmdet 3.3.0,
# mmsegmentation 1.2.2, ftfy, regex, pycocotools, this project (editable) and the dev tools.
# Re-running it is idempotent: when nothing changed, the install step is skipped in seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUN_MAIN=1
for arg in "$@"; do
  case "$arg" in
    --no-run) RUN_MAIN=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (expected --no-run)" >&2; exit 2 ;;
  esac
done

PY_BOOT="${PYTHON:-python3}"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)
STAMP="$VENV/.edgenext_dense_setup"
TORCH_VERSION="2.13.0"
MMCV_VERSION="2.1.0"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# What the stamp records: when these inputs are unchanged and the checks pass, skip pip.
fingerprint() {
  cat "$ROOT/pyproject.toml" "$ROOT/tools/setup.sh" | sha256sum | cut -d' ' -f1
}

mmcv_ops_ok() {
  "$PY" - <<'EOF' 2>/dev/null
import mmcv
from mmcv.ops import nms  # noqa: F401  (fails when mmcv was built without its ops)
assert mmcv.__version__ == "2.1.0", mmcv.__version__
EOF
}

stack_ok() {
  "$PY" - <<'EOF' 2>/dev/null
import mmdet, mmengine, mmseg, pycocotools, torch  # noqa: F401
import edgenext_dense  # noqa: F401
EOF
}

if [ ! -x "$PY" ]; then
  command -v "$PY_BOOT" >/dev/null || die "no '$PY_BOOT' found: install Python 3.9-3.11 (Debian: apt-get install python3 python3-venv)"
  log "creating .venv with $("$PY_BOOT" --version)"
  "$PY_BOOT" -m venv "$VENV" || die "could not create .venv (Debian: apt-get install python3-venv)"
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ] && mmcv_ops_ok && stack_ok; then
  log "environment up to date (.venv); nothing to install"
else
  log "installing build tools (setuptools<82, ninja, wheel)"
  "${PIP[@]}" --upgrade pip "setuptools<82" wheel ninja
  log "installing torch ${TORCH_VERSION} (CPU build)"
  "${PIP[@]}" "torch==${TORCH_VERSION}"
  if ! mmcv_ops_ok; then
    log "building mmcv ${MMCV_VERSION} from source with its ops (about 18 minutes on 2 cores the first time)"
    "$PY" -m pip uninstall -y -q mmcv mmcv-lite >/dev/null 2>&1 || true
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" "${PIP[@]}" --no-build-isolation "mmcv==${MMCV_VERSION}" \
      || die "building mmcv ${MMCV_VERSION} failed: see the compiler output above (a C++ compiler is needed: apt-get install build-essential)"
    if ! mmcv_ops_ok; then
      "$PY" -c "from mmcv.ops import nms" || true
      die "mmcv ${MMCV_VERSION} installed but mmcv.ops did not load (the error is above). It was probably built without its ops: run 'rm -rf ~/.cache/pip/wheels' and this script again."
    fi
  fi
  log "installing mmengine, mmdet, mmsegmentation, pycocotools and edgenext_dense (editable, with dev tools)"
  "${PIP[@]}" -e "$ROOT[dev]"
  # Test-only reference: the model zoo's own EdgeNeXt, to check our logits against it. Installed
  # without its dependencies (it needs torchvision, which does not install beside this torch);
  # tests/reference/mmpretrain_logits.py runs it in a separate process. Not used by the package.
  "${PIP[@]}" --no-deps "mmpretrain==1.2.0"
  mmcv_ops_ok || die "mmcv.ops stopped loading after installing the project dependencies: check 'pip list | grep mmcv'"
  stack_ok || { "$PY" -c "import mmdet, mmseg, edgenext_dense"; die "the OpenMMLab stack does not import (error above)"; }
  fingerprint > "$STAMP"
  log "installed: $("$PY" -c 'import torch, mmcv, mmengine, mmdet, mmseg; print(f"torch {torch.__version__}, mmcv {mmcv.__version__} (ops ok), mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}")')"
fi

if [ "$RUN_MAIN" = 1 ]; then
  log "running the main job: bash tools/run_demo.sh"
  bash "$ROOT/tools/run_demo.sh"
fi
