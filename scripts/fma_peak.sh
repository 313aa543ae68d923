#!/usr/bin/env bash
# The processor's f32 FMA peak, per core and on THREADS cores at once: the yardstick for the CPU
# kernels' efficiency in docs/performance.md (a kernel's FLOPs per second over this figure).
#
#   scripts/fma_peak.sh                 # AVX-512 where the processor has it, else AVX2
#   ISA=avx2 THREADS=1 scripts/fma_peak.sh
#
# Environment: ISA (avx512 or avx2; default: the widest the processor has), THREADS (2, the
# benchmark protocol's thread count), CC (gcc). Needs a C compiler, nothing else: the program
# runs 12 independent FMA chains (enough to cover the FMA latency on two ports) for about a
# second per thread and prints GFLOP/s.
set -euo pipefail
if [[ -z "${ISA:-}" ]]; then
  if grep -qw avx512f /proc/cpuinfo; then ISA=avx512; else ISA=avx2; fi
fi
case "$ISA" in
  avx512) flags="-mavx512f -mfma"; vec=__m512; lanes=16; prefix=_mm512 ;;
  avx2) flags="-mavx2 -mfma"; vec=__m256; lanes=8; prefix=_mm256 ;;
  *) echo "ISA must be avx512 or avx2 (got $ISA)" >&2; exit 2 ;;
esac
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/peak.c" <<C
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#define F(x) x = ${prefix}_fmadd_ps(x, b, c);
int main(void) {
  ${vec} b = ${prefix}_set1_ps(1.0000001f), c = ${prefix}_set1_ps(1e-7f);
  ${vec} a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b, a8 = b, a9 = b,
         a10 = b, a11 = b;
  const long iters = 200000000;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long n = 0; n < iters; n++) {
    F(a0) F(a1) F(a2) F(a3) F(a4) F(a5) F(a6) F(a7) F(a8) F(a9) F(a10) F(a11)
    /* Keeps the chains in registers and the loop from being folded away. */
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5),
                     "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  printf("%.1f\n", (double)iters * 12 * ${lanes} * 2 / s / 1e9);
  return 0;
}
C
# shellcheck disable=SC2086
"${CC:-gcc}" -O2 $flags "$work/peak.c" -o "$work/peak"
threads="${THREADS:-2}"
for i in $(seq "$threads"); do "$work/peak" > "$work/out.$i" & done
wait
model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
awk -v isa="$ISA" -v model="$model" -v threads="$threads" \
  '{ total += $1; line = line sprintf(" %.1f", $1) }
   END { printf "%s, %s FMA, %d threads at once: per core%s GFLOP/s, together %.1f GFLOP/s\n",
         model, isa, threads, line, total }' "$work"/out.*
