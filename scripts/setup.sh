#!/usr/bin/env bash
# Set mapd up on a fresh machine: the Fashion-MNIST files (Debian package), a virtual environment in .venv,
# PyTorch, the package with its notebook and test tools, and a Jupyter kernel named python3 inside the venv.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 1. Fashion-MNIST as IDX files under /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
#    Without root or apt, mapd falls back to ~/.cache/mapd/fashion-mnist (download=True, checksummed).
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    say "installing Debian's dataset-fashion-mnist"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    say "no apt-get: Fashion-MNIST will be downloaded into ~/.cache/mapd on first use"
  fi
fi

# 2. The virtual environment.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then say "creating .venv with $($PY --version)"; "$PY" -m venv .venv; fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)

# 3. PyTorch first, so that the package's loose `torch` requirement is already met: the CPU build (2.13.0)
#    where there is no GPU, the registry's default (CUDA) build where nvidia-smi sees one.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then say "installing PyTorch (CUDA)"; "${PIP[@]}" torch
  else say "installing PyTorch 2.13.0 (CPU)"; "${PIP[@]}" "torch==2.13.0" || "${PIP[@]}" torch; fi
fi

# 4. mapd itself, editable, with what the notebooks, the report and the tests need.
say "installing mapd and its tools"
"${PIP[@]}" -e ".[dev]"

# 5. A kernel named python3 inside the venv: papermill and nbdev-test run the notebooks with it.
.venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mapd)" >/dev/null
say "ready: $(.venv/bin/python -c 'import mapd, torch; print(f"mapd {mapd.__version__}, torch {torch.__version__}, CUDA {torch.cuda.is_available()}")')"
