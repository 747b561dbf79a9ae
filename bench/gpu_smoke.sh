#!/usr/bin/env bash
# GPU smoke test (issue 15): one command, a few minutes on one GPU. Not part of the test suite.
#
#   bench/gpu_smoke.sh [OUT_DIR]        (default /tmp/r1zero-gpu-smoke; needs CUDA, vllm and ray installed)
#
# 1. a one-process rl run with beta > 0 on CUDA (device auto; the frozen reference beside the policy)
# 2. the same with the vllm sampler in bf16 (top_p = 1: the only setting whose log-probs the trainer reproduces)
# 3. the learner-group path: one Ray learner actor holding the GPU (learner_resources.num_gpus = 1)
# Each run must exit 0, print `device cuda` first, and log finite losses; a failure names its step.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-/tmp/r1zero-gpu-smoke}
rm -rf "$OUT" && mkdir -p "$OUT"
export RAY_AUTH_MODE=disabled TOKENIZERS_PARALLELISM=false
step() { echo; echo "=== $1"; }
check_run() {  # run folder, stage id: device cuda in the log's first line, finite metrics, a model written
  local run=$1 log=$1.log
  head -1 "$log" | grep -q "device cuda" || { echo "FAIL $run: first line is not 'device cuda':"; head -3 "$log"; exit 1; }
  "$PY" - "$run" <<'PYEOF'
import json, math, sys
from pathlib import Path
run = Path(sys.argv[1])
rows = [json.loads(x) for x in (run / "rl" / "metrics.jsonl").read_text().splitlines()]
bad = [(r["step"], k) for r in rows for k, v in r.items() if isinstance(v, float) and not math.isfinite(v)]
assert rows and not bad, f"{run}: non-finite metrics {bad[:5]}"
assert (run / "rl" / "model" / "config.json").is_file(), f"{run}: no model written"
last = rows[-1]
print(f"ok {run.name}: {len(rows)} steps, reward {last['reward']:.3f}, kl {last.get('kl', 0):.2e}, "
      f"loss {last.get('loss', float('nan')):.4f}, {last['seconds_step']:.2f} s/step")
PYEOF
}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('GPU:', torch.cuda.get_device_name(0))"

step "build a tiny qwen2 model (vLLM serves qwen2 at any size)"
"$PY" -m r1zero.cli build --out "$OUT/base" arch=qwen2 hidden_size=128 layers=4 heads=4 intermediate_size=384
MODEL=$OUT/base/build/model
RL=(steps=6 prompts_per_step=8 group_size=4 max_new_tokens=32 checkpoint_every=3 "rewards={numeric: 1.0, format: 0.1}")

step "1. one process, beta > 0, CUDA, hf sampler"
"$PY" -m r1zero.cli rl --model "$MODEL" --out "$OUT/kl" "${RL[@]}" loss=grpo "loss_options={beta: 0.001}" \
  num_iterations=2 minibatches=2 2>&1 | tee "$OUT/kl.log"
check_run "$OUT/kl"
"$PY" -c "
import json; rows=[json.loads(x) for x in open('$OUT/kl/rl/metrics.jsonl')]
assert rows[-1]['kl'] > 0, 'beta > 0 but no KL logged'; print('kl > 0: ok')"

step "2. vllm sampler, bf16"
"$PY" -m r1zero.cli rl --model "$MODEL" --out "$OUT/vllm" "${RL[@]}" sampler=vllm \
  "sampler_options={dtype: bfloat16, gpu_memory_utilization: 0.3, enforce_eager: true}" 2>&1 | tee "$OUT/vllm.log"
check_run "$OUT/vllm"
"$PY" -m r1zero.cli rl --model "$MODEL" --out "$OUT/vllm-top-p" steps=1 sampler=vllm top_p=0.9 \
  > "$OUT/vllm-top-p.log" 2>&1 && { echo "FAIL: vllm with top_p < 1 was not refused"; exit 1; } || true
grep -q "top_p < 1 or top_k > 0" "$OUT/vllm-top-p.log" && echo "vllm top_p < 1 refused: ok"

step "3. learner group: one Ray learner actor on the GPU, beta > 0"
"$PY" -m r1zero.cli rl --model "$MODEL" --out "$OUT/group" "${RL[@]}" loss=grpo "loss_options={beta: 0.001}" \
  "cluster={learner_resources: {num_cpus: 1, num_gpus: 1}, check_weights: true}" 2>&1 | tee "$OUT/group.log"
check_run "$OUT/group"

step "4. resume after the run: skips finished stages, exits 0"
"$PY" -m r1zero.cli rl --model "$MODEL" --out "$OUT/kl" "${RL[@]}" loss=grpo "loss_options={beta: 0.001}" \
  num_iterations=2 minibatches=2 --resume > "$OUT/resume.log" 2>&1
echo; echo "gpu smoke: all passed ($OUT)"
