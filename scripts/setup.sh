#!/usr/bin/env bash
# Set up h2q in ./.venv on a fresh machine: a CPU build of torch, h2q with its extras, and what
# they need from Debian's packages. Idempotent: re-running is cheap.
#
#   bash scripts/setup.sh          # the extras of the main job (h2q reproduce) and Fashion-MNIST
#   bash scripts/setup.sh --test   # every extra (h2q[test] = h2q[all] + test tools), Fashion-MNIST,
#                                  # WordNet (text extra) and Java (spark extra)
set -euo pipefail
cd "$(dirname "$0")/.."

# The main job needs no engine, text model or Spark: leaving them out keeps its set-up short.
# numba (the fast extra) compiles its ranking and optimiser kernels.
extras="faiss,fast,plot,data,efficientnet,stats"
everything=""
if [ "${1:-}" = "--test" ]; then
    extras="test"
    everything=1
fi

# need_debian PATH PACKAGE WHAT: install a Debian package when PATH is missing (as root), or say
# how to install it.
need_debian() {
    if [ -e "$1" ]; then
        return
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "setup: installing $3 (Debian package $2)"
        if [ -z "${apt_updated:-}" ]; then
            apt-get update -qq
            apt_updated=1
        fi
        apt-get install -y -qq --no-install-recommends "$2" >/dev/null
    else
        echo "setup: $3 is missing; install it with" >&2
        echo "  sudo apt-get install -y --no-install-recommends $2" >&2
    fi
}

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    if ! "$python" -c "import ensurepip" 2>/dev/null; then  # Debian's python3 splits venv off
        need_debian /nonexistent/python3-venv python3-venv "Python's venv module"
    fi
    "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build; on this project's
# machines 2.13.0 is a CPU wheel on disk (elsewhere pass H2Q_TORCH_VERSION or install torch's
# CPU build from its own index first).
"${pip[@]}" "torch==${H2Q_TORCH_VERSION:-2.13.0}"
"${pip[@]}" -e ".[${extras}]"

# The main job's data set.
need_debian /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz dataset-fashion-mnist \
    Fashion-MNIST
if [ -n "$everything" ]; then
    # WordNet 3.0, the data set of the text extra.
    need_debian /usr/share/wordnet/data.verb wordnet-base WordNet
    # Spark (the spark extra) runs on a JVM: Java 17 or later.
    need_debian "$(command -v java || echo /nonexistent/java)" openjdk-17-jre-headless \
        "Java for Spark"
fi
echo "setup: done ($(.venv/bin/python -c 'import h2q, torch; print("h2q", h2q.__version__, "torch", torch.__version__)'))"
