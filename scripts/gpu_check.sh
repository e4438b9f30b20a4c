#!/usr/bin/env bash
# The prepared GPU check, for a machine with CUDA (under 10 minutes):
#   1. fail at once (exit 3) when torch sees no CUDA device;
#   2. the GPU-marked tests (pytest -m gpu);
#   3. benchmarks/gpu_check.py: every CUDA path (stage-1 training, feature extraction,
#      stage-2 fits, encoding; the search back ends are CPU-only) compared with the CPU, and a
#      timed reduced `h2q reproduce --full` with the extrapolation to the whole grid, written
#      to $out/gpu_check.json.
# Each step is bounded by `timeout`; the script stops at the first failure with its status.
# Outputs go to $OUT (when set, e.g. by the device runner) or a temporary folder. Not yet run
# on a GPU (written on a CPU-only machine; benchmarks/gpu_check.py --device cpu --tiny is
# tested there).
#
#   bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The venv's Python (made by scripts/setup.sh), where h2q and its extras are installed;
# PYTHON=... overrides it.
python=${PYTHON:-.venv/bin/python}
if ! [ -x "$python" ] && ! command -v "$python" >/dev/null; then
    echo "gpu_check: $python not found; run \`bash scripts/setup.sh\` first (or set PYTHON)" >&2
    exit 2
fi
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
log() { echo "gpu_check: $*"; }

log "1/3 CUDA"
if ! "$python" - <<'PY'
import sys
import torch

if not torch.cuda.is_available():
    print("gpu_check: CUDA is not available (torch", torch.__version__, ")", file=sys.stderr)
    sys.exit(3)
print("gpu_check: torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))
PY
then
    exit 3
fi

log "2/3 pytest -m gpu"
timeout 180 "$python" -m pytest -m gpu -q -p no:cacheprovider

log "3/3 CUDA paths and a reduced --full (benchmarks/gpu_check.py)"
timeout 390 "$python" benchmarks/gpu_check.py --budget-s 360 --out "$out/gpu_check.json"
log "ok; results in $out/gpu_check.json"
