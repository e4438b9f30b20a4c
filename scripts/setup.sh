#!/usr/bin/env bash
# Set up h2q in ./.venv on a fresh machine: a CPU build of torch, h2q with its extras, and the
# data sets from Debian's packages: Fashion-MNIST (the default) and, with the text extra (part
# of "all" and "test"), WordNet 3.0 (wordnet-base). Idempotent: re-running is cheap.
#
#   bash scripts/setup.sh          # library, CLI and data: enough for the main job
#   bash scripts/setup.sh --test   # the same plus the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

extras="all"
if [ "${1:-}" = "--test" ]; then
    extras="test"
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build; 2.13.0 is a CPU build.
"${pip[@]}" "torch==${H2Q_TORCH_VERSION:-2.13.0}"
"${pip[@]}" -e ".[${extras}]"

fmnist=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$fmnist" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "setup: installing Fashion-MNIST (Debian package dataset-fashion-mnist)"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null
    else
        echo "setup: Fashion-MNIST is missing; install it with" >&2
        echo "  sudo apt-get install -y --no-install-recommends dataset-fashion-mnist" >&2
    fi
fi
# WordNet 3.0, the data set of the text extra ("all" and "test" include it).
if [ ! -f /usr/share/wordnet/data.verb ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "setup: installing WordNet (Debian package wordnet-base)"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends wordnet-base >/dev/null
    else
        echo "setup: WordNet is missing; install it with" >&2
        echo "  sudo apt-get install -y --no-install-recommends wordnet-base" >&2
    fi
fi
echo "setup: done ($(.venv/bin/python -c 'import h2q, torch; print("h2q", h2q.__version__, "torch", torch.__version__)'))"
