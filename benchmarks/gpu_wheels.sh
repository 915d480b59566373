#!/usr/bin/env bash
# Wheels of what hpsearch needs beyond a CUDA PyTorch image (torch, numpy, pandas, scipy, scikit-learn,
# torchmetrics, pillow, pyyaml, tqdm are usually there), for a GPU machine that cannot reach a package
# index: run this where pip can, carry .whl/ to the GPU machine, and there
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:$PWD python3 benchmarks/gpu_suite.py OUT
# Usage: benchmarks/gpu_wheels.sh [PYTHON_VERSION]   (default 3.12, the GPU image's Python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-3.12}"
mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PY" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "optuna>=5.0,<6" "sqlalchemy>=2.0" alembic mako colorlog "plotly>=6.1" narwhals
ls .whl
