//! `summary.csv`: one row per finished epoch, and the choice of the best epoch (validation
//! top-1, ties to the earlier).
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

pub const SUMMARY_HEADER: &str = "epoch,lr,train_loss,train_top1,val_loss,val_top1,val_top5,seconds,images_per_second,peak_rss_mb,val_top1_raw";

/// One row of `summary.csv`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochRow {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_top1: f64,
    pub val_loss: Option<f64>,
    pub val_top1: Option<f64>,
    pub val_top5: Option<f64>,
    pub seconds: f64,
    pub images_per_second: f64,
    /// Peak resident memory during the epoch (Linux), to check that memory stays flat.
    pub peak_rss_mb: Option<f64>,
    /// With `[ema]`, the validation figures above are the moving average's and this is the
    /// trained weights' top-1.
    pub val_top1_raw: Option<f64>,
}

impl EpochRow {
    /// The top-1 the curves mark at the best epoch: validation, or training without a
    /// validation split.
    pub fn score(&self) -> f64 {
        self.val_top1.unwrap_or(self.train_top1)
    }

    fn to_csv(&self) -> String {
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
        format!(
            "{},{:.6e},{:.5},{:.3},{},{},{},{:.2},{:.1},{},{}",
            self.epoch,
            self.lr,
            self.train_loss,
            self.train_top1,
            opt(self.val_loss),
            opt(self.val_top1),
            opt(self.val_top5),
            self.seconds,
            self.images_per_second,
            self.peak_rss_mb
                .map(|v| format!("{v:.1}"))
                .unwrap_or_default(),
            opt(self.val_top1_raw)
        )
    }

    fn from_csv(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        // Files written before `val_top1_raw` existed have ten columns.
        if !(10..=11).contains(&f.len()) {
            return None;
        }
        let opt = |s: &str| {
            if s.is_empty() {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        };
        Some(Self {
            epoch: f[0].parse().ok()?,
            lr: f[1].parse().ok()?,
            train_loss: f[2].parse().ok()?,
            train_top1: f[3].parse().ok()?,
            val_loss: opt(f[4])?,
            val_top1: opt(f[5])?,
            val_top5: opt(f[6])?,
            seconds: f[7].parse().ok()?,
            images_per_second: f[8].parse().ok()?,
            peak_rss_mb: opt(f[9])?,
            val_top1_raw: f.get(10).map_or(Some(None), |s| opt(s))?,
        })
    }
}

/// The whole file: the header, then the rows.
pub fn to_csv(rows: &[EpochRow]) -> String {
    let mut csv = String::from(SUMMARY_HEADER);
    csv.push('\n');
    for r in rows {
        let _ = writeln!(csv, "{}", r.to_csv());
    }
    csv
}

/// Reads the rows of a `summary.csv`.
pub fn read(path: &Path) -> Result<Vec<EpochRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            EpochRow::from_csv(l)
                .with_context(|| format!("{}: malformed row '{l}'", path.display()))
        })
        .collect()
}

/// The best epoch: the highest validation top-1, the earlier on ties; without a validation split
/// (`val_fraction = 0`) there is nothing to choose by, and the last epoch is the best.
pub fn best_row(rows: &[EpochRow]) -> Option<&EpochRow> {
    if rows.iter().all(|row| row.val_top1.is_none()) {
        return rows.last();
    }
    rows.iter()
        .filter(|row| row.val_top1.is_some())
        .fold(None, |best: Option<&EpochRow>, row| match best {
            Some(b) if b.val_top1 >= row.val_top1 => Some(b),
            _ => Some(row),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize, val: f64) -> EpochRow {
        EpochRow {
            epoch,
            val_top1: Some(val),
            val_loss: Some(1.0),
            ..EpochRow::default()
        }
    }

    #[test]
    fn best_is_highest_validation_top1_and_earlier_on_ties() {
        let rows = vec![row(1, 50.0), row(2, 61.0), row(3, 61.0), row(4, 40.0)];
        assert_eq!(best_row(&rows).unwrap().epoch, 2);
        assert!(best_row(&[]).is_none());
    }

    #[test]
    fn without_validation_the_last_epoch_is_best_whatever_the_training_accuracy() {
        let train_only = |epoch, train_top1| EpochRow {
            epoch,
            train_top1,
            ..EpochRow::default()
        };
        let rows = vec![
            train_only(1, 30.0),
            train_only(2, 80.0),
            train_only(3, 70.0),
        ];
        assert_eq!(best_row(&rows).unwrap().epoch, 3);
    }

    #[test]
    fn summary_rows_round_trip_through_csv() {
        let r = EpochRow {
            epoch: 3,
            lr: 0.01,
            train_loss: 1.25,
            train_top1: 55.5,
            val_loss: None,
            val_top1: Some(60.25),
            val_top5: Some(95.0),
            seconds: 12.5,
            images_per_second: 400.0,
            peak_rss_mb: Some(812.5),
            val_top1_raw: Some(59.5),
        };
        assert_eq!(EpochRow::from_csv(&r.to_csv()), Some(r.clone()));
        assert_eq!(SUMMARY_HEADER.split(',').count(), 11);
        // A row of a file written before the raw column existed.
        let old = EpochRow::from_csv("2,1.0e-1,1.5,40.0,1.4,45.5,90.0,10.0,300.0,800.0").unwrap();
        assert_eq!((old.val_top1, old.val_top1_raw), (Some(45.5), None));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        std::fs::write(&path, to_csv(&[row(1, 50.0), r.clone()])).unwrap();
        assert_eq!(read(&path).unwrap(), vec![row(1, 50.0), r]);
    }
}
