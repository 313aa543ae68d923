//! Kernels for burn's `flex` CPU backend where burn's own take several times PyTorch's time on
//! the layers the CIFAR models spend their time in: the convolution (forward and both gradients),
//! batch norm, the ReLUs after it and after residual sums, and max pooling. Each is a burn
//! backend extension with a hand-written autodiff backward, reached through a function that
//! takes burn's path on every other backend. The figures are in `docs/performance.md`.
//!
//! - [`conv`]: the convolution and its two gradients (im2col + gemm), with the direct AVX2 3x3
//!   kernels of `same_conv3x3` where the processor has them (AVX-512 ones too), and in
//!   evaluation batch norm (and the ReLU, and a residual add) inside the convolution's output
//!   pass (`conv::conv2d_normalized`) or input pass (`conv::normalized_conv2d`);
//! - [`batch_norm`]: batch norm's training pass (statistics, normalisation and backward in fused
//!   passes) and its inference pass, each with the ReLU that follows where there is one;
//! - [`pool`]: max pooling without burn's index tensor, separable, with AVX2 selects;
//! - [`residual`]: `relu(x + shortcut)`, the end of a post-activation residual block, and in
//!   training `relu(batch_norm(x) + shortcut)` in batch norm's own passes;
//! - [`isa`]: the instruction-set level they run, the processor's best unless `CNNZOO_ISA`
//!   lowers it.
//!
//! Tests against burn's own kernels are in `tests/`; `benches/layer_speed.rs` times them.
use std::mem::MaybeUninit;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::ops::{Backward, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, DispatchDevice};
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;

pub mod batch_norm;
pub mod conv;
pub mod isa;
pub mod pool;
pub mod residual;
mod same_conv3x3;

/// Whether tensors on `device` are flex tensors, with or without autodiff.
fn runs_on_flex(device: &Device) -> bool {
    fn is_flex(device: &DispatchDevice) -> bool {
        match device {
            DispatchDevice::Flex(_) => true,
            DispatchDevice::Autodiff(device) => is_flex(device),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
    is_flex(device.as_dispatch())
}

/// `forward()` on the wrapped backend, recorded as the autodiff op `op` whose parents are
/// `tensors`: where a gradient is wanted, the first `K` parents are checkpointed and
/// `state(their checkpoints, output)` is what the backward pass gets. The one body of every
/// kernel's autodiff forward.
fn autodiff_op<B, C, O, const N: usize, const K: usize>(
    (op, tensors): (O, [&FloatTensor<Autodiff<B, C>>; N]),
    forward: impl FnOnce() -> FloatTensor<B>,
    state: impl FnOnce([NodeId; K], &FloatTensor<B>) -> O::State,
) -> FloatTensor<Autodiff<B, C>>
where
    B: Backend,
    C: CheckpointStrategy,
    O: Backward<B, N>,
{
    match op
        .prepare::<C>(tensors.map(|tensor| tensor.node()))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let checkpoints = std::array::from_fn(|parent| prep.checkpoint(tensors[parent]));
            let y = forward();
            let state = state(checkpoints, &y);
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward()),
    }
}

/// The wrapped backend's tensors of `tensors`, taken before `autodiff_op` consumes anything.
/// (The checkpointing strategy does not change the tensors' type.)
fn inner_of<B: Backend, const N: usize>(
    tensors: [&FloatTensor<Autodiff<B>>; N],
) -> [FloatTensor<B>; N] {
    tensors.map(|tensor| Autodiff::<B>::inner(tensor.clone()))
}

/// `dst.copy_from_slice(src)`, with the copy written out in place for the lengths of the CIFAR
/// models' rows (16 and 32 values), where a call to memcpy per row cost more than the copy: the
/// padded copies of the 3x3 kernels were 4.7% of ResNet-20's samples, nearly all of it in
/// memmove (`docs/performance.md`). Straight-line SSE moves, because LLVM turns a copy loop, or
/// a copy of a fixed-size array, back into a call to memcpy.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "lengths differ");
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_loadu_ps, _mm_storeu_ps};
        let (to, from) = (dst.as_mut_ptr(), src.as_ptr());
        macro_rules! moves {
            ($($offset:literal)*) => {
                // Safety: every offset + 4 is at most the length both slices have (asserted).
                unsafe { $(_mm_storeu_ps(to.add($offset), _mm_loadu_ps(from.add($offset)));)* }
            };
        }
        match src.len() {
            16 => return moves!(0 4 8 12),
            32 => return moves!(0 4 8 12 16 20 24 28),
            _ => {}
        }
    }
    dst.copy_from_slice(src);
}

/// The values of a contiguous f32 tensor.
fn f32s(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("the kernels check for f32 and make their inputs contiguous before reading them")
}

/// A new vector of `len` values, written in chunks of `chunk_len` in parallel: `write` gets
/// each chunk, not yet written, with the matching item of `inputs` and its thread's `init`
/// state, and must write every value of it (`zeroed` first where it only adds or writes some).
/// Why not `vec![0.0; len]` and `par_chunks_mut`: that zeroes the whole output first on the
/// calling thread alone, while the other threads wait, a memset that was 4% of GoogleNet's step;
/// and the 3x3 kernels, which write every value, need no zeros at all (zeroing their chunks was
/// 2% of ResNet-20's step).
fn par_write<I, S>(
    (len, chunk_len): (usize, usize),
    inputs: I,
    init: impl Fn() -> S + Send + Sync,
    write: impl Fn(&mut S, &mut [MaybeUninit<f32>], I::Item) + Send + Sync,
) -> Vec<f32>
where
    I: IndexedParallelIterator,
{
    assert_eq!(
        inputs.len(),
        len.div_ceil(chunk_len),
        "one input per output chunk"
    );
    let mut values = Vec::with_capacity(len);
    values.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk_len)
        .zip(inputs)
        .for_each_init(init, |state, (chunk, input)| write(state, chunk, input));
    // Safety: the zip above visited every chunk (one input per chunk, asserted), and `write`
    // wrote every value of each.
    unsafe { values.set_len(len) };
    values
}

/// `chunk` as initialised values, once its writer has written every one of them.
///
/// Safety: every value of `chunk` has been written.
unsafe fn written(chunk: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // Safety: `MaybeUninit<f32>` has `f32`'s layout, and the caller wrote every value.
    unsafe { &mut *(chunk as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// `chunk` filled with zeros, as initialised values: for a `par_write` writer that adds into
/// its chunk or leaves some of it untouched. Each thread zeroes its own chunk just before
/// writing it, while it is in its cache.
fn zeroed(chunk: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    chunk.fill(MaybeUninit::new(0.0));
    // Safety: every value of `chunk` was just written.
    unsafe { written(chunk) }
}

/// `values` as slots for a kernel that writes initialised `f32`s into them through a pointer,
/// as it writes `par_write`'s chunks: one kernel signature for both.
fn as_slots(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // Safety: `MaybeUninit<f32>` has the layout of `f32`, and the kernels that take the slots
    // only ever store initialised values into them, so `values` stays initialised.
    unsafe { &mut *(values as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// `a + b`, then the ReLU if `relu`: the end of a residual block per value, the one expression of
/// `residual`'s pass and of a convolution's fused output pass (`conv::conv2d_normalized`), so that
/// both give the same bits.
#[inline(always)]
fn residual_value(a: f32, b: f32, relu: bool) -> f32 {
    let z = a + b;
    if relu { relu_passing(z, z) } else { z }
}

/// As burn's ReLU and its gradient: `value` where the pre-activation `z` is above zero or NaN,
/// else zero. A bit mask rather than `if`, which LLVM compiles to a branch per vector lane.
fn relu_passing(z: f32, value: f32) -> f32 {
    let passes = (z > 0.0) | z.is_nan();
    f32::from_bits(value.to_bits() & 0u32.wrapping_sub(passes as u32))
}

/// `out[i] = map(a[i], b[i])` in parallel chunks of `chunk_len` values, where chunk `k`'s `map`
/// is `map_of(k)`: a per-chunk lookup (batch norm's per-channel coefficients) stays out of the
/// inner loop, which then vectorises. The output is written without first being zeroed: at
/// ResNet-20's first stage the zeroing took a third of batch norm's pass.
fn zip_map_chunks<F: Fn(f32, f32) -> f32>(
    operands: (&[f32], &[f32]),
    chunk_len: usize,
    map_of: impl Fn(usize) -> F + Sync,
) -> Vec<f32> {
    zip_map_reduce_chunks(operands, chunk_len, map_of, |_, _, _| ()).0
}

/// As `zip_map_chunks`, and `reduce(k, out, a)` of each chunk `k` just after it is written,
/// while the chunk is still in cache: one pass over memory instead of two.
fn zip_map_reduce_chunks<F: Fn(f32, f32) -> f32, R: Send>(
    (a, b): (&[f32], &[f32]),
    chunk_len: usize,
    map_of: impl Fn(usize) -> F + Sync,
    reduce: impl Fn(usize, &[f32], &[f32]) -> R + Sync,
) -> (Vec<f32>, Vec<R>) {
    assert_eq!(a.len(), b.len(), "operands of one length");
    let len = a.len();
    let mut out = Vec::with_capacity(len);
    let reduced = out.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk_len)
        .zip(a.par_chunks(chunk_len).zip(b.par_chunks(chunk_len)))
        .enumerate()
        .map(|(chunk, (out, (a, b)))| {
            let map = map_of(chunk);
            for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
                o.write(map(*x, *y));
            }
            // Safety: every value of `out` was just written.
            let out = unsafe { &*(out as *const [MaybeUninit<f32>] as *const [f32]) };
            reduce(chunk, out, a)
        })
        .collect();
    // Safety: the three slices have `len` values (asserted above) and are cut into the same
    // chunks, so every one of the `len` values was written above.
    unsafe { out.set_len(len) };
    (out, reduced)
}

/// `total + part`, element by element: how per-thread partial weight gradients are summed.
fn summed(mut total: Vec<f32>, part: Vec<f32>) -> Vec<f32> {
    total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
    total
}

fn flex_tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Runs a kernel of two operands on them made contiguous, and shapes its output as `shape`.
fn run_kernel<const D: usize>(
    [a, b]: [FlexTensor; 2],
    shape: [usize; D],
    kernel: impl FnOnce(&[f32], &[f32]) -> Vec<f32>,
) -> FlexTensor {
    let (a, b) = (a.to_contiguous(), b.to_contiguous());
    flex_tensor(kernel(f32s(&a), f32s(&b)), shape)
}

/// The spatial sizes of a windowed op (convolution, pooling) over `[N, C, H, W]`: the input's and
/// the output's, and the window's taps.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Window2d {
    height: usize,
    width: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    /// Padding before the first row and column; the padding after them only shows in the
    /// output size.
    padding: [usize; 2],
    dilation: [usize; 2],
    out_height: usize,
    out_width: usize,
}

impl Window2d {
    /// The window over an input of `[height, width]` with `padding` before and after each axis;
    /// `None` where not even one window fits.
    fn new(
        [height, width]: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
        dilation: [usize; 2],
    ) -> Option<Self> {
        // PyTorch's floor-mode size: (size + padding - dilation * (kernel - 1) - 1) / stride + 1.
        let out_size = |axis: usize, size: usize| {
            let (begin, end) = padding[axis];
            let span = dilation[axis] * (kernel[axis] - 1) + 1;
            (size + begin + end)
                .checked_sub(span)
                .map(|room| room / stride[axis] + 1)
        };
        Some(Self {
            height,
            width,
            kernel,
            stride,
            padding: padding.map(|(begin, _)| begin),
            dilation,
            out_height: out_size(0, height)?,
            out_width: out_size(1, width)?,
        })
    }

    /// Axis 0 (rows) or 1 (columns) of the window.
    fn axis(&self, axis: usize) -> Axis {
        let sizes = ([self.height, self.width], [self.out_height, self.out_width]);
        Axis::of(axis, sizes, [self.stride, self.padding, self.dilation])
    }
}

/// One spatial axis of a windowed op (convolution, pooling): input positions, output positions,
/// and the window's stride, padding before the first position, and dilation.
#[derive(Clone, Copy, Debug)]
struct Axis {
    size: usize,
    outputs: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
}

impl Axis {
    /// Axis `axis` (0 for rows, 1 for columns) of a window from an input of `size` to `outputs`
    /// positions, with the window's `stride`, `padding` and `dilation` per axis.
    fn of(
        axis: usize,
        (size, outputs): ([usize; 2], [usize; 2]),
        [stride, padding, dilation]: [[usize; 2]; 3],
    ) -> Self {
        Self {
            size: size[axis],
            outputs: outputs[axis],
            stride: stride[axis],
            padding: padding[axis],
            dilation: dilation[axis],
        }
    }

    /// The input position output `o` reads through kernel tap `tap`, if inside the input.
    fn input_position(&self, o: usize, tap: usize) -> Option<usize> {
        (o * self.stride + tap * self.dilation)
            .checked_sub(self.padding)
            .filter(|&position| position < self.size)
    }

    /// For kernel tap `tap`: the outputs `[lo, hi)` whose input position lies inside the input,
    /// and the input position of output `lo`.
    fn valid_outputs(&self, tap: usize) -> (usize, usize, usize) {
        let offset = (tap * self.dilation) as isize - self.padding as isize;
        let stride = self.stride as isize;
        // Output o reads input position o * stride + offset, which must lie in [0, size).
        let lo = if offset >= 0 {
            0
        } else {
            (-offset + stride - 1) / stride
        };
        let hi =
            ((self.size as isize - offset + stride - 1) / stride).clamp(0, self.outputs as isize);
        let lo = lo.min(hi);
        let first = if lo < hi { lo * stride + offset } else { 0 };
        (lo as usize, hi as usize, first as usize)
    }
}
