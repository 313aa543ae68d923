//! A reproducible place to kill a run, for the crash-safety tests: with
//! `CNNZOO_PAUSE_AT=step:E:S` (after training step S of epoch E), `valid:E:S` (after validation
//! batch S of epoch E), `checkpoint:NAME:E` (epoch E's NAME checkpoint written to its temporary
//! file, not yet renamed), `report:evaluate` (training done, best.bpk not yet evaluated) or
//! `report:results` (evaluated, results.json not yet written), cnnzoo announces the point on
//! stderr and waits there to be killed, or until `released` says so (a Ctrl-C arriving at a step
//! point).
use std::sync::OnceLock;
use std::time::Duration;

pub const PAUSE_ENV: &str = "CNNZOO_PAUSE_AT";

pub fn pause_if_asked(point: &str, released: impl Fn() -> bool) {
    // Called after every training step: the variable is read once per run.
    static ASKED: OnceLock<Option<String>> = OnceLock::new();
    let asked = ASKED.get_or_init(|| std::env::var(PAUSE_ENV).ok());
    if asked.as_deref() == Some(point) {
        eprintln!("cnnzoo: paused at {point} ({PAUSE_ENV})");
        while !released() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
