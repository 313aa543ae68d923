//! The AVX-512 kernels that read the images in place, where 16-lane vectors tile each plane
//! (widths 1, 2, 4, 8 and multiples of 16: every CIFAR model's 3x3 layer). A vector of 16
//! output positions reads each tap with a masked load, whose mask drops the lanes whose tap
//! falls into the padding, so no padded copy is made.
//!
//! - Forward and input gradient, where several whole rows fill a vector (the CIFAR models'
//!   8x8 stage): 8-wide rows left the padded-plane kernels at AVX2's width, where gemm's
//!   AVX-512 kernels were faster. Wider rows keep the padded-plane kernels, which measured as
//!   fast as this one there.
//! - Weight gradient, at every such width: the dot products run over whole planes without the
//!   padded copies, and sum over a pass of images before the final sum across lanes.
//!
//! Figures in `docs/performance.md`.
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{CHANNEL_BLOCK, SameConv3x3, TAPS};
use crate::summed;

/// Lanes of an AVX-512 f32 vector: output positions per vector.
const LANES: usize = 16;
/// Vectors of output positions per register block.
const VECTORS: usize = 2;
/// Output channels per register block where that many remain: two of `pack`'s blocks.
const WIDE_BLOCK: usize = 2 * CHANNEL_BLOCK;

impl SameConv3x3 {
    /// Whether the masked kernels can run: at AVX-512, where 16-lane vectors tile each plane,
    /// whole vectors to a row or whole rows to a vector.
    pub(super) fn vectors_tile_planes(&self) -> bool {
        let plane = self.height * self.width;
        cfg!(target_arch = "x86_64")
            && crate::isa::active() >= crate::isa::Isa::Avx512
            && plane.is_multiple_of(LANES)
            && (self.width.is_multiple_of(LANES) || LANES.is_multiple_of(self.width))
    }

    /// Whether the masked forward kernel runs: where several whole rows fill each vector.
    /// Wider rows keep the padded-plane kernel, which measured as fast there.
    pub(super) fn masked(&self) -> bool {
        self.vectors_tile_planes() && self.width < LANES
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
        out: &mut [MaybeUninit<f32>],
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

impl SameConv3x3 {
    /// The weight gradient with masked loads: per block of output channels, input channel and
    /// kernel row, the three dot products of the output gradient with the input shifted by each
    /// tap, over a pass of images whose output-gradient planes of the block stay in L1. Each
    /// dot product keeps its 16 lanes' sums in `lanes` from one pass to the next, and they are
    /// added across lanes once, at the end. Images split between threads, each summing its own
    /// and the sums added at the end.
    pub(super) fn weight_grad_masked(&self, x: &[f32], output_grad: &[f32]) -> Vec<f32> {
        let (inputs, outputs) = (self.channels_in, self.channels_out);
        let plane = self.height * self.width;
        let (image_len, out_image_len) = (inputs * plane, outputs * plane);
        let images_per_task = self.batch.div_ceil(rayon::current_num_threads()).max(1);
        let pass = (PASS_FLOATS / (WIDE_BLOCK * plane)).clamp(1, images_per_task);
        let masks = self.masks();
        let offsets = self.signed_tap_offsets();
        let weight_len = outputs * inputs * TAPS;
        x.par_chunks(image_len * images_per_task)
            .zip(output_grad.par_chunks(out_image_len * images_per_task))
            .map(|(x, grad)| {
                let mut lanes = vec![0.0; weight_len * LANES];
                let (mut x_planes, mut grad_planes) = (Vec::new(), Vec::new());
                let passes = x
                    .chunks(image_len * pass)
                    .zip(grad.chunks(out_image_len * pass));
                for (x, grad) in passes {
                    let run = x.len() / image_len * plane;
                    // A pass of one image (ResNet-20's first stage) is already laid out by
                    // channel: copying it anyway was most of the training step's memmove.
                    let (x_planes, grad_planes) = if run == plane {
                        (x, grad)
                    } else {
                        by_channel(x, inputs, plane, &mut x_planes);
                        by_channel(grad, outputs, plane, &mut grad_planes);
                        (&x_planes[..], &grad_planes[..])
                    };
                    for (first, block) in dot_blocks(outputs) {
                        let block_lanes = &mut lanes[first * inputs * TAPS * LANES..];
                        for c in 0..inputs {
                            for row in 0..3 {
                                let dots = MaskedDots {
                                    x: &x_planes[c * run..][..run],
                                    grads: &grad_planes[first * run..][..block * run],
                                    offsets: &offsets[row * 3..][..3],
                                    masks: &masks,
                                    row,
                                };
                                let at = (c * 3 + row) * block * 3 * LANES;
                                dots.run(block, &mut block_lanes[at..][..block * 3 * LANES]);
                            }
                        }
                    }
                }
                lanes_summed(&lanes, inputs, outputs)
            })
            .reduce(|| vec![0.0; weight_len], summed)
    }
}

/// The register blocks of output channels the weight gradient runs, `(first, block)`: of
/// `WIDE_BLOCK` while that many remain, then of at most `CHANNEL_BLOCK`.
fn dot_blocks(outputs: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut first = 0;
    std::iter::from_fn(move || {
        let block = match outputs - first {
            0 => return None,
            left if left >= WIDE_BLOCK => WIDE_BLOCK,
            left => left.min(CHANNEL_BLOCK),
        };
        first += block;
        Some((first - block, block))
    })
}

/// `dw` (`[outputs, inputs, 3, 3]`) from the lanes' sums of `weight_grad_masked`, which hold per
/// register block of output channels, per input channel and kernel row, per output channel of
/// the block and tap of the row, `LANES` partial sums.
fn lanes_summed(lanes: &[f32], inputs: usize, outputs: usize) -> Vec<f32> {
    let mut dw = vec![0.0; outputs * inputs * TAPS];
    for (first, block) in dot_blocks(outputs) {
        let block_lanes = &lanes[first * inputs * TAPS * LANES..][..block * inputs * TAPS * LANES];
        let sums = block_lanes
            .chunks_exact(LANES)
            .map(|lanes| lanes.iter().sum::<f32>());
        for (k, sum) in sums.enumerate() {
            let (c, row, o, j) = (
                k / (3 * block * 3),
                k / (block * 3) % 3,
                k / 3 % block,
                k % 3,
            );
            dw[((first + o) * inputs + c) * TAPS + row * 3 + j] = sum;
        }
    }
    dw
}

/// Copies `images` (`[images, channels, plane]`) into `planes` as `[channels, images, plane]`,
/// so that a channel's planes of a pass lie one after the other. Read in place, the same
/// channel of successive images lies a multiple of 4 KiB apart, and the planes of a pass
/// competed for the same few L1 cache sets.
fn by_channel(images: &[f32], channels: usize, plane: usize, planes: &mut Vec<f32>) {
    let count = images.len() / (channels * plane);
    planes.resize(images.len(), 0.0);
    for (b, image) in images.chunks_exact(channels * plane).enumerate() {
        for (channel, values) in image.chunks_exact(plane).enumerate() {
            planes[(channel * count + b) * plane..][..plane].copy_from_slice(values);
        }
    }
}

/// Values of a block's output-gradient planes per pass of `weight_grad_masked`: 32 KiB, inside
/// the 48 KiB L1 data cache of the AVX-512 Xeons measured. The block is `WIDE_BLOCK` channels,
/// 24 accumulators, so that each step's three input loads serve 24 FMAs instead of 12: with the
/// lanes' sums kept across passes, 2.8-3.2 ms per ResNet-20 layer against 3.2-3.4 for blocks of
/// `CHANNEL_BLOCK` (best of five, `docs/performance.md`). Reduced across lanes after every pass,
/// as before, blocks of 8 had measured slower (4.5-5.5 ms against 3.3-3.5).
const PASS_FLOATS: usize = 8192;

/// One register block of `weight_grad_masked`: for a block of output channels (`grads`, one
/// run of planes each) and kernel row `row`, `Σ_p grads[o][p] * x[p + offsets[j]]` over the
/// unmasked lanes, `j < 3`, over a run of whole planes, `masks` applying to each plane.
struct MaskedDots<'a> {
    x: &'a [f32],
    grads: &'a [f32],
    offsets: &'a [isize],
    masks: &'a [[u16; TAPS]],
    row: usize,
}

impl MaskedDots<'_> {
    /// Adds the products of `block` output channels onto their lanes' sums, `lanes`:
    /// `LANES` per output channel and tap, channel by channel.
    fn run(&self, block: usize, lanes: &mut [f32]) {
        let plane = self.masks.len() * LANES;
        assert!(
            matches!(block, 1..=CHANNEL_BLOCK | WIDE_BLOCK)
                && lanes.len() == block * 3 * LANES
                && self.offsets.len() == 3
                && self.row < 3
                && plane > 0
                && self.x.len().is_multiple_of(plane)
                && self.grads.len() == block * self.x.len()
                && crate::isa::active() >= crate::isa::Isa::Avx512,
            "masked dot products out of bounds"
        );
        #[cfg(target_arch = "x86_64")]
        // Safety: the assertion checked the level and that every output-gradient load lies in
        // `grads`; each unmasked lane of an input load reads inside its own plane of `x`, as
        // in `MaskedKernel::run`.
        unsafe {
            match block {
                1 => avx512::dot_products::<1>(self, lanes),
                2 => avx512::dot_products::<2>(self, lanes),
                3 => avx512::dot_products::<3>(self, lanes),
                CHANNEL_BLOCK => avx512::dot_products::<CHANNEL_BLOCK>(self, lanes),
                _ => avx512::dot_products::<WIDE_BLOCK>(self, lanes),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("`SameConv3x3::vectors_tile_planes` is false off x86-64");
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
    fn run(&self, block: usize, out: &mut [MaybeUninit<f32>]) {
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
    use std::mem::MaybeUninit;

    use super::{CHANNEL_BLOCK, LANES, MaskedDots, MaskedKernel, TAPS};
    use crate::same_conv3x3::add_products;

    /// Safety: the processor has AVX-512 F and `MaskedKernel::run`'s checks hold for `BLOCK`
    /// channels and `VECS` vectors. A block of more than `CHANNEL_BLOCK` channels reads its
    /// weights from two of `pack`'s blocks, one after the other.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn convolve<const BLOCK: usize, const VECS: usize>(
        kernel: &MaskedKernel,
        out: &mut [MaybeUninit<f32>],
    ) {
        let pack_block = BLOCK.min(CHANNEL_BLOCK);
        let pack_len = pack_block * kernel.inputs * TAPS;
        let mut sums = [[_mm512_setzero_ps(); VECS]; BLOCK];
        let image = kernel.image.as_ptr();
        let weights = kernel.weights.as_ptr();
        // Taps outside, input channels inside: each tap's masks and offset are loaded once.
        for (t, &offset) in kernel.offsets.iter().enumerate() {
            let masks: [u16; VECS] = std::array::from_fn(|v| kernel.masks[v][t]);
            let tap = image.wrapping_offset(kernel.start as isize + offset);
            for c in 0..kernel.inputs {
                let plane = tap.wrapping_add(c * kernel.plane);
                let xs: [__m512; VECS] = std::array::from_fn(|v| unsafe {
                    _mm512_maskz_loadu_ps(masks[v], plane.wrapping_add(v * LANES))
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
        let out = out.as_mut_ptr().cast::<f32>();
        for (o, sums) in sums.iter().enumerate() {
            for (v, sum) in sums.iter().enumerate() {
                unsafe {
                    _mm512_storeu_ps(out.add(o * kernel.plane + kernel.start + v * LANES), *sum)
                };
            }
        }
    }

    /// Safety: the processor has AVX-512 F and `MaskedDots::run`'s checks hold for `BLOCK`
    /// output channels.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot_products<const BLOCK: usize>(dots: &MaskedDots, lanes: &mut [f32]) {
        let lanes = lanes.as_mut_ptr();
        let mut sums: [[__m512; 3]; BLOCK] = std::array::from_fn(|o| {
            std::array::from_fn(|j| unsafe { _mm512_loadu_ps(lanes.add((o * 3 + j) * LANES)) })
        });
        let run = dots.x.len();
        let x = dots.x.as_ptr();
        let grads = dots.grads.as_ptr();
        for (k, masks) in (0..run / LANES).zip(dots.masks.iter().cycle()) {
            let at = k * LANES;
            let xs: [__m512; 3] = std::array::from_fn(|j| unsafe {
                _mm512_maskz_loadu_ps(
                    masks[dots.row * 3 + j],
                    x.wrapping_offset(at as isize + dots.offsets[j]),
                )
            });
            let grad = |o| unsafe { _mm512_loadu_ps(grads.add(o * run + at)) };
            add_products(&mut sums, xs, grad, |a, b, c| _mm512_fmadd_ps(a, b, c));
        }
        for (o, sums) in sums.iter().enumerate() {
            for (j, sum) in sums.iter().enumerate() {
                unsafe { _mm512_storeu_ps(lanes.add((o * 3 + j) * LANES), *sum) };
            }
        }
    }
}
