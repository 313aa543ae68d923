#!/usr/bin/env bash
# Prepares what scripts/gpu_check.sh needs on a GPU machine that has no Rust toolchain and no
# network, in the git-ignored folder dist/gpu/ of the repo:
#   cnnzoo.xz        the release binary of the default build (wgpu + CPU), stripped, xz-compressed
#   cnnzoo-cuda.xz   the release binary built with --features cuda
#   cifar10-mini/    the mini archive, from ../shared/data/cifar10-mini (or $MINI)
# Compressed, the two binaries and the archive come to about 50 MB, under the 64 MiB a device
# call carries. Run it here (the development machine), then carry dist/gpu (and .gl, the Vulkan
# loader packages, see scripts/gpu_check.sh) to the GPU machine.
#
#   scripts/gpu_bundle.sh
#
# Environment: CARGO_TARGET_DIR (cargo's; the CUDA build goes to its own folder beside it,
# `<target>-cuda`, so the two builds do not rebuild each other), MINI.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
mini="${MINI:-../shared/data/cifar10-mini}"
out=dist/gpu
mkdir -p "$out/cifar10-mini"

echo "== the default build (wgpu + CPU)"
cargo build --release --locked -p cnnzoo
echo "== the CUDA build (CUDA version of cudarc's bindings: .cargo/config.toml)"
# burn's CUDA backend downloads an LLVM bundle from github.com while it builds (docs/gpu.md):
# without access to it, the bundle carries the wgpu binary alone and gpu_check.sh says so.
cuda_built=1
if ! CARGO_TARGET_DIR="${target}-cuda" cargo build --release --locked -p cnnzoo --features cuda; then
  cuda_built=0
  rm -f "$out/cnnzoo-cuda.xz"
  echo "warning: the CUDA build failed (see above; without github.com it cannot download burn's LLVM bundle): dist/gpu has no cnnzoo-cuda.xz" >&2
fi

pack() {
  local from="$1" to="$2" tmp
  tmp="$(mktemp)"
  strip -o "$tmp" "$from"
  xz -T0 -6 -c "$tmp" > "$to.tmp"
  rm -f "$tmp"
  mv "$to.tmp" "$to"
}
pack "$target/release/cnnzoo" "$out/cnnzoo.xz"
if [[ $cuda_built == 1 ]]; then pack "${target}-cuda/release/cnnzoo" "$out/cnnzoo-cuda.xz"; fi
cp "$mini/cifar-10-binary.tar.gz" "$out/cifar10-mini/"
du -sh "$out"/* | sed 's/^/  /'
if [[ ! -d .gl ]]; then
  echo "note: no .gl/ (the Vulkan loader packages); without it the GPU machine's wgpu rows may be missing: see scripts/gpu_check.sh"
fi
