#!/usr/bin/env bash
# Distributed training with torchrun (PyTorch DDP), one process per GPU; on a machine without
# CUDA the processes run on the CPU with the gloo backend.
#
#   bash tools/dist_train.sh CONFIG NGPUS [tools/train.py options]
#
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500), PYTHON (python).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: bash $0 CONFIG NGPUS [tools/train.py options]" >&2
  exit 2
fi
source "$(dirname "$0")/dist_launch.sh"
dist_launch "$2" train.py "$1" --launcher pytorch "${@:3}"
