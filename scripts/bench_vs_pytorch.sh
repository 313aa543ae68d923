#!/usr/bin/env bash
# cnnzoo (release build) and PyTorch side by side on the same machine, in one run, and the ratios.
#
#   scripts/bench_vs_pytorch.sh                       # the four CIFAR models, CPU, batch 128
#   MODELS="resnet densenet" STEPS=20 scripts/bench_vs_pytorch.sh
#   MODELS="resnet resnet" scripts/bench_vs_pytorch.sh   # two rounds of one model, two rows
#   DEVICE=wgpu TORCH_DEVICE=cuda THREADS=16 scripts/bench_vs_pytorch.sh   # a GPU machine
#
# Environment: MODELS, DEVICE (cnnzoo's --device, default cpu), TORCH_DEVICE (default cpu),
# BATCH (128), INFER_BATCH (256), STEPS (10), WARMUP (2), THREADS (2: torch.set_num_threads and
# RAYON_NUM_THREADS for burn), CNNZOO (the binary; default: target/release/cnnzoo, built first with
# `cargo build --release`), PYTHON (a Python with torch; default: the venv .venv-scripts/, made
# and given torch on first use by scripts/python_env.sh, which says how).
# The two frameworks alternate model by model so that a change in machine load hits both alike;
# the load average is printed before and after. Raw JSON lines are kept in $OUT_JSON if set.
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS="${MODELS:-googlenet resnet resnet_preact densenet}"
DEVICE="${DEVICE:-cpu}"
TORCH_DEVICE="${TORCH_DEVICE:-cpu}"
BATCH="${BATCH:-128}"
INFER_BATCH="${INFER_BATCH:-256}"
STEPS="${STEPS:-10}"
WARMUP="${WARMUP:-2}"
THREADS="${THREADS:-2}"
source scripts/python_env.sh
python_env torch
if [[ -z "${CNNZOO:-}" ]]; then
  cargo build --release -p cnnzoo --quiet
  CNNZOO="${CARGO_TARGET_DIR:-target}/release/cnnzoo"
fi
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "error: $PYTHON cannot import torch; install torch into it, or unset PYTHON to use .venv-scripts/" >&2
  exit 1
fi

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for model in $MODELS; do
  RAYON_NUM_THREADS="$THREADS" "$CNNZOO" bench --model "$model" --device "$DEVICE" --batch "$BATCH" \
    --infer-batch "$INFER_BATCH" --steps "$STEPS" --warmup "$WARMUP" --json \
    | sed 's/^/burn /' >> "$results"
  "$PYTHON" scripts/bench_pytorch.py --model "$model" --device "$TORCH_DEVICE" --batch "$BATCH" \
    --infer-batch "$INFER_BATCH" --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" --json \
    | sed 's/^/torch /' >> "$results"
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n "${OUT_JSON:-}" ]]; then cp "$results" "$OUT_JSON"; fi

"$PYTHON" - "$results" <<'EOF'
import json, sys
# One row per run, in order: a model listed twice in MODELS (a second round) gets two rows.
rows = []
for line in open(sys.argv[1]):
    side, payload = line.split(" ", 1)
    if side == "burn":
        rows.append({})
    rows[-1][side] = json.loads(payload)
b0 = rows[0]["burn"]
print(f"\nbatch {b0['batch']}, inference batch {b0['infer_batch']}, {b0['warmup']} warm-up + "
      f"{b0['steps']} timed steps; burn on {b0['device_description']}")
t0 = rows[0]["torch"]
print(f"processor: {b0.get('cpu') or '?'}; cnnzoo's kernels: {b0.get('isa') or 'n/a'}; "
      f"PyTorch's CPU capability: {t0.get('cpu_capability') or '?'}")
print("| model | burn train img/s | PyTorch train img/s | train ratio | burn infer img/s | "
      "PyTorch infer img/s | infer ratio | burn loader img/s (x burn train) | burn / PyTorch peak RSS MB |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    b, t = r["burn"], r["torch"]
    model = b["model"]
    loader = "n/a" if b.get("loader_img_s") is None else \
        f"{b['loader_img_s']:,.0f} ({b['loader_img_s'] / b['train_img_s']:.0f}x)"
    rss = lambda x: "?" if x is None else f"{x:.0f}"
    print(f"| {model} | {b['train_img_s']:.1f} | {t['train_img_s']:.1f} | "
          f"{b['train_img_s'] / t['train_img_s']:.2f}x | {b['infer_img_s']:.1f} | {t['infer_img_s']:.1f} | "
          f"{b['infer_img_s'] / t['infer_img_s']:.2f}x | {loader} | "
          f"{rss(b['peak_rss_mb'])} / {rss(t['peak_rss_mb'])} |")
EOF
