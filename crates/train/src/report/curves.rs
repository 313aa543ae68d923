//! `curves.png`, redrawn in every run folder after each epoch: loss, top-1 and learning rate over
//! the epochs, the best epoch marked, and the reference accuracy of the model where there is one.
use std::path::PathBuf;

use anyhow::Result;
use cnnzoo_cifar::CifarKind;

use super::canvas::{Align, Canvas, FRAME, GRID, INK, MUTED, Rgb};
use super::reference_top1;
use crate::atomic;
use crate::config::{OptimizerConfig, ScheduleKind, TrainConfig};
use crate::data::DataSource;
use crate::grad_clip::GradClip;
use crate::run_dir::{RunDir, RunFile};
use crate::summary::{EpochRow, best_row};

/// Width and height of `curves.png`.
pub const CURVES_SIZE: (u32, u32) = (1200, 900);

const TRAIN: Rgb = Rgb(31, 119, 180);
const VAL: Rgb = Rgb(230, 110, 0);
const REFERENCE: Rgb = Rgb(44, 160, 44);
const BEST: Rgb = Rgb(214, 39, 40);
const LR: Rgb = Rgb(128, 80, 180);

/// `curves.png` of one run folder.
pub struct Curves {
    path: PathBuf,
    model: String,
    /// The data set as the title names it.
    dataset: &'static str,
    subtitle: String,
    epochs: usize,
    reference_val: Option<f64>,
}

impl Curves {
    pub fn for_run(dir: &RunDir, config: &TrainConfig) -> Self {
        Self {
            path: dir.file(RunFile::Curves),
            model: config.model.clone(),
            dataset: config.data.title(),
            subtitle: describe(config),
            epochs: config.epochs,
            // The tutorial's figures are CIFAR-10's: no line to compare a CIFAR-100 run with.
            reference_val: reference_top1(&config.model)
                .filter(|_| config.data.source(0) == DataSource::Cifar(CifarKind::Cifar10))
                .map(|reference| reference.val),
        }
    }

    /// Redraws the file after an epoch. A failure is reported and training goes on: the curves
    /// are a view of summary.csv, never worth losing a run for.
    pub fn redraw(&self, rows: &[EpochRow]) {
        if let Err(e) = self
            .draw(rows)
            .and_then(|png| atomic::write_bytes(&self.path, &png))
        {
            eprintln!("warning: could not draw {}: {e:#}", self.path.display());
        }
    }

    /// The picture as PNG bytes.
    pub fn draw(&self, rows: &[EpochRow]) -> Result<Vec<u8>> {
        let mut c = Canvas::new(CURVES_SIZE)?;
        let best = best_row(rows);
        let last = rows.last().map_or(0, |r| r.epoch);
        let mut title = format!(
            "{} on {}: epoch {last} of {}",
            self.model, self.dataset, self.epochs
        );
        if let Some(b) = best {
            title.push_str(&match b.val_top1 {
                Some(top1) => format!("  ·  best validation top-1 {top1:.2}% at epoch {}", b.epoch),
                None => format!(
                    "  ·  no validation: the last epoch is kept (train top-1 {:.2}%)",
                    b.train_top1
                ),
            });
        }
        c.text(&title, 600.0, 24.0, 22.0, INK, Align::Center);
        let subtitle = c.fit(&self.subtitle, 13.0, 1160.0);
        c.text(&subtitle, 600.0, 52.0, 13.0, MUTED, Align::Center);

        let x_axis = Axis::epochs(self.epochs.max(last));
        let epochs: Vec<f64> = rows.iter().map(|r| r.epoch as f64).collect();
        let markers = rows.len() <= 60;
        let best_x = best.map(|b| b.epoch as f64);
        let train_loss: Vec<f64> = rows.iter().map(|r| r.train_loss).collect();
        let val_loss: Vec<f64> = rows
            .iter()
            .map(|r| r.val_loss.unwrap_or(f64::NAN))
            .collect();
        let train_top1: Vec<f64> = rows.iter().map(|r| r.train_top1).collect();
        let val_top1: Vec<f64> = rows
            .iter()
            .map(|r| r.val_top1.unwrap_or(f64::NAN))
            .collect();
        let lrs: Vec<f64> = rows.iter().map(|r| r.lr).collect();

        // One legend for the three panels, above them, where it hides no data.
        let mut legend = vec![("train", TRAIN, false)];
        if val_top1.iter().any(|v| v.is_finite()) {
            legend.push(("validation", VAL, false));
        }
        let reference_label = self
            .reference_val
            .map(|r| format!("reference validation top-1 {r:.2}% (UvA DL tutorial 5)"));
        if let Some(label) = &reference_label {
            legend.push((label, REFERENCE, true));
        }
        if best.is_some() {
            legend.push(("best epoch", BEST, true));
        }
        legend.push(("learning rate", LR, false));
        c.legend_row(&legend, 600.0, 80.0);

        let loss_max = finite_max(train_loss.iter().chain(&val_loss)).unwrap_or(1.0);
        let loss = Panel {
            left: 80.0,
            top: 128.0,
            width: 500.0,
            height: 385.0,
            x: x_axis.clone(),
            y: Axis::linear(0.0, loss_max * 1.05, 6),
        };
        loss.frame(&mut c, "Loss (cross-entropy)", "loss", "epoch");
        if let Some(x) = best_x {
            loss.vertical(&mut c, x, BEST);
        }
        loss.series(&mut c, &epochs, &train_loss, TRAIN, markers);
        loss.series(&mut c, &epochs, &val_loss, VAL, markers);

        let values = train_top1
            .iter()
            .chain(&val_top1)
            .chain(self.reference_val.iter());
        let (lo, hi) = match (finite_min(values.clone()), finite_max(values)) {
            (Some(lo), Some(hi)) => ((lo - 3.0).max(0.0), (hi + 3.0).min(100.0)),
            _ => (0.0, 100.0),
        };
        let accuracy = Panel {
            left: 670.0,
            top: 128.0,
            width: 500.0,
            height: 385.0,
            x: x_axis.clone(),
            y: Axis::linear(lo, hi, 6),
        };
        accuracy.frame(&mut c, "Top-1 accuracy (%)", "top-1 (%)", "epoch");
        if let Some(reference) = self.reference_val {
            accuracy.horizontal(&mut c, reference, REFERENCE);
        }
        if let Some(x) = best_x {
            accuracy.vertical(&mut c, x, BEST);
        }
        accuracy.series(&mut c, &epochs, &train_top1, TRAIN, markers);
        accuracy.series(&mut c, &epochs, &val_top1, VAL, markers);
        if let Some(b) = best {
            let (x, y) = (accuracy.px(b.epoch as f64), accuracy.py(b.score()));
            c.ring(x, y, 7.0, BEST, 2.0);
        }

        // Learning rate, on its own axis: log-scaled when it spans a decade or more (the
        // tolerance keeps a x0.1 step, stored rounded, on the log scale).
        let positive: Vec<f64> = lrs
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let y = match (finite_min(positive.iter()), finite_max(positive.iter())) {
            (Some(lo), Some(hi)) if positive.len() == lrs.len() && hi / lo > 9.99 => {
                Axis::log(lo, hi)
            }
            (_, Some(hi)) => Axis::linear(0.0, hi * 1.1, 4),
            _ => Axis::linear(0.0, 1.0, 4),
        };
        let lr = Panel {
            left: 80.0,
            top: 612.0,
            width: 1090.0,
            height: 210.0,
            x: x_axis,
            y,
        };
        lr.frame(&mut c, "Learning rate", "learning rate", "epoch");
        if let Some(x) = best_x {
            lr.vertical(&mut c, x, BEST);
        }
        lr.series(&mut c, &epochs, &lrs, LR, markers);
        c.png()
    }
}

/// One line on the optimizer, the schedule and the data, for the picture's subtitle.
fn describe(config: &TrainConfig) -> String {
    let mut parts = Vec::new();
    parts.push(match &config.optimizer {
        OptimizerConfig::Sgd {
            lr,
            momentum,
            nesterov,
            weight_decay,
            ..
        } => format!(
            "SGD lr {}, momentum {}{}, weight decay {}",
            short(*lr),
            short(*momentum),
            if *nesterov { " (Nesterov)" } else { "" },
            short(*weight_decay)
        ),
        OptimizerConfig::Adamw {
            lr,
            weight_decay,
            betas,
            ..
        } => format!(
            "AdamW lr {}, betas {}/{}, weight decay {}",
            short(*lr),
            short(betas[0]),
            short(betas[1]),
            short(*weight_decay)
        ),
    });
    if config.optimizer.no_decay_norm_bias() {
        parts.push("no decay on norms and biases".into());
    }
    match config.optimizer.grad_clip() {
        Some(GradClip::Norm(bound)) => {
            parts.push(format!("gradient norm clipped at {}", short(bound)))
        }
        Some(GradClip::Value(bound)) => {
            parts.push(format!("gradients clipped at ±{}", short(bound)))
        }
        None => {}
    }
    let s = &config.schedule;
    let mut schedule = match s.name {
        ScheduleKind::Constant => "constant rate".to_string(),
        ScheduleKind::Multistep => format!(
            "×{} at epochs {}",
            short(s.gamma),
            s.milestones
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ScheduleKind::Cosine => format!("cosine to {}", short(s.min_lr)),
        ScheduleKind::Onecycle => format!(
            "one cycle up to {}",
            short(s.one_cycle(config.optimizer.lr()).max_lr)
        ),
    };
    if s.warmup_epochs > 0 {
        schedule.push_str(&format!(" after {} warm-up epochs", s.warmup_epochs));
    }
    parts.push(schedule);
    parts.push(format!("batch {}", config.batch_size));
    parts.push(format!(
        "{}% held out for validation",
        short(config.val_fraction * 100.0)
    ));
    parts.push(format!("seed {}", config.seed));
    if !config.model_params.is_empty() {
        let params: Vec<String> = config
            .model_params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.push(params.join(" "));
    }
    parts.join("  ·  ")
}

/// A number as a person writes it: 0.1, 0.9, 5e-4.
fn short(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-2 {
        format!("{v:e}")
    } else {
        format!("{}", (v * 1e6).round() / 1e6)
    }
}

fn finite_min<'a>(values: impl Iterator<Item = &'a f64>) -> Option<f64> {
    values.copied().filter(|v| v.is_finite()).reduce(f64::min)
}

fn finite_max<'a>(values: impl Iterator<Item = &'a f64>) -> Option<f64> {
    values.copied().filter(|v| v.is_finite()).reduce(f64::max)
}

/// An axis: its value range, how values map onto it, and the ticks with their labels.
#[derive(Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    /// Round ticks (1, 2, 2.5 or 5 times a power of ten) about `target` of them, the range
    /// widened to the outer ticks.
    fn linear(lo: f64, hi: f64, target: usize) -> Self {
        let (lo, hi) = if hi - lo > 1e-12 {
            (lo, hi)
        } else {
            (lo - 0.5, lo + 0.5)
        };
        let raw = (hi - lo) / target as f64;
        let magnitude = 10f64.powf(raw.log10().floor());
        let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
            .into_iter()
            .find(|m| raw <= m * magnitude * (1.0 + 1e-9))
            .unwrap_or(10.0);
        let step = nice * magnitude;
        let first = (lo / step).floor() * step;
        let last = (hi / step - 1e-9).ceil() * step;
        let decimals = (0..=8)
            .find(|d| ((step * 10f64.powi(*d)).fract()).abs() < 1e-6)
            .unwrap_or(8) as usize;
        let count = ((last - first) / step).round() as usize;
        let ticks = (0..=count)
            .map(|k| {
                let v = first + k as f64 * step;
                (v, format!("{v:.decimals$}"))
            })
            .collect();
        Self {
            lo: first,
            hi: last,
            log: false,
            ticks,
        }
    }

    /// Epochs 0 to `last` exactly (the planned run fills the width), ticked every 1, 2, 5, 10,
    /// 20, 25, 50... epochs, at most ten intervals, preferring a step that ends on `last`.
    fn epochs(last: usize) -> Self {
        let last = last.max(1);
        let mut steps: Vec<usize> = (0..10u32)
            .flat_map(|e| [1, 2, 5, 25].map(|m| m * 10usize.pow(e)))
            .filter(|s| last / s <= 10)
            .collect();
        steps.sort_unstable();
        let step = steps
            .iter()
            .copied()
            .find(|s| last.is_multiple_of(*s))
            .or_else(|| steps.first().copied())
            .unwrap_or(last);
        let ticks = (0..=last / step)
            .map(|k| ((k * step) as f64, (k * step).to_string()))
            .collect();
        Self {
            lo: 0.0,
            hi: last as f64,
            log: false,
            ticks,
        }
    }

    /// Whole decades, with 2x and 5x ticks when few decades are shown.
    fn log(lo: f64, hi: f64) -> Self {
        let first = lo.log10().floor() as i32;
        let mut last = hi.log10().ceil() as i32;
        if last == first {
            last += 1;
        }
        let mantissas: &[f64] = if last - first <= 3 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let mut ticks = Vec::new();
        for e in first..=last {
            for &m in mantissas {
                if e < last || m == 1.0 {
                    ticks.push((m * 10f64.powi(e), format!("{m}e{e}")));
                }
            }
        }
        Self {
            lo: 10f64.powi(first),
            hi: 10f64.powi(last),
            log: true,
            ticks,
        }
    }

    /// Where `v` lies between the ends, 0 to 1.
    fn fraction(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
}

/// A plot area with its axes; the inner padding keeps points on the ends off the frame.
struct Panel {
    left: f32,
    top: f32,
    width: f32,
    height: f32,
    x: Axis,
    y: Axis,
}

const PAD: f32 = 10.0;

impl Panel {
    fn px(&self, v: f64) -> f32 {
        self.left + PAD + self.x.fraction(v) as f32 * (self.width - 2.0 * PAD)
    }

    fn py(&self, v: f64) -> f32 {
        self.top + self.height - PAD - self.y.fraction(v) as f32 * (self.height - 2.0 * PAD)
    }

    fn bottom(&self) -> f32 {
        self.top + self.height
    }

    fn frame(&self, c: &mut Canvas, title: &str, y_label: &str, x_label: &str) {
        for (v, label) in &self.y.ticks {
            let y = self.py(*v);
            c.line(
                &[(self.left, y), (self.left + self.width, y)],
                GRID,
                1.0,
                false,
            );
            c.text(label, self.left - 8.0, y, 12.0, INK, Align::Right);
        }
        for (v, label) in &self.x.ticks {
            let x = self.px(*v);
            c.line(&[(x, self.top), (x, self.bottom())], GRID, 1.0, false);
            c.line(
                &[(x, self.bottom()), (x, self.bottom() + 5.0)],
                FRAME,
                1.0,
                false,
            );
            c.text(label, x, self.bottom() + 16.0, 12.0, INK, Align::Center);
        }
        c.outline(self.left, self.top, self.width, self.height, FRAME);
        c.text(
            title,
            self.left + self.width / 2.0,
            self.top - 16.0,
            16.0,
            INK,
            Align::Center,
        );
        c.text(
            x_label,
            self.left + self.width / 2.0,
            self.bottom() + 38.0,
            13.0,
            MUTED,
            Align::Center,
        );
        let label_width = c.text_width(y_label, 13.0);
        let widest_tick = self
            .y
            .ticks
            .iter()
            .map(|(_, l)| c.text_width(l, 12.0))
            .fold(0.0, f32::max);
        let x = self.left - widest_tick - 24.0;
        c.text_up(
            y_label,
            x,
            self.top + self.height / 2.0 - label_width / 2.0,
            13.0,
            MUTED,
        );
    }

    /// A line through the finite points, broken where a value is missing.
    fn series(&self, c: &mut Canvas, xs: &[f64], ys: &[f64], color: Rgb, markers: bool) {
        let mut segment: Vec<(f32, f32)> = Vec::new();
        for (&x, &y) in xs.iter().zip(ys) {
            if y.is_finite() && (!self.y.log || y > 0.0) {
                let p = (self.px(x), self.py(y).clamp(self.top, self.bottom()));
                segment.push(p);
                if markers {
                    c.dot(p.0, p.1, 3.0, color);
                }
            } else {
                c.line(&segment, color, 2.2, false);
                segment.clear();
            }
        }
        c.line(&segment, color, 2.2, false);
    }

    fn vertical(&self, c: &mut Canvas, x: f64, color: Rgb) {
        let x = self.px(x);
        c.line(&[(x, self.top), (x, self.bottom())], color, 1.5, true);
    }

    fn horizontal(&self, c: &mut Canvas, y: f64, color: Rgb) {
        let y = self.py(y);
        c.line(
            &[(self.left, y), (self.left + self.width, y)],
            color,
            1.8,
            true,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipes::recipe_for;
    use crate::report::tests::decode;

    fn rows(epochs: usize, slope: f64) -> Vec<EpochRow> {
        (1..=epochs)
            .map(|e| {
                let t = e as f64;
                EpochRow {
                    epoch: e,
                    lr: if e <= 6 { 0.1 } else { 0.01 },
                    train_loss: 2.3 / (1.0 + slope * t),
                    train_top1: 100.0 - 90.0 / (1.0 + slope * t),
                    val_loss: Some(2.3 / (1.0 + 0.8 * slope * t)),
                    val_top1: Some(100.0 - 92.0 / (1.0 + 0.8 * slope * t)),
                    val_top5: Some(99.0),
                    seconds: 10.0,
                    images_per_second: 100.0,
                    peak_rss_mb: None,
                    val_top1_raw: None,
                }
            })
            .collect()
    }

    fn curves(model: &str) -> Curves {
        let mut config = recipe_for(model).unwrap();
        config.epochs = 10;
        Curves::for_run(&RunDir::new("unused"), &config)
    }

    #[test]
    fn curves_decode_at_their_size_and_follow_the_data() {
        let c = curves("resnet");
        let a = c.draw(&rows(8, 0.5)).unwrap();
        let b = c.draw(&rows(8, 0.9)).unwrap();
        let (w, h, pixels) = decode(&a);
        assert_eq!((w as u32, h as u32), CURVES_SIZE);
        assert_eq!(pixels.len(), w * h * 3);
        assert_ne!(a, b, "different metrics must draw a different picture");
        assert_ne!(decode(&a).2, decode(&b).2);
        // Not a blank page: the series colours are there.
        let has = |rgb: Rgb| pixels.chunks_exact(3).any(|p| p == [rgb.0, rgb.1, rgb.2]);
        assert!(has(TRAIN) && has(VAL) && has(REFERENCE) && has(BEST) && has(LR));
    }

    #[test]
    fn curves_cope_with_one_epoch_no_validation_and_a_diverged_loss() {
        let c = curves("alexnet");
        let mut one = rows(1, 0.5);
        one[0].val_loss = None;
        one[0].val_top1 = None;
        let (w, h, _) = decode(&c.draw(&one).unwrap());
        assert_eq!((w as u32, h as u32), CURVES_SIZE);
        let mut diverged = rows(3, 0.5);
        diverged[2].train_loss = f64::NAN;
        diverged[2].train_top1 = f64::NAN;
        decode(&c.draw(&diverged).unwrap());
        decode(&c.draw(&[]).unwrap());
    }

    #[test]
    fn ticks_are_round_numbers_covering_the_range() {
        let a = Axis::epochs(180);
        assert_eq!(a.ticks.first().unwrap().1, "0");
        assert_eq!(a.ticks.last().unwrap().1, "180");
        let b = Axis::linear(43.2, 97.9, 6);
        assert!(b.lo <= 43.2 && b.hi >= 97.9);
        assert_eq!(b.ticks[1].1, "50");
        let l = Axis::log(1e-3, 0.1);
        assert_eq!(l.ticks.first().unwrap().1, "1e-3");
        assert_eq!(l.ticks.last().unwrap().1, "1e-1");
        assert!((l.fraction(0.01) - 0.5).abs() < 1e-9);
        assert_eq!(Axis::epochs(1).ticks.len(), 2);
        assert_eq!(Axis::epochs(13).ticks.last().unwrap().1, "12");
    }

    #[test]
    fn subtitle_names_the_recipe() {
        let text = describe(&recipe_for("resnet").unwrap());
        assert!(
            text.contains("lr 0.1") && text.contains("batch 128"),
            "{text}"
        );
        assert_eq!(short(1e-4), "1e-4");
        assert_eq!(short(0.9), "0.9");
    }
}
