#!/usr/bin/env bash
# Every GPU path of mapd, run once, in one command that stops itself inside 9 minutes (one call of the device tool):
#   1. nbdev-test --flags gpu: the notebook cells flagged `#| gpu` (bf16 autocast, data on the device, channels_last,
#      a recorded run that resumes, torch.compile; the CUDA k-NN against scikit-learn's and the CPU's)
#   2. benchmarks/bench_gpu_train.py: training images/s with no recording, online recording and the evaluation pass
#   3. benchmarks/bench_gpu_knn.py: the k-NN at ImageNet size against scikit-learn on a CPU slice, equality checked
#   4. mapd audit --preset gpu-fashion-mnist (shortened: see AUDIT_ARGS), end to end, with its probe accuracies
#   5. planted.ipynb, shortened (one seed, a 20,000-example subset), through papermill
# Each step has its own time limit and is skipped when the time left is short; each writes under $OUT:
# env.json, nbdev_gpu.log, gpu_train.json, gpu_knn.json, audit/ (results.json, metadata.parquet), planted/
# (results.json), <step>.log, and summary.json (each step's exit code, seconds and figures).
#
#   bash scripts/gpu_check.sh                        # on the GPU machine: OUT=$OUT (the device tool sets it)
#   bash scripts/gpu_check.sh --device cpu --small   # smoke test of this script on a CPU, in about two minutes
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda; SMALL=0; OUT=${OUT:-gpu_check_out}; BUDGET=${GPU_CHECK_SECONDS:-540}
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2;;
    --small) SMALL=1; shift;;
    --out) OUT=$2; shift 2;;
    --budget) BUDGET=$2; shift 2;;
    -h|--help) sed -n '2,17p' "$0"; exit 0;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2;;
  esac
done
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
[ -x .venv/bin/python ] && export PATH="$PWD/.venv/bin:$PATH"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
START=$(date +%s); LOG="$OUT/gpu_check.log"; : > "$OUT/steps.tsv"
say() { printf '[gpu_check %4ds] %s\n' "$(( $(date +%s) - START ))" "$*" | tee -a "$LOG"; }

# step NAME LIMIT_S COMMAND...: run with a time limit capped by what is left of the budget; skipped under 20 s left
step() {
  local name=$1 limit=$2; shift 2
  local left=$(( BUDGET - ($(date +%s) - START) - 10 ))
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -lt 20 ]; then say "$name: skipped ($left s left of the budget)"; printf '%s\tskipped\t0\n' "$name" >> "$OUT/steps.tsv"; return; fi
  say "$name: starting (limit ${limit} s)"
  local t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  say "$name: exit $rc after ${dt} s$([ $rc = 124 ] && echo ' (time limit)')"; tail -n 5 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$LOG"
  printf '%s\t%s\t%s\n' "$name" "$rc" "$dt" >> "$OUT/steps.tsv"
}

python - "$OUT/env.json" "$DEVICE" <<'EOF'
import json, platform, subprocess, sys, torch, mapd
cuda = torch.cuda.is_available()
smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"], capture_output=True, text=True) if cuda else None
json.dump(dict(mapd=mapd.__version__, torch=torch.__version__, cuda=torch.version.cuda, cuda_available=cuda, device=sys.argv[2],
               gpus=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())], nvidia_smi=smi.stdout.strip() if smi else None,
               bf16=cuda and torch.cuda.is_bf16_supported(), python=platform.python_version(), machine=platform.machine()),
          open(sys.argv[1], "w"), indent=1)
EOF
say "environment: $(tr -d '\n' < "$OUT/env.json" | head -c 400)"
if [ "$DEVICE" != cpu ] && ! python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  say "no CUDA device is visible: run with --device cpu --small for a smoke test"; exit 2
fi

if [ $SMALL = 1 ]; then
  step nbdev_gpu 120 nbdev-test nbs/07_knn.ipynb --flags gpu
  step gpu_train 120 python benchmarks/bench_gpu_train.py --device "$DEVICE" --small --repeats 1 --epochs 1 --json "$OUT/gpu_train.json"
  step gpu_knn 120 python benchmarks/bench_gpu_knn.py --device "$DEVICE" --small --repeats 1 --sklearn-repeats 1 --json "$OUT/gpu_knn.json"
  step audit 120 mapd audit --dataset synthetic --epochs 3 --score-runs 1 --score-epochs 1 --n-fit 25 --n-heldout 25 --k 5 --device "$DEVICE" --quiet --out "$OUT/audit"
  printf 'out_dir: %s\ndevice: %s\ndataset: synthetic\nsubset: 0\nseeds: [0]\nfraction: 0.03\nepochs: 3\nscore_runs: 1\nscore_epochs: 1\nn_fit: 25\nn_heldout: 25\nk: 5\ncv_folds: 2\ncv_epochs: 1\nquiet: true\n' \
    "$OUT/planted" "$DEVICE" > "$OUT/planted.yaml"
  step planted 150 papermill nbs/experiments/planted.ipynb "$OUT/planted.ipynb" -k python3 --cwd nbs/experiments -f "$OUT/planted.yaml"
else
  step nbdev_gpu 90 nbdev-test nbs/04_train.ipynb nbs/07_knn.ipynb --flags gpu
  step gpu_train 170 python benchmarks/bench_gpu_train.py --device "$DEVICE" --repeats 2 --json "$OUT/gpu_train.json"
  step gpu_knn 90 python benchmarks/bench_gpu_knn.py --device "$DEVICE" --json "$OUT/gpu_knn.json"
  # the preset's 60 epochs and 8 x 8 scoring epochs do not fit beside the rest in one call: 20 epochs, 4 x 4 (say so in the claims row)
  step audit 130 mapd audit --preset gpu-fashion-mnist --epochs 20 --score-runs 4 --score-epochs 4 --device "$DEVICE" --quiet --out "$OUT/audit"
  printf 'out_dir: %s\ndevice: %s\nseeds: [0]\nsubset: 20000\nepochs: 10\nscore_runs: 2\nscore_epochs: 3\nquiet: true\n' "$OUT/planted" "$DEVICE" > "$OUT/planted.yaml"
  step planted 100 papermill nbs/experiments/planted.ipynb "$OUT/planted.ipynb" -k python3 --cwd nbs/experiments -f "$OUT/planted.yaml"
fi

python - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def read(p):
    try: return json.loads((out/p).read_text())
    except (OSError, ValueError): return None
steps = {n: dict(exit=int(rc) if rc.lstrip("-").isdigit() else rc, seconds=int(s)) for n, rc, s in
         (l.split("\t") for l in (out/"steps.tsv").read_text().splitlines() if l)}
audit = read("audit/results.json") or {}
summary = dict(env=read("env.json"), steps=steps, gpu_train=read("gpu_train.json"), gpu_knn=read("gpu_knn.json"),
               audit={k: audit.get(k) for k in ("probe_accuracy_main", "probe_accuracy", "test_accuracy", "train_seconds", "score_seconds", "seconds")},
               planted={k: v for k, v in (read("planted/results.json") or {}).items()
                        if k in ("seeds", "n_training_rows", "mapd_auroc", "best_single_auroc", "flag_recall", "flag_fdr", "prevalence_ratio")})
(out/"summary.json").write_text(json.dumps(summary, indent=1, default=str))
print(json.dumps(steps))
sys.exit(0 if steps and all(s["exit"] == 0 for s in steps.values()) else 1)
EOF
rc=$?
say "summary in $OUT/summary.json; every step passed: $([ $rc = 0 ] && echo yes || echo no)"
exit $rc
