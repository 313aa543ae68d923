#!/usr/bin/env bash
# The Python that the scripts under scripts/ run on, with the packages they need.
#
# When $PYTHON is set, that interpreter is used as it is and nothing is installed into it: point
# $PYTHON at any Python that already has the packages (a conda env, another venv, a module load).
# Otherwise the first use makes a virtual environment in .venv-scripts/ at the repository root
# (git-ignored) with `python3 -m venv`, pip-installs the packages named that it lacks, and uses
# its python. pip reads its usual environment, so for instance
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu fetches CPU-only torch wheels, far
# smaller than the default CUDA ones. Delete .venv-scripts/ to start over.
#
# Run, it runs a Python script in that environment:
#   scripts/python_env.sh torch safetensors -- scripts/make_parity_fixtures.py --tutorial DIR
#   PYTHON=~/torch/bin/python scripts/python_env.sh -- scripts/layer_speed_pytorch.py
# Sourced by another shell script, `python_env PACKAGE...` sets and exports PYTHON:
#   source "$(dirname "$0")/python_env.sh"; python_env torch; "$PYTHON" scripts/bench_pytorch.py

# The venv belongs to the repository, wherever the caller's working directory is.
SCRIPTS_VENV="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv-scripts"

python_env() {
  if [[ -n "${PYTHON:-}" ]]; then
    export PYTHON
    return
  fi
  if [[ ! -x "$SCRIPTS_VENV/bin/python" ]]; then
    echo "python_env: making $SCRIPTS_VENV" >&2
    python3 -m venv "$SCRIPTS_VENV"
  fi
  export PYTHON="$SCRIPTS_VENV/bin/python"
  # `pip show` answers from the venv alone, so a venv that has everything needs no network.
  if [[ $# -gt 0 ]] && ! "$PYTHON" -m pip show --quiet "$@" >/dev/null 2>&1; then
    echo "python_env: installing $* into $SCRIPTS_VENV" >&2
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "$@"
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  packages=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do
    packages+=("$1")
    shift
  done
  if [[ $# -lt 2 ]]; then
    echo "usage: $0 [PACKAGE...] -- SCRIPT.py [ARG...]" >&2
    exit 2
  fi
  shift
  python_env "${packages[@]}"
  exec "$PYTHON" "$@"
fi
