#!/usr/bin/env bash
# Set up h2q in ./.venv on a fresh machine: a CPU build of torch, h2q with its extras, and what
# they need from Debian's packages. Idempotent: re-running is cheap.
#
#   bash scripts/setup.sh          # the extras of the main job (h2q reproduce) and Fashion-MNIST
#   bash scripts/setup.sh --test   # every extra (h2q[test] = h2q[all] + test and docs tools),
#                                  # Fashion-MNIST, WordNet (text extra), Java (spark extra) and
#                                  # headless Chromium with its driver (the page test of h2q serve)
#   bash scripts/setup.sh [--test] --check-system   # only check the Debian packages
#
# Run as root, it installs missing Debian packages with apt-get. Otherwise it installs what
# needs no root and then exits with status 1, printing the exact apt-get command to run.
set -euo pipefail
cd "$(dirname "$0")/.."

# The main job needs no engine, text model or Spark: leaving them out keeps its set-up short.
# numba (the fast extra) compiles its ranking and optimiser kernels.
extras="faiss,fast,plot,data,efficientnet,stats"
everything=""
check_only=""
for arg in "$@"; do
    case "$arg" in
        --test) extras="test"; everything=1 ;;
        --check-system) check_only=1 ;;
        *) echo "setup: unknown option $arg (use --test and/or --check-system)" >&2; exit 2 ;;
    esac
done

is_root() { [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; }
apt_updated=""
apt_update() {
    if [ -z "$apt_updated" ]; then
        apt-get update -qq >&2  # (never into a $(...) capture)
        apt_updated=1
    fi
}

missing=()
# need_debian PATH PACKAGE WHAT: when PATH is missing, install PACKAGE (as root) or note it.
need_debian() {
    if [ -e "$1" ]; then
        return 0
    fi
    if is_root && [ -z "$check_only" ]; then
        echo "setup: installing $3 (Debian package $2)"
        apt_update
        apt-get install -y -qq --no-install-recommends "$2" >/dev/null
    else
        echo "setup: $3 is missing (Debian package $2)" >&2
        missing+=("$2")
    fi
}

# Java 17+ for Spark: openjdk-17-jre-headless where the release has it, else the release's
# default Java (17 or later on Debian 12 and newer).
java_package() {
    if command -v apt-cache >/dev/null && apt-cache show openjdk-17-jre-headless >/dev/null 2>&1
    then
        echo openjdk-17-jre-headless
    else
        echo default-jre-headless
    fi
}

system_packages() {
    need_debian /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
        dataset-fashion-mnist Fashion-MNIST
    if [ -n "$everything" ]; then
        # WordNet 3.0, the data set of the text extra.
        need_debian /usr/share/wordnet/data.verb wordnet-base WordNet
        # Spark (the spark extra) runs on a JVM.
        if ! command -v java >/dev/null; then
            if is_root && [ -z "$check_only" ]; then
                apt_update  # so that apt-cache knows the release's packages
            fi
            need_debian /nonexistent/java "$(java_package)" "Java for Spark"
        fi
        # The page test of `h2q serve` drives Debian's Chromium through its WebDriver (selenium,
        # in the test extra); nothing downloads a browser.
        need_debian /usr/bin/chromium chromium "Chromium (headless browser test)"
        need_debian /usr/bin/chromedriver chromium-driver "Chromium's WebDriver"
    fi
}

report_missing() {
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "setup: missing Debian packages; install them with" >&2
        echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        echo "then run this script again." >&2
        exit 1
    fi
}

if [ -n "$check_only" ]; then
    system_packages
    report_missing
    echo "setup: every Debian package needed is present"
    exit 0
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    if ! "$python" -c "import ensurepip" 2>/dev/null; then  # Debian's python3 splits venv off
        need_debian /nonexistent/python3-venv python3-venv "Python's venv module"
        report_missing
    fi
    "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

# torch pinned, in the same pip call as h2q (one resolution): an unpinned torch pulls a
# multi-GB CUDA build; on this project's machines 2.13.0 is a CPU wheel on disk. Elsewhere
# install torch's CPU build from its own index first (pip install torch==2.13.0 --index-url
# https://download.pytorch.org/whl/cpu), which this line then keeps, or pass H2Q_TORCH_VERSION.
# The main job's set-up skips pip's byte-compilation of all ~9,500 installed modules (~20 s)
# and compiles the ~2,500 that h2q reproduce imports instead (scripts/precompile.py, ~8 s).
compile=()
if [ -z "$everything" ]; then
    compile=(--no-compile)
fi
"${pip[@]}" ${compile[@]+"${compile[@]}"} "torch==${H2Q_TORCH_VERSION:-2.13.0}" -e ".[${extras}]"
if [ -z "$everything" ]; then
    .venv/bin/python scripts/precompile.py
fi

system_packages
report_missing
# (read from the installed packages' metadata: importing torch to ask would take seconds)
versions='from importlib.metadata import version as v; print("h2q", v("h2q"), "torch", v("torch"))'
echo "setup: done ($(.venv/bin/python -c "$versions"))"
