#!/usr/bin/env bash
# The test command: set up .venv when needed (tools/setup.sh --no-run), then run the whole suite.
#   bash tools/run_tests.sh [pytest args]     e.g. bash tools/run_tests.sh -m "not slow"
# Fails when the set-up fails, when a test fails, or when no test ran (pytest exit code 5).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup.sh --no-run
export MPLBACKEND=Agg PYTHONHASHSEED=0
exec .venv/bin/python -m pytest "$@"
