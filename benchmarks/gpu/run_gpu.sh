#!/usr/bin/env bash
# All the GPU work of the benchmark issue, in one call of the device tool:
#   1. install the carried wheels ($WHEELS, default .whl/, fetched beforehand here with benchmarks/gpu/fetch_wheels.sh);
#   2. the training-speed sweep on jax and torch, every device present (GPU first, then the host CPU),
#      within SWEEP_BUDGET seconds (default 330: inside the issue's 7 minutes, leaving the parity runs room
#      in one 600-s call);
#   3. the parity suite on the jax and torch backends with TF32 off (pytest, default marks; test_bench.py
#      is left out: step 2 has just exercised the benchmark), PARITY_TIMEOUT seconds each at most;
#   4. everything under $OUT: at most 8 files come back, so the results folder (results/bench/<machine>,
#      outside the committed benchmarks/results/) travels as one tarball.
# Exit status 0 when the sweep and both parity runs passed, 1 otherwise (run.log's last line names what failed);
# the files under $OUT are written either way.
#
# Host: Python 3.12, jax and torch with CUDA, no TensorFlow (the summary says it was not timed on the
# GPU), no network. Prepare and run (device tool):
#   here:   bash benchmarks/gpu/fetch_wheels.sh   # keras 3.15.1, namex, optree, pytest, hypothesis into .whl/
#   device: run(command="bash benchmarks/gpu/run_gpu.sh", carry=[".whl"], timeout_s=600)
# Then unpack gpu_results.tar.gz into benchmarks/results/ here and commit it.
#
# Rehearsal on a CPU (parity_tests/bench/test_gpu_rehearsal.py runs this in the test suite, in seconds): no GPU, no
# wheels, a stand-in sweep and one quick parity test a backend:
#   OUT=/tmp/gpu-out RESULTS=/tmp/gpu-res WHEELS=/nonexistent SWEEP_BUDGET=60 PY=.venv/bin/python \
#   BENCH_ARGS="--quick --stand-in --case-seconds 0.05" PARITY_FILES=parity_tests/oracle/test_oracle_self.py \
#   PARITY_ARGS="-k test_cell_matches_textbook_equations" PARITY_TIMEOUT=60 bash benchmarks/gpu/run_gpu.sh
# (drop --stand-in and PARITY_* for a real CPU smoke run: minutes).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:?set OUT to the folder whose files come back}
SWEEP_BUDGET=${SWEEP_BUDGET:-330}
PARITY_TIMEOUT=${PARITY_TIMEOUT:-100}  # seconds for each backend's parity run
BENCH_ARGS=${BENCH_ARGS:-}
PARITY_ARGS=${PARITY_ARGS:-}           # more pytest arguments (the rehearsal's -k selection); empty on the GPU
WHEELS=${WHEELS:-.whl}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$OUT"
LOG="$OUT/run.log"
start=$(date +%s)
stamp() { echo "=== $(date -u +%H:%M:%S) (+$(( $(date +%s) - start )) s) $*"; }

main() {
  local failed=""
  stamp "host"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | head -5
  $PY --version
  if [ -d "$WHEELS" ]; then
    stamp "install carried wheels"
    # Into a folder of its own, without the network or dependency resolution (the host has the rest):
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
      && export PYTHONPATH=/tmp/site:$PWD || return 1
  else
    echo "no $WHEELS here: using the installed Keras"; export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
  fi
  $PY - <<'PY'
import importlib.metadata as m
for d in ("keras", "jax", "jaxlib", "torch", "numpy"):
    try: print(d, m.version(d))
    except m.PackageNotFoundError: print(d, "not installed")
PY

  stamp "sweep: jax and torch, budget ${SWEEP_BUDGET} s"
  # Outside the source tree's committed results (benchmarks/results/); a rerun on the same warm host
  # continues the result set a timed-out call left there, FRESH=1 replaces it instead.
  RESULTS=${RESULTS:-$($PY -c "from benchmarks.destination import default_folder; print(default_folder())")}
  if [ -e "$RESULTS/results.json" ] && [ -z "${FRESH:-}" ]; then MODE=--resume; else MODE=--overwrite; fi
  timeout $(( SWEEP_BUDGET + 60 )) $PY -m benchmarks.train_speed --backend jax --backend torch \
    --budget "$SWEEP_BUDGET" --out "$RESULTS" $MODE $BENCH_ARGS
  local rc=$?
  stamp "sweep done (status $rc)"
  [ "$rc" -eq 0 ] || failed="$failed sweep"
  cp "$RESULTS/summary.md" "$OUT/summary.md" 2>/dev/null
  cp "$RESULTS/results.json" "$OUT/results.json" 2>/dev/null
  tar -czf "$OUT/gpu_results.tar.gz" --exclude=.bench.lock -C "$(dirname "$RESULTS")" "$(basename "$RESULTS")" \
    || failed="$failed tarball"

  # The parity files that need only Keras, the backend, pytest and hypothesis (the host has no TensorFlow,
  # which the portability test's other-backend subprocesses and the experiment tests' scipy/tqdm would need).
  PARITY_FILES=${PARITY_FILES:-"parity_tests/parity/test_layer_parity.py parity_tests/parity/test_model_parity.py
    parity_tests/parity/test_float64_parity.py parity_tests/parity/test_hypothesis_parity.py parity_tests/parity/test_gradient_parity.py
    parity_tests/training/test_trajectory_parity.py parity_tests/convert/test_convert.py parity_tests/oracle/test_oracle_self.py"}
  for b in jax torch; do
    stamp "parity suite, KERAS_BACKEND=$b, TF32 off, ${PARITY_TIMEOUT} s at most"
    # SIGINT at the limit: pytest stops as on Ctrl-C and still prints its summary and writes the XML.
    NVIDIA_TF32_OVERRIDE=0 KERAS_BACKEND=$b timeout -s INT -k 15 "$PARITY_TIMEOUT" $PY -m pytest $PARITY_FILES $PARITY_ARGS \
      -q -p no:cacheprovider --durations=10 --junitxml="$OUT/parity_$b.xml" > "$OUT/parity_$b.log" 2>&1
    rc=$?
    echo "parity $b: status $rc (124 or 2 = stopped at the limit); last lines:"; tail -n 25 "$OUT/parity_$b.log"
    [ "$rc" -eq 0 ] || failed="$failed parity-$b"
  done
  if [ -n "$failed" ]; then stamp "done; failed:$failed"; return 1; fi
  stamp "done; all passed"
}

# A pipe rather than a process substitution: the script ends only once tee has written the whole log.
main 2>&1 | tee -a "$LOG"
exit "${PIPESTATUS[0]}"
