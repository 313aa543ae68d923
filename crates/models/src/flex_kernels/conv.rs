//! Convolution on burn's `flex` CPU backend as image-at-a-time im2col and one gemm, for the
//! forward pass and both gradients.
//!
//! Why: at ResNet-20's 16-channel stage (batch 128, 2 threads) flex's forward takes 2.9x
//! PyTorch's time, and burn-backend computes the weight gradient as another convolution whose
//! kernel is the whole 32x32 output gradient (3.6x PyTorch's time). Here each image's patches are
//! laid out once as a `[C*kh*kw, OH*OW]` matrix, small enough to stay in cache, and each of the
//! three products is a single gemm from the `gemm` crate flex itself uses:
//! `Y = W * cols`, `dW += dY * colsᵀ` and `dcols = Wᵀ * dY` (scattered back by col2im).
//! Groups other than 1, dtypes other than f32 and every other backend keep burn's own kernels.
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

use super::{f32s, flex_tensor, runs_on_flex};

/// Output rows per im2col tile are chosen so that a tile holds about this many floats (1 MiB):
/// a whole CIFAR image at every stage, a band of rows of a large ImageNet image.
const TILE_FLOATS: usize = 1 << 18;

/// `conv2d` as burn's `module::conv2d` computes it, through the gemm kernels where the input
/// lives on the flex backend.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    if !runs_on_flex(&x.device()) {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    let y = Tensor::from_dispatch(<Dispatch as GemmConvBackend>::gemm_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        options,
    ));
    match bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            y + bias.reshape([1, channels, 1, 1])
        }
        None => y,
    }
}

/// The three convolution products as a burn backend extension. Backends without their own kernels
/// keep burn's (the default bodies); `Autodiff` records `gemm_conv2d` with a backward pass that
/// calls the two gradient kernels of the backend it wraps.
#[backend_extension(Flex, Autodiff)]
pub trait GemmConvBackend: Backend {
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, options)
    }

    fn gemm_conv2d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, output_grad, options)
    }

    fn gemm_conv2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, output_grad, options)
    }
}

impl GemmConvBackend for Flex {
    fn gemm_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        let Some(geometry) = Geometry::of(&x, &weight, &options) else {
            return Self::conv2d(x, weight, None, options);
        };
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let y = geometry.forward(f32s(&x), f32s(&weight));
        flex_tensor(y, geometry.output_shape())
    }

    fn gemm_conv2d_x_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let Some(geometry) = Geometry::of(&x, &weight, &options) else {
            return Self::conv2d_x_backward(x, weight, output_grad, options);
        };
        let (weight, output_grad) = (weight.to_contiguous(), output_grad.to_contiguous());
        let dx = geometry.input_grad(f32s(&weight), f32s(&output_grad));
        flex_tensor(dx, geometry.input_shape())
    }

    fn gemm_conv2d_weight_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let Some(geometry) = Geometry::of(&x, &weight, &options) else {
            return Self::conv2d_weight_backward(x, weight, output_grad, options);
        };
        let (x, output_grad) = (x.to_contiguous(), output_grad.to_contiguous());
        let dw = geometry.weight_grad(f32s(&x), f32s(&output_grad));
        flex_tensor(dw, geometry.weight_shape())
    }
}

/// The backward pass of `gemm_conv2d`, the way burn-autodiff writes its own `conv2d`.
#[derive(Debug)]
struct GemmConv2dBackward;

impl<B: GemmConvBackend> Backward<B, 2> for GemmConv2dBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);

        if let Some(node) = node_x {
            let dx =
                B::gemm_conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone());
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = B::gemm_conv2d_weight_backward(x, weight, grad, options);
            grads.register::<B>(node.id, dw);
        }
    }
}

impl<B: GemmConvBackend, C: CheckpointStrategy> GemmConvBackend for Autodiff<B, C> {
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match GemmConv2dBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let y = B::gemm_conv2d(Self::inner(x), Self::inner(weight), options.clone());
                prep.finish((x_state, weight_state, options), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::gemm_conv2d(Self::inner(x), Self::inner(weight), options))
            }
        }
    }
}

/// One convolution's sizes, for f32 NCHW tensors and a single group.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Geometry {
    batch: usize,
    channels_in: usize,
    height: usize,
    width: usize,
    channels_out: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    /// Padding before the first row and column; the padding after them only shows in the
    /// output size.
    padding: [usize; 2],
    dilation: [usize; 2],
    out_height: usize,
    out_width: usize,
}

impl Geometry {
    /// `None` where the gemm kernels do not apply and burn's own must run.
    fn of(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Option<Self> {
        if options.groups != 1 || x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
            return None;
        }
        let [batch, channels_in, height, width] = dims4(x)?;
        let [channels_out, weight_channels, kh, kw] = dims4(weight)?;
        if weight_channels != channels_in {
            return None;
        }
        let out_size = |axis: usize, size: usize, kernel: usize| {
            let (begin, end) = options.padding[axis];
            let span = options.dilation[axis] * (kernel - 1) + 1;
            (size + begin + end)
                .checked_sub(span)
                .map(|room| room / options.stride[axis] + 1)
        };
        Some(Self {
            batch,
            channels_in,
            height,
            width,
            channels_out,
            kernel: [kh, kw],
            stride: options.stride,
            padding: options.padding_begin(),
            dilation: options.dilation,
            out_height: out_size(0, height, kh)?,
            out_width: out_size(1, width, kw)?,
        })
    }

    fn input_shape(&self) -> [usize; 4] {
        [self.batch, self.channels_in, self.height, self.width]
    }

    fn weight_shape(&self) -> [usize; 4] {
        let [kh, kw] = self.kernel;
        [self.channels_out, self.channels_in, kh, kw]
    }

    fn output_shape(&self) -> [usize; 4] {
        [
            self.batch,
            self.channels_out,
            self.out_height,
            self.out_width,
        ]
    }

    /// Rows of the patch matrix: one per input channel and kernel tap.
    fn patch_len(&self) -> usize {
        self.channels_in * self.kernel[0] * self.kernel[1]
    }

    fn image_len(&self) -> usize {
        self.channels_in * self.height * self.width
    }

    fn out_image_len(&self) -> usize {
        self.channels_out * self.out_height * self.out_width
    }

    /// The bands of output rows, each small enough that its patch matrix stays in cache.
    fn row_bands(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let rows_per_band = (TILE_FLOATS / (self.patch_len() * self.out_width)).max(1);
        let out_height = self.out_height;
        (0..out_height)
            .step_by(rows_per_band)
            .map(move |start| (start, (start + rows_per_band).min(out_height)))
    }

    /// Room for one band's patch matrix; none for a pointwise convolution, which reads the image.
    fn band_buffer(&self) -> Vec<f32> {
        if self.is_pointwise() {
            return Vec::new();
        }
        let (start, end) = self.row_bands().next().unwrap_or((0, 0));
        vec![0.0; self.patch_len() * (end - start) * self.out_width]
    }

    /// A 1x1 kernel at stride 1 without padding (GoogleNet's and DenseNet's bottlenecks): the
    /// image itself, `[C, H*W]`, is the patch matrix.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && (self.out_height, self.out_width) == (self.height, self.width)
            && self.padding == [0, 0]
    }

    /// The patch matrix of output rows `band` of `image`, `[C*kh*kw, rows * OW]`: a view of the
    /// image for a pointwise convolution, else written into `cols` by im2col.
    fn patches<'a>(
        &self,
        image: &'a [f32],
        band: (usize, usize),
        cols: &'a mut [f32],
    ) -> Matrix<'a> {
        if self.is_pointwise() {
            let plane = self.height * self.width;
            return Matrix::row_major(&image[band.0 * self.width..], plane);
        }
        self.im2col(image, band, cols);
        Matrix::row_major(cols, (band.1 - band.0) * self.out_width)
    }

    /// For kernel tap `(i, j)` and output row `oy`: the input row it reads, if inside the image.
    fn input_row(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.stride[0] + i * self.dilation[0])
            .checked_sub(self.padding[0])
            .filter(|&row| row < self.height)
    }

    /// For kernel column `j`: the output columns `[lo, hi)` whose input column lies inside the
    /// image, and the input column of output column `lo`.
    fn valid_columns(&self, j: usize) -> (usize, usize, usize) {
        let offset = (j * self.dilation[1]) as isize - self.padding[1] as isize;
        let stride = self.stride[1] as isize;
        // Output column ox reads input column ox * stride + offset, which must lie in [0, width).
        let lo = if offset >= 0 {
            0
        } else {
            (-offset + stride - 1) / stride
        };
        let hi = ((self.width as isize - offset + stride - 1) / stride)
            .clamp(0, self.out_width as isize);
        let lo = lo.min(hi);
        let first = if lo < hi { lo * stride + offset } else { 0 };
        (lo as usize, hi as usize, first as usize)
    }

    /// Writes the patches of output rows `[start, end)` of one image into `cols`, laid out
    /// `[C*kh*kw, (end - start) * OW]`, zeros where a tap falls into the padding.
    fn im2col(&self, image: &[f32], (start, end): (usize, usize), cols: &mut [f32]) {
        let ow = self.out_width;
        let row_len = (end - start) * ow;
        let [kh, kw] = self.kernel;
        let plane = self.height * self.width;
        for (c, channel) in image.chunks_exact(plane).enumerate() {
            for i in 0..kh {
                for j in 0..kw {
                    let row = (c * kh + i) * kw + j;
                    let dst = &mut cols[row * row_len..(row + 1) * row_len];
                    let (lo, hi, first) = self.valid_columns(j);
                    for (oy, out) in (start..end).zip(dst.chunks_exact_mut(ow)) {
                        let Some(iy) = self.input_row(oy, i) else {
                            out.fill(0.0);
                            continue;
                        };
                        let src = &channel[iy * self.width..(iy + 1) * self.width];
                        out[..lo].fill(0.0);
                        out[hi..].fill(0.0);
                        if self.stride[1] == 1 {
                            out[lo..hi].copy_from_slice(&src[first..first + (hi - lo)]);
                        } else {
                            let taps = src[first..].iter().step_by(self.stride[1]);
                            for (value, tap) in out[lo..hi].iter_mut().zip(taps) {
                                *value = *tap;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `im2col`: adds each patch entry back onto the input pixel it came from.
    fn col2im_add(&self, cols: &[f32], (start, end): (usize, usize), image: &mut [f32]) {
        let ow = self.out_width;
        let row_len = (end - start) * ow;
        let [kh, kw] = self.kernel;
        let plane = self.height * self.width;
        for (c, channel) in image.chunks_exact_mut(plane).enumerate() {
            for i in 0..kh {
                for j in 0..kw {
                    let row = (c * kh + i) * kw + j;
                    let src_rows = &cols[row * row_len..(row + 1) * row_len];
                    let (lo, hi, first) = self.valid_columns(j);
                    for (oy, src) in (start..end).zip(src_rows.chunks_exact(ow)) {
                        let Some(iy) = self.input_row(oy, i) else {
                            continue;
                        };
                        let dst = &mut channel[iy * self.width..(iy + 1) * self.width];
                        // Stride 1 (most layers) as contiguous slices, which vectorise.
                        if self.stride[1] == 1 {
                            let pixels = &mut dst[first..first + (hi - lo)];
                            for (pixel, value) in pixels.iter_mut().zip(&src[lo..hi]) {
                                *pixel += *value;
                            }
                        } else {
                            let taps = dst[first..].iter_mut().step_by(self.stride[1]);
                            for (pixel, value) in taps.zip(&src[lo..hi]) {
                                *pixel += *value;
                            }
                        }
                    }
                }
            }
        }
    }

    /// `y[b] = W * cols(x[b])`, images in parallel.
    fn forward(&self, x: &[f32], weight: &[f32]) -> Vec<f32> {
        let k = self.patch_len();
        let out_plane = self.out_height * self.out_width;
        let mut y = vec![0.0; self.batch * self.out_image_len()];
        y.par_chunks_mut(self.out_image_len())
            .zip(x.par_chunks(self.image_len()))
            .for_each_init(
                || self.band_buffer(),
                |cols, (y_image, image)| {
                    for band in self.row_bands() {
                        let n = (band.1 - band.0) * self.out_width;
                        gemm(
                            [self.channels_out, n, k],
                            (&mut y_image[band.0 * self.out_width..], out_plane),
                            Matrix::row_major(weight, k),
                            self.patches(image, band, cols),
                            false,
                        );
                    }
                },
            );
        y
    }

    /// `dW = Σ_b dY[b] * cols(x[b])ᵀ`, summed per thread and then across threads.
    fn weight_grad(&self, x: &[f32], output_grad: &[f32]) -> Vec<f32> {
        let k = self.patch_len();
        let out_plane = self.out_height * self.out_width;
        let images_per_task = self.batch.div_ceil(rayon::current_num_threads()).max(1);
        let partial_sums: Vec<Vec<f32>> = x
            .par_chunks(self.image_len() * images_per_task)
            .zip(output_grad.par_chunks(self.out_image_len() * images_per_task))
            .map(|(images, grads)| {
                let mut dw = vec![0.0; self.channels_out * k];
                let mut cols = self.band_buffer();
                let pairs = images
                    .chunks_exact(self.image_len())
                    .zip(grads.chunks_exact(self.out_image_len()));
                for (image, grad) in pairs {
                    for band in self.row_bands() {
                        let n = (band.1 - band.0) * self.out_width;
                        gemm(
                            [self.channels_out, k, n],
                            (&mut dw, k),
                            Matrix::row_major(&grad[band.0 * self.out_width..], out_plane),
                            self.patches(image, band, &mut cols).transposed(),
                            true,
                        );
                    }
                }
                dw
            })
            .collect();
        partial_sums
            .into_iter()
            .reduce(|mut total, part| {
                total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
                total
            })
            .unwrap_or_else(|| vec![0.0; self.channels_out * k])
    }

    /// `dx[b] = col2im(Wᵀ * dY[b])`, images in parallel; a pointwise convolution writes
    /// `Wᵀ * dY[b]` straight into `dx[b]`.
    fn input_grad(&self, weight: &[f32], output_grad: &[f32]) -> Vec<f32> {
        let k = self.patch_len();
        let out_plane = self.out_height * self.out_width;
        let mut dx = vec![0.0; self.batch * self.image_len()];
        dx.par_chunks_mut(self.image_len())
            .zip(output_grad.par_chunks(self.out_image_len()))
            .for_each_init(
                || self.band_buffer(),
                |cols, (dx_image, grad)| {
                    for band in self.row_bands() {
                        let n = (band.1 - band.0) * self.out_width;
                        let grad = Matrix::row_major(&grad[band.0 * self.out_width..], out_plane);
                        let weight_t = Matrix::row_major(weight, k).transposed();
                        let dims = [k, n, self.channels_out];
                        if self.is_pointwise() {
                            let plane = self.height * self.width;
                            let dst = &mut dx_image[band.0 * self.width..];
                            gemm(dims, (dst, plane), weight_t, grad, false);
                        } else {
                            gemm(dims, (cols, n), weight_t, grad, false);
                            self.col2im_add(cols, band, dx_image);
                        }
                    }
                },
            );
        dx
    }
}

fn dims4(tensor: &FlexTensor) -> Option<[usize; 4]> {
    let shape = tensor.layout().shape();
    (shape.num_dims() == 4).then(|| [shape[0], shape[1], shape[2], shape[3]])
}

/// A borrowed matrix operand of `gemm`: its elements and the distance between rows and between
/// columns.
#[derive(Clone, Copy)]
struct Matrix<'a> {
    values: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// Rows of `row_len` elements one after the other.
    fn row_major(values: &'a [f32], row_len: usize) -> Self {
        Self {
            values,
            row_stride: row_len,
            col_stride: 1,
        }
    }

    /// The same elements read as the transpose.
    fn transposed(self) -> Self {
        Self {
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether every element of a `rows` x `cols` matrix at these strides lies in `values`.
    fn holds(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.values.len()
    }
}

/// `dst[m, n] = lhs[m, k] * rhs[k, n]`, or `+=` with `accumulate`. `dst` is row-major with the
/// given row stride. Single-threaded: the callers run one image per rayon task.
fn gemm(
    [m, n, k]: [usize; 3],
    (dst, dst_row_stride): (&mut [f32], usize),
    lhs: Matrix,
    rhs: Matrix,
    accumulate: bool,
) {
    let dst_view = Matrix::row_major(dst, dst_row_stride);
    assert!(
        dst_view.holds(m, n) && lhs.holds(m, k) && rhs.holds(k, n),
        "gemm operands too short for [{m}, {n}, {k}]"
    );
    // Safety: the assertion above keeps every element the strides reach inside its slice, and
    // `dst` is borrowed mutably so it cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.values.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.values.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}
