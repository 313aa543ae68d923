//! The confusion heat map of `cnnzoo eval --confusion`.
use anyhow::Result;

use super::canvas::{Align, Canvas, FRAME, INK, MUTED, Rgb, WHITE};
use crate::eval::READABLE_CLASSES;
use crate::evaluation::Evaluation;

/// Width and height of the confusion heat map, whatever the number of classes.
pub const CONFUSION_SIZE: (u32, u32) = (960, 900);

/// The confusion heat map as PNG bytes: cells coloured by the share of their true class, with
/// the counts (up to [`READABLE_CLASSES`] classes, and only where a cell is large enough for
/// them), the class names on both axes and each class's accuracy at the right.
pub fn draw(evaluation: &Evaluation, classes: &[String], title: &str) -> Result<Vec<u8>> {
    let n = evaluation.confusion.len();
    let names: Vec<String> = if classes.len() == n {
        classes.to_vec()
    } else {
        (0..n).map(|i| i.to_string()).collect()
    };
    let mut c = Canvas::new(CONFUSION_SIZE)?;
    let title = c.fit(title, 19.0, 920.0);
    c.text(&title, 480.0, 28.0, 19.0, INK, Align::Center);
    let numbered = n <= READABLE_CLASSES;
    let legend =
        "rows: true class  ·  columns: predicted class  ·  colour: share of the true class";
    c.text(
        &if numbered {
            format!("{legend}  ·  numbers: images")
        } else {
            legend.to_owned()
        },
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
            if numbered && cell >= 26.0 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::decode;

    #[test]
    fn confusion_decodes_at_its_size_and_follows_the_counts() {
        let classes: Vec<String> = cnnzoo_cifar::CifarKind::Cifar10
            .default_classes()
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
            nonfinite: 0,
            nonfinite_by_class: vec![0; 10],
        };
        let a = draw(&evaluation(80), &classes, "resnet, test split").unwrap();
        let b = draw(&evaluation(20), &classes, "resnet, test split").unwrap();
        let (w, h, _) = decode(&a);
        assert_eq!((w as u32, h as u32), CONFUSION_SIZE);
        assert_ne!(decode(&a).2, decode(&b).2);
        // A hundred classes are drawn too, without counts.
        let big = Evaluation {
            top1: 1.0,
            top5: 5.0,
            n: 100,
            confusion: vec![vec![1; 100]; 100],
            nonfinite: 0,
            nonfinite_by_class: vec![0; 100],
        };
        let (w, h, _) = decode(&draw(&big, &[], "cifar-100").unwrap());
        assert_eq!((w as u32, h as u32), CONFUSION_SIZE);
    }

    /// Doubling every count keeps every share, so only the numbers in the cells can change the
    /// picture: they do at 20 classes (cells of 32 pixels), and at 21 (cells of 30 pixels, large
    /// enough for them) there are none.
    #[test]
    fn counts_are_drawn_up_to_20_classes_only() {
        let pixels = |n: usize, scale: usize| {
            let confusion: Vec<Vec<usize>> = (0..n)
                .map(|t| (0..n).map(|p| scale * (1 + (t * 3 + p) % 5)).collect())
                .collect();
            let evaluation = Evaluation {
                top1: 10.0,
                top5: 50.0,
                n: confusion.iter().flatten().sum(),
                confusion,
                nonfinite: 0,
                nonfinite_by_class: vec![0; n],
            };
            decode(&draw(&evaluation, &[], "counts").unwrap()).2
        };
        assert_ne!(pixels(20, 1), pixels(20, 2));
        assert_eq!(pixels(21, 1), pixels(21, 2));
    }
}
