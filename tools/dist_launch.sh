# Sourced by tools/dist_train.sh and tools/dist_test.sh (not run on its own): torchrun
# (PyTorch DDP) with one process per GPU; on a machine without CUDA the processes run on the
# CPU with the gloo backend.
#
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500), PYTHON (python).

# dist_launch NPROC SCRIPT [ARGS...]: run tools/SCRIPT with ARGS, NPROC processes on this node.
dist_launch() {
  local nproc=$1 script=$2 tools
  tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  PYTHONPATH="$tools/..${PYTHONPATH:+:$PYTHONPATH}" \
  "${PYTHON:-python}" -m torch.distributed.run \
      --nnodes="${NNODES:-1}" \
      --node_rank="${NODE_RANK:-0}" \
      --master_addr="${MASTER_ADDR:-127.0.0.1}" \
      --nproc_per_node="$nproc" \
      --master_port="${PORT:-29500}" \
      "$tools/$script" \
      "${@:3}"
}
