#!/usr/bin/env bash
# One prepared device check: float32 accuracy tests, every benchmark, the solver table.
#
#   benchmarks/device_check.sh [REPORT.md]          # default benchmarks/device_report.md
#   QUICK=1 JAX_PLATFORMS=cpu benchmarks/device_check.sh /tmp/report.md   # CPU smoke run
#
# Sized to finish in under 8 minutes on one GPU: the steps' timeouts add up to 470 s (a
# step that fails or times out is reported, with its output so far, and the next runs). QUICK=1 shrinks
# every size and runs only test_reference.py's float32 tests, so that the whole script runs on
# 2 CPU cores (a smoke run of every step, not a measurement). The JSON
# results go to REPORT's folder (<report>.json.d/); benchmarks/readme_table.py turns
# them into the README's benchmark table, appended at the end of the report.
set -uo pipefail
cd "$(dirname "$0")/.."
report=${1:-benchmarks/device_report.md}
py=${PYTHON:-python}
jsondir="${report%.md}.json.d"
mkdir -p "$jsondir" "$(dirname "$report")"
rm -f "$jsondir"/*.json
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's jaxcca
quick=${QUICK:-0}
t_start=$(date +%s)

{
  echo "# jaxcca device check"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), git $(git rev-parse --short HEAD 2>/dev/null || echo '?'), QUICK=$quick"
  echo
  echo '```'
  $py -c "import jax, jaxlib, numpy; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, 'numpy', numpy.__version__); print(jax.devices())"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo '```'
  echo
} > "$report"

step() {  # step NAME TIMEOUT_S CMD...: runs CMD, logs its output, never aborts the script
  local name=$1 limit=$2
  shift 2
  local t0=$(date +%s)
  echo "== $name (limit ${limit}s)" >&2
  local log
  log=$(mktemp)
  timeout "$limit" "$@" >"$log" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  echo "== $name: rc=$rc, ${dt}s" >&2
  {
    echo "## $name"
    echo
    echo "\`$*\`: exit $rc, ${dt} s$([ $rc = 124 ] && echo ' (TIMED OUT)')"
    echo
    echo '<details><summary>output</summary>'
    echo
    echo '```'
    tail -c 20000 "$log"
    echo '```'
    echo '</details>'
    echo
  } >> "$report"
  rm -f "$log"
}

# 1. float32 accuracy tests (float32 vs float64 agreement, every measure)
if [ "$quick" = 1 ]; then  # CPU smoke run: one file's float32 tests
  step "float32 accuracy tests (QUICK: test_reference only)" 600 $py -m pytest -q -p no:cacheprovider \
    tests/test_reference.py -k "float32"
else
  step "float32 accuracy tests" 90 $py -m pytest -q -p no:cacheprovider \
    tests/test_reference.py tests/test_dft.py tests/test_cka.py tests/test_procrustes.py \
    tests/test_pairwise.py -k "float32"
fi

# 2. benchmarks (markdown tables appended to the report, JSON for the README table)
md() { echo --markdown "$report" --json "$jsondir/$1.json"; }
if [ "$quick" = 1 ]; then
  step bench_core 300 $py benchmarks/bench_core.py --n 2000 --d 100 --repeat 2 $(md core)
  step bench_pairwise 300 $py benchmarks/bench_pairwise.py --n 500 --d 16 --scaling 8,16 \
    --numpy-pairs 8 --loop-pairs 8 --repeat 2 --sweep --sweep-m 8 --sweep-n 1000 --sweep-d 32 \
    $(md pairwise)
  step bench_dft 300 $py benchmarks/bench_dft.py --n 32 --hw 8 --c 16 --repeat 2 $(md dft)
  step bench_cka 300 $py benchmarks/bench_cka.py --n 1000 --d 50 --n-rbf 200 --pairs 4 --repeat 2
  step bench_solvers 300 $py benchmarks/bench_solvers.py --sizes 16,64 --batches 1,16 \
    --repeat 2 $(md solvers)
  step bench_train_step 300 $py benchmarks/bench_train_step.py --steps 3
else
  step bench_core 70 $py benchmarks/bench_core.py --repeat 3 --numpy-all-cores $(md core)
  step bench_pairwise 100 $py benchmarks/bench_pairwise.py --scaling 64,128 --repeat 3 \
    --numpy-pairs 16 --loop-pairs 64 --sweep --sweep-m 64 $(md pairwise)
  step bench_dft 40 $py benchmarks/bench_dft.py --repeat 3 $(md dft)
  step bench_solvers 120 $py benchmarks/bench_solvers.py --max-elements 134217728 --repeat 3 \
    $(md solvers)
  step bench_cka 25 $py benchmarks/bench_cka.py --repeat 3
  step bench_train_step 25 $py benchmarks/bench_train_step.py --steps 10
fi

# 3. the README benchmark table from this run's JSON
{
  echo "## README benchmark table (this run)"
  echo
  $py benchmarks/readme_table.py "$jsondir"/*.json 2>&1
  echo
  echo "Total: $(( $(date +%s) - t_start )) s."
} >> "$report"
echo "report: $report ($(( $(date +%s) - t_start )) s)" >&2
