#!/usr/bin/env bash
# The short prepared GPU check, for a machine with CUDA (a few minutes at most):
#   1. fail at once (exit 3) when torch sees no CUDA device;
#   2. the GPU-marked tests (pytest -m gpu);
#   3. a 1-epoch stage-1 training on CUDA (h2q.training.run_training, digits);
#   4. a 1-epoch `h2q reproduce --quick` on CUDA (digits, one bit length).
# Each step is bounded by `timeout`; the script stops at the first failure with its status.
# Outputs go to $OUT (when set, e.g. by the device runner) or a temporary folder.
#
#   bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
log() { echo "gpu_check: $*"; }

log "1/4 CUDA"
if ! "$python" - <<'EOF'
import sys
import torch

if not torch.cuda.is_available():
    print("gpu_check: CUDA is not available (torch", torch.__version__, ")", file=sys.stderr)
    sys.exit(3)
print("gpu_check: torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))
EOF
then
    exit 3
fi

log "2/4 pytest -m gpu"
timeout 300 "$python" -m pytest -m gpu -q -p no:cacheprovider

log "3/4 one stage-1 epoch on CUDA"
timeout 120 "$python" - "$out/train-smoke" <<'EOF'
import sys

from h2q.training import TrainConfig, run_training

config = TrainConfig("digits", "dpsh", 16, epochs=1)
r = run_training(config, sys.argv[1], device="cuda", progress=False, overwrite=True)
assert r.summary["device"].startswith("cuda"), r.summary["device"]
print("gpu_check: train smoke ok, val mAP", r.summary["best_val_map"], "on", r.summary["device"])
EOF

log "4/4 h2q reproduce --quick on CUDA (1 epoch)"
timeout 180 h2q reproduce --quick --device cuda --epochs 1 --bits 16 --no-progress \
    --out "$out/reproduce-smoke"
test -s "$out/reproduce-smoke/report.md"
log "ok"
