#!/usr/bin/env bash
# The kernel issue's GPU checks in one call of the device tool (no venv there: its image has torch, triton,
# transformers and pytest, and nothing can be installed from a registry):
#
#     device run: command "bash scripts/device_kernels.sh", timeout_s 560
#
# 1. tests/test_kernels.py (on a GPU its gpu-marked cases check the compiled kernels, bf16 and fp32, against an
#    fp32 reference) and the 20-step Triton-vs-torch convergence test;
# 2. scripts/bench_kernels.py at the issue's shapes (bf16), one CSV row per (case, method).
# Logs and the CSV land in $OUT; copy the CSV to scripts/results/ and commit it. Each stage has its own time
# limit, so the call always returns what it measured. Also runs on a CPU machine (the GPU tests skip; the bench
# takes its CPU shapes), which is how this script is checked where there is no GPU:
#
#     OUT=/tmp/out bash scripts/device_kernels.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# The package as pip would lay it out (data_gen/ is hyperlora.data_gen, and so on; pyproject.toml's package-dir),
# copied rather than installed: the image's setuptools may not build it offline, and copying needs nothing.
SITE=$(mktemp -d)
cp -r hyperlora "$SITE/"
for sub in data_gen evals; do cp -r "$sub" "$SITE/hyperlora/$sub"; done
export PYTHONPATH=$SITE:$PWD/scripts  # scripts/machine.py, which the benchmark imports (-P drops its folder)
# -P and importlib mode keep the repo root off sys.path: there, hyperlora/ has no data_gen/ or evals/ beside it.
PYTEST=("$PY" -P -m pytest -q -p no:cacheprovider -o pythonpath= --import-mode=importlib)

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi"
  "$PY" -c "import torch, triton; print('torch', torch.__version__, '| triton', triton.__version__,
'| cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
} 2>&1 | tee "$OUT/env.txt"

timeout 200 "${PYTEST[@]}" -rs tests/test_kernels.py tests/test_kernels_convergence.py 2>&1 | tee "$OUT/tests.log"
tests_rc=${PIPESTATUS[0]}

timeout "${BENCH_TIMEOUT_S:-300}" "$PY" -P scripts/bench_kernels.py --out "$OUT/bench_kernels.csv" 2>&1 \
    | tee "$OUT/bench.log"
bench_rc=${PIPESTATUS[0]}

echo "tests rc=$tests_rc, bench rc=$bench_rc (124: stopped at its time limit; the CSV keeps every finished case)"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
