#!/usr/bin/env bash
# The solver and sweep benchmarks of docs/benchmarks.md on a quiet machine: the CPU sides pinned to
# two cores (the size of CI's machine), then the solver benchmark on a GPU where one is present.
# Run from the repository root: bash scripts/device_benchmarks.sh  (PY=python to choose the interpreter)
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
PY=${PY:-python3}
pin() { if command -v taskset >/dev/null; then taskset -c 0,1 "$@"; else "$@"; fi; }
$PY -c "import platform, torch, torchdiffeq; print('python', platform.python_version(), 'torch', torch.__version__, 'torchdiffeq', torchdiffeq.__version__); print(open('/proc/cpuinfo').read().split('model name')[1].split(chr(10))[0])"
echo "== solvers, CPU, 2 pinned cores, 2 threads"; pin $PY scripts/bench_solvers.py --threads 2 --repeats 15
echo "== solvers, CPU, 2 pinned cores, 1 thread"; pin $PY scripts/bench_solvers.py --threads 1 --repeats 15
if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "== solvers, GPU"; $PY scripts/bench_solvers.py --device cuda --repeats 15
fi
echo "== sweep: 64 circle runs, 50 epochs, 2 pinned cores, 1 thread"
pin $PY scripts/bench_sweep.py --runs 64 --epochs 50 --repeats 1 --threads 1
