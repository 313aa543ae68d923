//! The pictures of a run, for people rather than programs: `curves.png` in every run folder,
//! redrawn after each epoch, and the confusion heat map of `cnnzoo eval --confusion`.
//!
//! Shapes are drawn with tiny-skia (antialiased), text with ab_glyph in an embedded subset of
//! DejaVu Sans (so no system font is needed), and the PNG is written here with flate2. Not
//! plotters: it turns on num-traits' default features, which burn also uses, and that would
//! rebuild the whole burn stack.
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use anyhow::{Context, Result};
use tiny_skia::{
    Color, FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Rect, Stroke, StrokeDash,
    Transform,
};

use crate::atomic;
use crate::config::{OptimizerConfig, ScheduleKind, TrainConfig};
use crate::eval::Evaluation;
use crate::run::{EpochRow, best_row};

/// Width and height of `curves.png`.
pub const CURVES_SIZE: (u32, u32) = (1200, 900);
/// Width and height of the confusion heat map, whatever the number of classes.
pub const CONFUSION_SIZE: (u32, u32) = (960, 900);

/// DejaVu Sans cut down to ASCII and a few symbols; its licence is beside it.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// Validation and test top-1 (%) of the reference implementation, from SPEC §4 (full CIFAR-10,
/// 180 epochs). Kept here rather than in the model registry: only the pictures use them.
const REFERENCE_TOP1: [(&str, f64, f64); 4] = [
    ("googlenet", 90.40, 89.70),
    ("resnet", 91.84, 91.06),
    ("resnet_preact", 91.80, 91.07),
    ("densenet", 90.72, 90.23),
];

fn reference(model: &str) -> Option<(f64, f64)> {
    REFERENCE_TOP1
        .iter()
        .find(|(name, _, _)| *name == model)
        .map(|&(_, val, test)| (val, test))
}

/// The reference test top-1 of SPEC §4, for a model trained on CIFAR-10's ten classes.
pub fn reference_test_top1(model: &str, classes: usize) -> Option<f64> {
    reference(model)
        .filter(|_| classes == 10)
        .map(|(_, test)| test)
}

#[derive(Clone, Copy)]
struct Rgb(u8, u8, u8);

const TRAIN: Rgb = Rgb(31, 119, 180);
const VAL: Rgb = Rgb(230, 110, 0);
const REFERENCE: Rgb = Rgb(44, 160, 44);
const BEST: Rgb = Rgb(214, 39, 40);
const LR: Rgb = Rgb(128, 80, 180);
const INK: Rgb = Rgb(30, 30, 30);
const MUTED: Rgb = Rgb(105, 105, 105);
const GRID: Rgb = Rgb(228, 228, 228);
const FRAME: Rgb = Rgb(160, 160, 160);
const WHITE: Rgb = Rgb(255, 255, 255);

/// `curves.png` of one run folder.
pub struct Curves {
    path: PathBuf,
    model: String,
    subtitle: String,
    epochs: usize,
    reference_val: Option<f64>,
}

impl Curves {
    pub fn for_run(dir: &Path, config: &TrainConfig) -> Self {
        Self {
            path: dir.join("curves.png"),
            model: config.model.clone(),
            subtitle: describe(config),
            epochs: config.epochs,
            reference_val: reference(&config.model).map(|(val, _)| val),
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
            "{} on CIFAR-10: epoch {last} of {}",
            self.model, self.epochs
        );
        if let Some(b) = best {
            let what = if b.val_top1.is_some() {
                "validation"
            } else {
                "train"
            };
            title.push_str(&format!(
                "  ·  best {what} top-1 {:.2}% at epoch {}",
                b.score(),
                b.epoch
            ));
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
            .map(|r| format!("reference validation top-1 {r:.2}% (SPEC §4)"));
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

/// The confusion heat map as PNG bytes: cells coloured by the share of their true class, with
/// the counts, the class names on both axes and each class's accuracy at the right.
pub fn confusion_png(evaluation: &Evaluation, classes: &[String], title: &str) -> Result<Vec<u8>> {
    let n = evaluation.confusion.len();
    let names: Vec<String> = if classes.len() == n {
        classes.to_vec()
    } else {
        (0..n).map(|i| i.to_string()).collect()
    };
    let mut c = Canvas::new(CONFUSION_SIZE)?;
    let title = c.fit(title, 19.0, 920.0);
    c.text(&title, 480.0, 28.0, 19.0, INK, Align::Center);
    c.text(
        "rows: true class  ·  columns: predicted class  ·  colour: share of the true class  ·  numbers: images",
        480.0,
        56.0,
        12.0,
        MUTED,
        Align::Center,
    );
    let (left, top, grid) = (150.0f32, 100.0f32, 640.0f32);
    let cell = grid / n.max(1) as f32;
    let label_size = (cell * 0.6).min(14.0);
    let per_class = evaluation.per_class();
    for (t, row) in evaluation.confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        let y = top + t as f32 * cell;
        for (p, &count) in row.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            };
            let x = left + p as f32 * cell;
            let fill = blues(share);
            c.rect(x, y, cell, cell, fill);
            if cell >= 26.0 {
                let ink = if share > 0.45 { WHITE } else { INK };
                c.text(
                    &count.to_string(),
                    x + cell / 2.0,
                    y + cell / 2.0,
                    (cell * 0.26).min(15.0),
                    ink,
                    Align::Center,
                );
            }
        }
        if cell >= 9.0 {
            let name = c.fit(&names[t], label_size, 135.0);
            c.text(
                &name,
                left - 8.0,
                y + cell / 2.0,
                label_size,
                INK,
                Align::Right,
            );
            c.text(
                &format!("{:.1}%", per_class[t]),
                left + grid + 12.0,
                y + cell / 2.0,
                label_size,
                INK,
                Align::Left,
            );
        }
    }
    c.outline(left, top, grid, grid, FRAME);
    if cell >= 9.0 {
        for (p, name) in names.iter().enumerate() {
            let name = c.fit(name, label_size, 120.0);
            c.text_up(
                &name,
                left + (p as f32 + 0.5) * cell,
                top + grid + 8.0,
                label_size,
                INK,
            );
        }
        c.text(
            "accuracy",
            left + grid + 12.0,
            top - 12.0,
            13.0,
            MUTED,
            Align::Left,
        );
    }
    c.text_up(
        "true class",
        24.0,
        top + grid / 2.0 - c.text_width("true class", 15.0) / 2.0,
        15.0,
        MUTED,
    );
    // Under the column names, which are drawn only when the cells are large enough.
    let longest = if cell >= 9.0 {
        names
            .iter()
            .map(|name| c.text_width(name, label_size).min(120.0))
            .fold(0.0, f32::max)
    } else {
        0.0
    };
    c.text(
        "predicted class",
        left + grid / 2.0,
        (top + grid + longest + 34.0).min(884.0),
        15.0,
        MUTED,
        Align::Center,
    );

    // The colour scale.
    let (bar_x, bar_w) = (880.0f32, 16.0f32);
    let steps = 128;
    for i in 0..steps {
        let share = 1.0 - i as f64 / (steps - 1) as f64;
        c.rect(
            bar_x,
            top + i as f32 * grid / steps as f32,
            bar_w,
            grid / steps as f32 + 1.0,
            blues(share),
        );
    }
    c.outline(bar_x, top, bar_w, grid, FRAME);
    for (share, label) in [(1.0, "100%"), (0.5, "50%"), (0.0, "0%")] {
        let y = top + (1.0 - share) * grid;
        c.line(
            &[(bar_x + bar_w, y), (bar_x + bar_w + 4.0, y)],
            FRAME,
            1.0,
            false,
        );
        c.text(label, bar_x + bar_w + 6.0, y, 11.0, INK, Align::Left);
    }
    c.png()
}

/// White to dark blue, as matplotlib's "Blues".
fn blues(share: f64) -> Rgb {
    const STOPS: [(f64, Rgb); 5] = [
        (0.0, Rgb(247, 251, 255)),
        (0.25, Rgb(198, 219, 239)),
        (0.5, Rgb(107, 174, 214)),
        (0.75, Rgb(33, 113, 181)),
        (1.0, Rgb(8, 48, 107)),
    ];
    let share = share.clamp(0.0, 1.0);
    let i = STOPS
        .iter()
        .rposition(|(s, _)| *s <= share)
        .unwrap_or(0)
        .min(STOPS.len() - 2);
    let ((s0, a), (s1, b)) = (STOPS[i], STOPS[i + 1]);
    let t = (share - s0) / (s1 - s0);
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t).round() as u8;
    Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
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

#[derive(Clone, Copy)]
enum Align {
    Left,
    Center,
    Right,
}

/// An RGB picture with a font.
struct Canvas {
    pixmap: Pixmap,
    font: FontRef<'static>,
}

fn paint(color: Rgb) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(Color::from_rgba8(color.0, color.1, color.2, 255));
    paint.anti_alias = true;
    paint
}

impl Canvas {
    fn new((width, height): (u32, u32)) -> Result<Self> {
        let mut pixmap = Pixmap::new(width, height).context("cannot allocate the picture")?;
        pixmap.fill(Color::WHITE);
        let font =
            FontRef::try_from_slice(FONT).context("the embedded font is not a TrueType font")?;
        Ok(Self { pixmap, font })
    }

    fn rect(&mut self, x: f32, y: f32, width: f32, height: f32, color: Rgb) {
        if let Some(rect) = Rect::from_xywh(x, y, width, height) {
            self.pixmap
                .fill_rect(rect, &paint(color), Transform::identity(), None);
        }
    }

    fn outline(&mut self, x: f32, y: f32, width: f32, height: f32, color: Rgb) {
        let corners = [
            (x, y),
            (x + width, y),
            (x + width, y + height),
            (x, y + height),
            (x, y),
        ];
        self.line(&corners, color, 1.0, false);
    }

    fn line(&mut self, points: &[(f32, f32)], color: Rgb, width: f32, dashed: bool) {
        let Some((&(x0, y0), rest)) = points.split_first() else {
            return;
        };
        if rest.is_empty() {
            return;
        }
        let mut path = PathBuilder::new();
        path.move_to(x0, y0);
        for &(x, y) in rest {
            path.line_to(x, y);
        }
        let Some(path) = path.finish() else { return };
        let stroke = Stroke {
            width,
            line_cap: if dashed {
                LineCap::Butt
            } else {
                LineCap::Round
            },
            line_join: LineJoin::Round,
            dash: if dashed {
                StrokeDash::new(vec![7.0, 5.0], 0.0)
            } else {
                None
            },
            ..Stroke::default()
        };
        self.pixmap
            .stroke_path(&path, &paint(color), &stroke, Transform::identity(), None);
    }

    fn dot(&mut self, x: f32, y: f32, radius: f32, color: Rgb) {
        if let Some(path) = PathBuilder::from_circle(x, y, radius) {
            self.pixmap.fill_path(
                &path,
                &paint(color),
                FillRule::Winding,
                Transform::identity(),
                None,
            );
        }
    }

    fn ring(&mut self, x: f32, y: f32, radius: f32, color: Rgb, width: f32) {
        if let Some(path) = PathBuilder::from_circle(x, y, radius) {
            let stroke = Stroke {
                width,
                ..Stroke::default()
            };
            self.pixmap
                .stroke_path(&path, &paint(color), &stroke, Transform::identity(), None);
        }
    }

    /// Swatches and labels in one centred row, their vertical middle at `y`.
    fn legend_row(&mut self, entries: &[(&str, Rgb, bool)], x: f32, y: f32) {
        let (size, swatch, gap) = (13.0, 28.0, 26.0);
        let widths: Vec<f32> = entries
            .iter()
            .map(|(label, _, _)| swatch + 8.0 + self.text_width(label, size))
            .collect();
        let total = widths.iter().sum::<f32>() + gap * (entries.len().saturating_sub(1)) as f32;
        let mut left = x - total / 2.0;
        for ((label, color, dashed), width) in entries.iter().zip(widths) {
            self.line(&[(left, y), (left + swatch, y)], *color, 2.5, *dashed);
            self.text(label, left + swatch + 8.0, y, size, INK, Align::Left);
            left += width + gap;
        }
    }

    fn text_width(&self, text: &str, size: f32) -> f32 {
        let font = self.font.as_scaled(PxScale::from(size));
        let mut previous = None;
        let mut width = 0.0;
        for ch in text.chars() {
            let id = font.glyph_id(ch);
            if let Some(p) = previous {
                width += font.kern(p, id);
            }
            width += font.h_advance(id);
            previous = Some(id);
        }
        width
    }

    /// `text`, shortened with an ellipsis to fit in `width` pixels.
    fn fit(&self, text: &str, size: f32, width: f32) -> String {
        if self.text_width(text, size) <= width {
            return text.to_string();
        }
        let mut chars: Vec<char> = text.chars().collect();
        while !chars.is_empty() {
            chars.pop();
            let candidate: String = chars.iter().collect::<String>() + "…";
            if self.text_width(&candidate, size) <= width {
                return candidate;
            }
        }
        String::new()
    }

    /// Coverage of the rendered line of text, row by row, with its width and height.
    fn rasterize(&self, text: &str, size: f32) -> (Vec<f32>, usize, usize) {
        let scale = PxScale::from(size);
        let font = self.font.as_scaled(scale);
        let width = self.text_width(text, size).ceil() as usize + 2;
        let height = (font.ascent() - font.descent()).ceil() as usize + 1;
        let mut coverage = vec![0.0f32; width * height];
        let mut caret = 0.0;
        let mut previous = None;
        for ch in text.chars() {
            let id = font.glyph_id(ch);
            if let Some(p) = previous {
                caret += font.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, point(caret, font.ascent()));
            caret += font.h_advance(id);
            previous = Some(id);
            let Some(outlined) = self.font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, c| {
                let x = bounds.min.x as i64 + gx as i64;
                let y = bounds.min.y as i64 + gy as i64;
                if (0..width as i64).contains(&x) && (0..height as i64).contains(&y) {
                    let cell = &mut coverage[y as usize * width + x as usize];
                    *cell = (*cell + c).min(1.0);
                }
            });
        }
        (coverage, width, height)
    }

    /// Text with its vertical middle at `y`.
    fn text(&mut self, text: &str, x: f32, y: f32, size: f32, color: Rgb, align: Align) {
        let (coverage, width, height) = self.rasterize(text, size);
        let left = match align {
            Align::Left => x,
            Align::Center => x - width as f32 / 2.0,
            Align::Right => x - width as f32,
        }
        .round() as i64;
        let top = (y - height as f32 / 2.0).round() as i64;
        for row in 0..height {
            for col in 0..width {
                self.blend(
                    left + col as i64,
                    top + row as i64,
                    color,
                    coverage[row * width + col],
                );
            }
        }
    }

    /// Text reading upwards (turned a quarter left), centred on `x`, its end at `top`.
    fn text_up(&mut self, text: &str, x: f32, top: f32, size: f32, color: Rgb) {
        let (coverage, width, height) = self.rasterize(text, size);
        let left = (x - height as f32 / 2.0).round() as i64;
        let top = top.round() as i64;
        for row in 0..height {
            for col in 0..width {
                let (dx, dy) = (row as i64, (width - 1 - col) as i64);
                self.blend(left + dx, top + dy, color, coverage[row * width + col]);
            }
        }
    }

    /// Source-over of an opaque colour at `alpha` onto one pixel (premultiplied RGBA).
    fn blend(&mut self, x: i64, y: i64, color: Rgb, alpha: f32) {
        let (w, h) = (self.pixmap.width() as i64, self.pixmap.height() as i64);
        if alpha <= 0.0 || !(0..w).contains(&x) || !(0..h).contains(&y) {
            return;
        }
        let i = (y * w + x) as usize * 4;
        let data = self.pixmap.data_mut();
        for (k, source) in [color.0, color.1, color.2, 255].into_iter().enumerate() {
            data[i + k] =
                (source as f32 * alpha + data[i + k] as f32 * (1.0 - alpha)).round() as u8;
        }
    }

    /// The picture as an RGB PNG. The background is opaque, so the premultiplied pixels are the
    /// plain colours.
    fn png(&self) -> Result<Vec<u8>> {
        let rgb: Vec<u8> = self
            .pixmap
            .data()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        encode_png(self.pixmap.width(), self.pixmap.height(), &rgb)
    }
}

/// An 8-bit RGB PNG. Each row is filtered with Sub or Up, whichever leaves the smaller sum
/// (the PNG specification's heuristic), which keeps the flat plots small.
fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>> {
    let stride = width as usize * 3;
    let mut filtered = Vec::with_capacity((stride + 1) * height as usize);
    let mut previous = vec![0u8; stride];
    for row in rgb.chunks_exact(stride) {
        let sub: Vec<u8> = (0..stride)
            .map(|i| row[i].wrapping_sub(if i >= 3 { row[i - 3] } else { 0 }))
            .collect();
        let up: Vec<u8> = row
            .iter()
            .zip(&previous)
            .map(|(a, b)| a.wrapping_sub(*b))
            .collect();
        let cost = |v: &[u8]| {
            v.iter()
                .map(|&b| u64::from((b as i8).unsigned_abs()))
                .sum::<u64>()
        };
        let (kind, bytes) = if cost(&sub) <= cost(&up) {
            (1u8, sub)
        } else {
            (2u8, up)
        };
        filtered.push(kind);
        filtered.extend(bytes);
        previous.copy_from_slice(row);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&filtered)
        .context("cannot compress the picture")?;
    let idat = zlib.finish().context("cannot compress the picture")?;

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    // 8 bits per channel, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend([8, 2, 0, 0, 0]);
    for (kind, data) in [
        (b"IHDR", &ihdr[..]),
        (b"IDAT", &idat[..]),
        (b"IEND", &[][..]),
    ] {
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(kind);
        png.extend(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        png.extend(crc.finalize().to_be_bytes());
    }
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zune_core::bytestream::ZCursor;
    use zune_png::PngDecoder;

    fn decode(png: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut decoder = PngDecoder::new(ZCursor::new(png));
        let pixels = decoder.decode_raw().expect("a valid PNG");
        let (w, h) = decoder.dimensions().unwrap();
        (w, h, pixels)
    }

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
                }
            })
            .collect()
    }

    fn curves(model: &str) -> Curves {
        let mut config = TrainConfig::recipe_for(model);
        config.epochs = 10;
        Curves::for_run(Path::new("unused"), &config)
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
    fn confusion_decodes_at_its_size_and_follows_the_counts() {
        let classes: Vec<String> = [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let matrix = |hit: usize| -> Vec<Vec<usize>> {
            (0..10)
                .map(|t| {
                    (0..10)
                        .map(|p| if t == p { hit } else { (t + p) % 7 })
                        .collect()
                })
                .collect()
        };
        let evaluation = |hit| Evaluation {
            top1: 80.0,
            top5: 95.0,
            n: 1000,
            confusion: matrix(hit),
        };
        let a = confusion_png(&evaluation(80), &classes, "resnet, test split").unwrap();
        let b = confusion_png(&evaluation(20), &classes, "resnet, test split").unwrap();
        let (w, h, _) = decode(&a);
        assert_eq!((w as u32, h as u32), CONFUSION_SIZE);
        assert_ne!(decode(&a).2, decode(&b).2);
        // A hundred classes are drawn too, without counts.
        let big = Evaluation {
            top1: 1.0,
            top5: 5.0,
            n: 100,
            confusion: vec![vec![1; 100]; 100],
        };
        let (w, h, _) = decode(&confusion_png(&big, &[], "cifar-100").unwrap());
        assert_eq!((w as u32, h as u32), CONFUSION_SIZE);
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
        let text = describe(&TrainConfig::recipe_for("resnet"));
        assert!(
            text.contains("lr 0.1") && text.contains("batch 128"),
            "{text}"
        );
        assert_eq!(short(1e-4), "1e-4");
        assert_eq!(short(0.9), "0.9");
    }
}
