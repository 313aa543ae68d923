#!/usr/bin/env bash
# Two cnnzoo binaries side by side: the same `cnnzoo bench` alternating between them, model by
# model and round by round, so that a change in machine load hits both alike.
#
#   scripts/bench_ab.sh BEFORE_BINARY AFTER_BINARY
#   MODELS="resnet densenet" ROUNDS=3 STEPS=4 scripts/bench_ab.sh /tmp/cnnzoo-before target/release/cnnzoo
#
# Environment: MODELS (default: the four CIFAR models), ROUNDS (2), STEPS (4), WARMUP (1),
# BATCH (128), DEVICE (cpu), THREADS (2, as RAYON_NUM_THREADS), PYTHON (python3 by default; it
# formats the JSON with the standard library alone, so any Python 3 does and nothing is installed).
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 BEFORE_BINARY AFTER_BINARY" >&2
  exit 2
fi
MODELS="${MODELS:-googlenet resnet resnet_preact densenet}"
ROUNDS="${ROUNDS:-2}"
echo "| model | round | binary | train img/s | infer img/s |"
echo "| --- | ---: | --- | ---: | ---: |"
for model in $MODELS; do
  for round in $(seq "$ROUNDS"); do
    for binary in "$1" "$2"; do
      RAYON_NUM_THREADS="${THREADS:-2}" "$binary" bench --model "$model" --device "${DEVICE:-cpu}" \
        --batch "${BATCH:-128}" --steps "${STEPS:-4}" --warmup "${WARMUP:-1}" --json \
        | "${PYTHON:-python3}" -c 'import json, sys
r = json.loads(sys.stdin.read())
model, train, infer = r["model"], r["train_img_s"], r["infer_img_s"]
print(f"| {model} | {sys.argv[1]} | {sys.argv[2]} | {train:.1f} | {infer:.1f} |")' \
          "$round" "$binary"
    done
  done
done
