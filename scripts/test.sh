#!/usr/bin/env bash
# Set everything up, then run every test: notebooks and package in step, clean notebooks, the README in step with
# nbs/index.ipynb, nbdev's notebook tests, and pytest (papermill runs of each experiment notebook, the command line,
# bad input, the k-NN against scikit-learn, the widgets).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
say() { printf '\033[1m[test]\033[0m %s\n' "$*"; }

say "the package is what nbdev-export makes of nbs/"
nbdev-export
if [ -n "$(git status --porcelain -- mapd)" ]; then
  git status --porcelain -- mapd; git --no-pager diff --stat -- mapd
  echo "mapd/ differs from what nbdev-export makes of nbs/: edit the notebooks, run nbdev-export and commit both" >&2; exit 1
fi

say "notebooks are clean (nbdev-clean changes nothing)"
nbdev-clean
if [ -n "$(git status --porcelain -- nbs)" ]; then
  git status --porcelain -- nbs; echo "notebooks carry outputs or metadata: run nbdev-clean and commit" >&2; exit 1
fi

say "README.md is what nbs/index.ipynb renders to"
bash scripts/readme.sh
if [ -n "$(git status --porcelain -- README.md)" ]; then
  git --no-pager diff -- README.md | head -40; echo "README.md is out of step with nbs/index.ipynb: run scripts/readme.sh and commit" >&2; exit 1
fi

say "the linter: no undefined or doubly defined names, no syntax errors, no unused imports in mapd (ruff)"
ruff check mapd tests scripts benchmarks --select F821,F822,F823,F811,E9 --exclude mapd/_modidx.py --output-format concise
# unused imports in the package (mapd/__init__.py re-exports what it names in __all__, which ruff reads)
ruff check mapd --select F401 --exclude mapd/_modidx.py --output-format concise

say "nbdev-test (the notebooks' inline tests; nbs/experiments and nbs/explore run through papermill in pytest)"
# one thread per notebook kernel: two kernels on two cores with two threads each would oversubscribe the CPU
OMP_NUM_THREADS=1 nbdev-test --n-workers 2 --timing

say "pytest"
# the 20 slowest cases are listed at the end, so a run shows where the time budget (30 minutes on 2 cores) goes
python -m pytest -q --durations=20 "$@"
