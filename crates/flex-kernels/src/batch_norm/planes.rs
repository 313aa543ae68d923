//! The per-plane arithmetic of batch norm's passes: an activation as planes, sums over them
//! in f32 lanes added up in f64, and the batch statistics.
use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use crate::zip_map_chunks;

/// An `[N, C, H, W]` activation seen as `N * C` contiguous planes of `H * W` values.
#[derive(Clone, Copy, Debug)]
pub(super) struct Planes {
    pub(super) batch: usize,
    pub(super) channels: usize,
    height: usize,
    width: usize,
}

impl Planes {
    pub(super) fn of(x: &FlexTensor) -> Self {
        let shape = x.layout().shape();
        Self {
            batch: shape[0],
            channels: shape[1],
            height: shape[2],
            width: shape[3],
        }
    }

    pub(super) fn shape(&self) -> [usize; 4] {
        [self.batch, self.channels, self.height, self.width]
    }

    pub(super) fn plane(&self) -> usize {
        self.height * self.width
    }

    /// Values per channel.
    pub(super) fn count(&self) -> f64 {
        (self.batch * self.plane()) as f64
    }

    /// `sums(row, a, b)` of every plane of `a` and `b` (`row` in `[N, C]` order) in parallel,
    /// added up per channel in image order.
    pub(super) fn plane_sums<const N: usize>(
        &self,
        a: &[f32],
        b: &[f32],
        sums: impl Fn(usize, &[f32], &[f32]) -> [f64; N] + Sync,
    ) -> Vec<[f64; N]> {
        let plane = self.plane().max(1);
        let planes = a
            .par_chunks(plane)
            .zip(b.par_chunks(plane))
            .enumerate()
            .map(|(row, (a, b))| sums(row, a, b))
            .collect();
        self.by_channel(planes)
    }

    /// Values of each plane (in `[N, C]` order) added up per channel, in image order.
    pub(super) fn by_channel<const N: usize>(&self, planes: Vec<[f64; N]>) -> Vec<[f64; N]> {
        let mut totals = vec![[0.0; N]; self.channels];
        for (row, sums) in planes.into_iter().enumerate() {
            let total = &mut totals[row % self.channels];
            total.iter_mut().zip(sums).for_each(|(t, s)| *t += s);
        }
        totals
    }

    /// `out = f(k, a, b)` for every pair of values, planes in parallel, with
    /// `k = coefficients(channel)` looked up once per plane (see `zip_map_chunks`).
    pub(super) fn per_channel_map<K: Copy>(
        &self,
        a: &[f32],
        b: &[f32],
        coefficients: impl Fn(usize) -> K + Sync,
        f: impl Fn(K, f32, f32) -> f32 + Sync,
    ) -> Vec<f32> {
        let len = self.batch * self.channels * self.plane();
        assert!(
            a.len() == len && b.len() == len,
            "batch norm operands of {} and {} values for {:?}",
            a.len(),
            b.len(),
            self.shape()
        );
        let f = &f;
        zip_map_chunks((a, b), self.plane(), |row| {
            let k = coefficients(row % self.channels);
            move |x, y| f(k, x, y)
        })
    }

    /// Means, then biased variances, from one read of `x`: each plane's mean and its squared
    /// deviations around it (a second loop over the plane while it is in cache), combined per
    /// channel in f64 as Chan et al.'s parallel variance, `M2 = Σ M2_p + m Σ (mean_p - mean)²`
    /// over planes of `m` values. A third of batch norm's forward reads, and as exact as two
    /// passes over the channel: no sum of squares of uncentred values.
    pub(super) fn statistics(&self, x: &[f32]) -> Vec<f32> {
        let m = self.plane() as f64;
        let moments: Vec<[f64; 2]> = x
            .par_chunks(self.plane().max(1))
            .map(|values| {
                let [sum] = lane_sums(values, values, |value, _| [value]);
                let mean = sum / m;
                let centre = mean as f32;
                let [squares] = lane_sums(values, values, |value, _| {
                    let centred = value - centre;
                    [centred * centred]
                });
                // Σ (v - c)² = Σ (v - mean)² + m (mean - c)².
                [mean, squares - m * (mean - f64::from(centre)).powi(2)]
            })
            .collect();
        let means: Vec<f64> = self
            .by_channel(moments.iter().map(|&[mean, _]| [mean]).collect())
            .into_iter()
            .map(|[sum]| sum / self.batch as f64)
            .collect();
        let deviations = moments
            .iter()
            .enumerate()
            .map(|(row, &[mean, m2])| [m2 + m * (mean - means[row % self.channels]).powi(2)])
            .collect();
        let variances = self.by_channel(deviations);
        let count = self.count();
        means
            .iter()
            .map(|&mean| mean as f32)
            .chain(variances.into_iter().map(|[m2]| (m2 / count) as f32))
            .collect()
    }
}

/// `Σ f(a_i, b_i)` for `K` functions at once, in eight f32 lanes (so that the loop vectorises)
/// added up in f64.
pub(super) fn lane_sums<const K: usize>(
    a: &[f32],
    b: &[f32],
    f: impl Fn(f32, f32) -> [f32; K],
) -> [f64; K] {
    const LANES: usize = 8;
    let mut lanes = [[0.0f32; LANES]; K];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut total = [0.0f64; K];
    for (x, y) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        total
            .iter_mut()
            .zip(f(*x, *y))
            .for_each(|(t, v)| *t += v as f64);
    }
    for (xs, ys) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            let values = f(xs[lane], ys[lane]);
            for k in 0..K {
                lanes[k][lane] += values[k];
            }
        }
    }
    for k in 0..K {
        total[k] += lanes[k].iter().map(|&v| v as f64).sum::<f64>();
    }
    total
}
