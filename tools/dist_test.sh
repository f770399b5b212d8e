#!/usr/bin/env bash
# Distributed testing with torchrun, one process per GPU (CPU processes with gloo without CUDA).
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT NGPUS [tools/test.py options]
#
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500), PYTHON (python).
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: bash $0 CONFIG CHECKPOINT NGPUS [tools/test.py options]" >&2
  exit 2
fi
source "$(dirname "$0")/dist_launch.sh"
dist_launch "$3" test.py "$1" "$2" --launcher pytorch "${@:4}"
