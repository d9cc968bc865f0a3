#!/usr/bin/env bash
# README.md is rendered from nbs/index.ipynb (nbdev's readme command needs Quarto, which cannot be installed here).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/jupyter nbconvert --log-level=ERROR --to markdown nbs/index.ipynb --output-dir . --output README >/dev/null
