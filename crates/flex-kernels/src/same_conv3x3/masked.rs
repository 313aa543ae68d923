//! The forward kernel (and so the input gradient's) at AVX-512 for images with several whole
//! rows to a 16-lane vector (widths 1, 2, 4 and 8: the CIFAR models' last stage). Each vector of 16 output positions reads each tap
//! from the image itself with a masked load, whose mask drops the lanes whose tap falls into
//! the padding, so no padded copy is made and, at 8x8, two rows fill a vector.
//!
//! Why: the padded-plane kernels copy every image into zero-padded planes first (`pad`, 5% of
//! ResNet-20's training in `perf`), and 8-wide rows left them at AVX2's width, where gemm's
//! AVX-512 kernels were faster (`docs/performance.md`).
use super::{CHANNEL_BLOCK, SameConv3x3, TAPS};

/// Lanes of an AVX-512 f32 vector: output positions per vector.
const LANES: usize = 16;
/// Vectors of output positions per register block.
const VECTORS: usize = 2;
/// Output channels per register block where that many remain: two of `pack`'s blocks.
const WIDE_BLOCK: usize = 2 * CHANNEL_BLOCK;

impl SameConv3x3 {
    /// Whether the masked kernel runs: at AVX-512, where several whole rows fill each 16-lane
    /// vector. Wider rows keep the padded-plane kernel, which measured as fast there.
    pub(super) fn masked(&self) -> bool {
        let plane = self.height * self.width;
        cfg!(target_arch = "x86_64")
            && crate::isa::active() >= crate::isa::Isa::Avx512
            && plane.is_multiple_of(LANES)
            && self.width < LANES
            && LANES.is_multiple_of(self.width)
    }

    /// Per vector of output positions in a plane, per tap, the lanes whose tap lies inside the
    /// image (bit `l` for lane `l`).
    pub(super) fn masks(&self) -> Vec<[u16; TAPS]> {
        let (height, width) = (self.height as isize, self.width as isize);
        let vectors = self.height * self.width / LANES;
        (0..vectors)
            .map(|k| {
                std::array::from_fn(|t| {
                    let (di, dj) = ((t / 3) as isize - 1, (t % 3) as isize - 1);
                    (0..LANES).fold(0, |mask, lane| {
                        let p = (k * LANES + lane) as isize;
                        let (y, x) = (p / width + di, p % width + dj);
                        let inside = (0..height).contains(&y) && (0..width).contains(&x);
                        mask | (u16::from(inside) << lane)
                    })
                })
            })
            .collect()
    }

    /// The offset of tap `t` from an output position, in the unpadded plane.
    fn signed_tap_offsets(&self) -> [isize; TAPS] {
        let width = self.width as isize;
        std::array::from_fn(|t| ((t / 3) as isize - 1) * width + (t % 3) as isize - 1)
    }

    /// `out` (`[outputs, height, width]`) = the convolution of `image` (`[inputs, height,
    /// width]`) with the weights `packed` by `pack`, whose padding `masks` (from `masks`) drop.
    pub(super) fn convolve_masked(
        &self,
        (image, inputs): (&[f32], usize),
        packed: &[f32],
        masks: &[[u16; TAPS]],
        out: &mut [f32],
    ) {
        let plane = self.height * self.width;
        let outputs = out.len() / plane;
        let vectors = plane / LANES;
        let offsets = self.signed_tap_offsets();
        let mut first = 0;
        while first < outputs {
            let block = match outputs - first {
                left if left >= WIDE_BLOCK => WIDE_BLOCK,
                left => left.min(CHANNEL_BLOCK),
            };
            let weights = &packed[first * inputs * TAPS..][..block * inputs * TAPS];
            for k in (0..vectors).step_by(VECTORS) {
                let count = VECTORS.min(vectors - k);
                let kernel = MaskedKernel {
                    image,
                    plane,
                    inputs,
                    offsets: &offsets,
                    masks: &masks[k..k + count],
                    start: k * LANES,
                    weights,
                };
                kernel.run(block, &mut out[first * plane..]);
            }
            first += block;
        }
    }
}

/// One register block of `convolve_masked`: `masks.len()` (1 or 2) vectors of output positions
/// from `start` on, for a block of output channels.
struct MaskedKernel<'a> {
    image: &'a [f32],
    plane: usize,
    inputs: usize,
    offsets: &'a [isize; TAPS],
    masks: &'a [[u16; TAPS]],
    start: usize,
    weights: &'a [f32],
}

impl MaskedKernel<'_> {
    /// Writes `block` output channels into `out`, one every `plane` values.
    fn run(&self, block: usize, out: &mut [f32]) {
        let vectors = self.masks.len();
        assert!(
            matches!(block, 1..=CHANNEL_BLOCK | WIDE_BLOCK)
                && (1..=VECTORS).contains(&vectors)
                && self.plane.is_multiple_of(LANES)
                && self.start + vectors * LANES <= self.plane
                && self.image.len() >= self.inputs * self.plane
                && self.weights.len() == block * self.inputs * TAPS
                && out.len() >= (block - 1) * self.plane + self.start + vectors * LANES
                && crate::isa::active() >= crate::isa::Isa::Avx512,
            "masked kernel block out of bounds"
        );
        #[cfg(target_arch = "x86_64")]
        // Safety: the assertion checked the level and that every write lies in `out`. Each
        // unmasked lane reads its tap at a position inside its own plane of `image`: `masks`
        // keeps exactly the lanes whose tap row and column lie inside the image.
        unsafe {
            match (block, vectors) {
                (1, 1) => avx512::convolve::<1, 1>(self, out),
                (2, 1) => avx512::convolve::<2, 1>(self, out),
                (3, 1) => avx512::convolve::<3, 1>(self, out),
                (CHANNEL_BLOCK, 1) => avx512::convolve::<CHANNEL_BLOCK, 1>(self, out),
                (_, 1) => avx512::convolve::<WIDE_BLOCK, 1>(self, out),
                (1, _) => avx512::convolve::<1, VECTORS>(self, out),
                (2, _) => avx512::convolve::<2, VECTORS>(self, out),
                (3, _) => avx512::convolve::<3, VECTORS>(self, out),
                (CHANNEL_BLOCK, _) => avx512::convolve::<CHANNEL_BLOCK, VECTORS>(self, out),
                _ => avx512::convolve::<WIDE_BLOCK, VECTORS>(self, out),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("`SameConv3x3::masked` is false off x86-64");
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{CHANNEL_BLOCK, LANES, MaskedKernel, TAPS};

    /// Safety: the processor has AVX-512 F and `MaskedKernel::run`'s checks hold for `BLOCK`
    /// channels and `VECS` vectors. A block of more than `CHANNEL_BLOCK` channels reads its
    /// weights from two of `pack`'s blocks, one after the other.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn convolve<const BLOCK: usize, const VECS: usize>(
        kernel: &MaskedKernel,
        out: &mut [f32],
    ) {
        let pack_block = BLOCK.min(CHANNEL_BLOCK);
        let pack_len = pack_block * kernel.inputs * TAPS;
        let mut sums = [[_mm512_setzero_ps(); VECS]; BLOCK];
        let image = kernel.image.as_ptr();
        let weights = kernel.weights.as_ptr();
        for c in 0..kernel.inputs {
            let plane = image.wrapping_add(c * kernel.plane + kernel.start);
            for (t, &offset) in kernel.offsets.iter().enumerate() {
                let xs: [__m512; VECS] = std::array::from_fn(|v| unsafe {
                    _mm512_maskz_loadu_ps(
                        kernel.masks[v][t],
                        plane.wrapping_offset(offset + (v * LANES) as isize),
                    )
                });
                for (o, sums) in sums.iter_mut().enumerate() {
                    let at = (o / pack_block) * pack_len + (c * TAPS + t) * pack_block;
                    let w = unsafe { _mm512_set1_ps(*weights.add(at + o % pack_block)) };
                    for (sum, x) in sums.iter_mut().zip(xs) {
                        *sum = _mm512_fmadd_ps(w, x, *sum);
                    }
                }
            }
        }
        let out = out.as_mut_ptr();
        for (o, sums) in sums.iter().enumerate() {
            for (v, sum) in sums.iter().enumerate() {
                unsafe {
                    _mm512_storeu_ps(out.add(o * kernel.plane + kernel.start + v * LANES), *sum)
                };
            }
        }
    }
}
