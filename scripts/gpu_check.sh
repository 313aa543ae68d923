#!/usr/bin/env bash
# One prepared check of cnnzoo on a machine with an NVIDIA GPU, its driver, CUDA, PyTorch and
# timm, but no Rust toolchain and no network (the reference: an H200, driver 580, CUDA 13.0,
# PyTorch 2.11). In at most about 8 minutes it
#   1. prints the GPU, driver, CUDA and PyTorch versions;
#   2. runs `cnnzoo bench` for the four CIFAR models on `cuda` and on `wgpu` (Vulkan), and the
#      same models in PyTorch eager on the same GPU (batch 128, the same warm-up and steps;
#      COMPILE=1 adds torch.compile);
#   3. trains ResNet-20 for two epochs of the mini archive on each backend: the first epoch
#      holds kernel compilation and autotuning, the second is the steady state;
#   4. writes one markdown table (images/s, ratio to PyTorch, per model and backend) to
#      $OUT/gpu_check.md (else dist/gpu/out/gpu_check.md) and prints it.
# A step that fails or runs out of time is a row that says so; the script goes on.
#
# Inputs, made on the development machine by scripts/gpu_bundle.sh into the git-ignored
# dist/gpu/: cnnzoo.xz and cnnzoo-cuda.xz (release binaries, default features and
# --features cuda) and cifar10-mini/. Where the machine has no Vulkan loader, the loader
# packages in the git-ignored .gl/ are unpacked first (download them once, on a machine with
# apt: `mkdir -p .gl && (cd .gl && apt-get download libvulkan1)`).
#
#   scripts/gpu_check.sh             # on the GPU machine, from the repo's root
#   scripts/gpu_check.sh --dry-run   # here: cnnzoo on the CPU (target/release/cnnzoo, or
#                                    # $CNNZOO), PyTorch on the CPU, small steps, same table
#
# Environment: PYTHON (a Python with torch and timm; default python3, or .venv-scripts/ made
# by scripts/python_env.sh in a dry run), MODELS, BATCH (128), STEPS (10), WARMUP (3),
# BUDGET (seconds for the whole script, 480), COMPILE (1: torch.compile rows too), OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=0
if [[ "${1:-}" == "--dry-run" ]]; then dry_run=1; fi
BUNDLE="${BUNDLE:-dist/gpu}"
MODELS="${MODELS:-googlenet resnet resnet_preact densenet}"
BUDGET="${BUDGET:-480}"
out_dir="${OUT:-$BUNDLE/out}"
mkdir -p "$out_dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"
: > "$results"

started=$SECONDS
# Runs a command with what is left of the budget (at most $1 seconds); a row records a failure.
budgeted() {
  local limit="$1"; shift
  local left=$((BUDGET - (SECONDS - started)))
  if ((left < 10)); then return 124; fi
  timeout "$((limit < left ? limit : left))" "$@"
}
record_failure() {  # framework backend model what status
  printf '{"failed": true, "framework": "%s", "backend": "%s", "model": "%s", "what": "%s", "status": %s}\n' \
    "$1" "$2" "$3" "$4" "$5" >> "$results"
}

if [[ $dry_run == 1 ]]; then
  BATCH="${BATCH:-16}" STEPS="${STEPS:-2}" WARMUP="${WARMUP:-1}"
  backends=(cpu)
  torch_device=cpu
  if [[ -z "${CNNZOO:-}" ]]; then
    cargo build --release --locked -p cnnzoo --quiet
    CNNZOO="${CARGO_TARGET_DIR:-target}/release/cnnzoo"
  fi
  declare -A binary=([cpu]="$CNNZOO")
  mini="${MINI:-../shared/data/cifar10-mini}"
  if [[ -z "${PYTHON:-}" ]]; then
    source scripts/python_env.sh
    python_env torch
  fi
else
  BATCH="${BATCH:-128}" STEPS="${STEPS:-10}" WARMUP="${WARMUP:-3}"
  torch_device=cuda
  backends=()
  declare -A binary=()
  for pair in cuda:cnnzoo-cuda wgpu:cnnzoo; do
    backend="${pair%%:*}" name="${pair#*:}"
    if [[ ! -f "$BUNDLE/$name.xz" ]]; then
      echo "warning: $BUNDLE/$name.xz is missing (scripts/gpu_bundle.sh makes it): no $backend rows" >&2
      record_failure cnnzoo "$backend" all "binary missing" 0
      continue
    fi
    xz -dc "$BUNDLE/$name.xz" > "$work/$name"
    chmod +x "$work/$name"
    backends+=("$backend")
    binary[$backend]="$work/$name"
  done
  mini="${MINI:-$BUNDLE/cifar10-mini}"
  if ! ldconfig -p | grep -q 'libvulkan.so.1' && compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [[ -z "${VK_DRIVER_FILES:-}" && -f "$icd" ]]; then export VK_DRIVER_FILES="$icd"; fi
fi
PYTHON="${PYTHON:-python3}"
# The data folder is written to (the archive is extracted beside it): a copy in the scratch folder.
mkdir -p "$work/data"
cp "$mini/cifar-10-binary.tar.gz" "$work/data/"

echo "== machine"
date -u +%Y-%m-%dT%H:%MZ
if [[ $dry_run == 1 ]]; then
  echo "dry run: no GPU; cnnzoo and PyTorch on the CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores)"
else
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi failed"
  (nvcc --version 2>/dev/null | tail -n 2) || echo "no nvcc on PATH"
fi
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
"$PYTHON" -c 'import timm; print("timm", timm.__version__)' 2>/dev/null || echo "timm: not installed"

echo "== PyTorch eager on $torch_device"
for model in $MODELS; do
  if budgeted 120 "$PYTHON" scripts/bench_pytorch.py --model "$model" --device "$torch_device" \
      --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --json > "$work/line"; then
    sed 's/^{/{"framework_label": "pytorch", "backend": "'"$torch_device"'", /' "$work/line" | tee -a "$results"
  else
    record_failure pytorch "$torch_device" "$model" bench $?
  fi
  if [[ "${COMPILE:-0}" == 1 ]]; then
    if budgeted 180 "$PYTHON" scripts/bench_pytorch.py --model "$model" --device "$torch_device" \
        --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --compile --json > "$work/line"; then
      sed 's/^{/{"framework_label": "pytorch-compile", "backend": "'"$torch_device"'", /' "$work/line" | tee -a "$results"
    else
      record_failure pytorch-compile "$torch_device" "$model" bench $?
    fi
  fi
done

for backend in "${backends[@]}"; do
  echo "== cnnzoo bench on $backend"
  for model in $MODELS; do
    if budgeted 120 "${binary[$backend]}" bench --model "$model" --device "$backend" \
        --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --json > "$work/line"; then
      sed 's/^{/{"framework_label": "cnnzoo", "backend": "'"$backend"'", /' "$work/line" | tee -a "$results"
    else
      record_failure cnnzoo "$backend" "$model" bench $?
    fi
  done
done

for backend in "${backends[@]}"; do
  echo "== cnnzoo train resnet, 2 epochs of the mini archive, on $backend"
  run="$work/run-$backend"
  if budgeted 150 "${binary[$backend]}" train --model resnet --epochs 2 --device "$backend" \
      --data-dir "$work/data" --output "$run" --set log.tensorboard=false; then
    "$PYTHON" - "$run/summary.csv" "$backend" >> "$results" <<'EOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(json.dumps({"framework_label": "cnnzoo-train", "backend": sys.argv[2], "model": "resnet",
                  "first_epoch_s": float(rows[0]["seconds"]),
                  "first_epoch_img_s": float(rows[0]["images_per_second"]),
                  "steady_img_s": float(rows[-1]["images_per_second"]),
                  "val_top1": float(rows[-1]["val_top1"] or "nan")}))
EOF
  else
    record_failure cnnzoo-train "$backend" resnet train $?
  fi
done

"$PYTHON" - "$results" "$out_dir/gpu_check.md" "$dry_run" "$BATCH" "$STEPS" "$WARMUP" <<'EOF'
import datetime, json, sys
path, out, dry, batch, steps, warmup = sys.argv[1:7]
rows = [json.loads(line) for line in open(path) if line.strip()]
ok = [r for r in rows if not r.get("failed")]
def find(label, backend, model):
    return next((r for r in ok if r.get("framework_label") == label and r["backend"] == backend
                 and r["model"] == model), None)
torch_rows = [r for r in ok if r.get("framework_label") == "pytorch"]
torch_backend = torch_rows[0]["backend"] if torch_rows else "?"
lines = [f"# cnnzoo GPU check, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC"
         + (" (dry run: CPU only)" if dry == "1" else ""), "",
         f"Batch {batch} (inference 256), {warmup} warm-up + {steps} timed steps. "
         "Ratio: cnnzoo / PyTorch eager on the same device; first step: compilation and autotuning included.", "",
         "| model | backend | train img/s | PyTorch train img/s | train ratio | infer img/s | PyTorch infer img/s | infer ratio | first step ms |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
models = list(dict.fromkeys(r["model"] for r in rows
                            if r.get("framework_label") != "cnnzoo-train" and r["model"] != "all"))
backends = list(dict.fromkeys(r["backend"] for r in rows
                              if r.get("framework_label", r.get("framework")) in ("cnnzoo",)))
fmt = lambda v: "n/a" if v is None else f"{v:,.1f}"
for model in models:
    t = find("pytorch", torch_backend, model)
    c = find("pytorch-compile", torch_backend, model)
    for backend in backends:
        b = find("cnnzoo", backend, model)
        if b is None:
            lines.append(f"| {model} | {backend} | failed or timed out | | | | | | |")
            continue
        ratio = lambda key: "n/a" if t is None else f"{b[key] / t[key]:.2f}x"
        lines.append(f"| {model} | {backend} | {fmt(b['train_img_s'])} | {fmt(t and t['train_img_s'])} | "
                     f"{ratio('train_img_s')} | {fmt(b['infer_img_s'])} | {fmt(t and t['infer_img_s'])} | "
                     f"{ratio('infer_img_s')} | {fmt(b.get('first_step_ms'))} |")
    if c is not None:
        lines.append(f"| {model} | PyTorch torch.compile | | {fmt(c['train_img_s'])} | | | {fmt(c['infer_img_s'])} | | |")
lines += ["", "ResNet-20 training, two epochs of the mini archive (4,065 images, 10% held out):", "",
          "| backend | epoch 1 s (compilation, autotune) | epoch 1 img/s | epoch 2 img/s | val top-1 % |",
          "| --- | ---: | ---: | ---: | ---: |"]
for r in rows:
    if r.get("framework_label") == "cnnzoo-train":
        lines.append(f"| {r['backend']} | {r['first_epoch_s']:.1f} | {r['first_epoch_img_s']:,.0f} | "
                     f"{r['steady_img_s']:,.0f} | {r['val_top1']:.1f} |")
    elif r.get("failed") and r["framework"] == "cnnzoo-train":
        lines.append(f"| {r['backend']} | failed or timed out (status {r['status']}) | | | |")
failures = [r for r in rows if r.get("failed") and r["framework"] != "cnnzoo-train"]
if failures:
    lines += ["", "Failed or timed out: " + ", ".join(
        f"{r['framework']} {r['model']} on {r['backend']}: {r['what']} (status {r['status']})"
        for r in failures)]
text = "\n".join(lines) + "\n"
open(out + ".tmp", "w").write(text)
import os
os.replace(out + ".tmp", out)
EOF
echo "== table ($out_dir/gpu_check.md)"
cat "$out_dir/gpu_check.md"
