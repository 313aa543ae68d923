//! Stopping a run from the keyboard, on a terminal and in a pipe alike.
//!
//! The first Ctrl-C stops training after the current step; a second one quits at once. On a
//! terminal burn-train's live display (its TUI) stands in the way twice: it puts the terminal in
//! raw mode, where Ctrl-C is a key press the display ignores instead of a signal, and when
//! training ends it resets the interrupter it was given, which would hide its own `q` menu's stop
//! from the code that decides whether the run finished. [`TerminalDisplay`] wraps the display so
//! that Ctrl-C stays a signal, and gives the display an interrupter of its own whose stop is
//! passed on to training's at the next update.
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::MetricDefinition;
use burn::train::renderer::tui::TuiMetricsRendererWrapper;
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn::train::{Interrupter, LearnerSummary};

/// Whether the live display holds the terminal: messages then wait until it has closed, since
/// text written behind ratatui's back stays on its screen as garbage.
static DISPLAY_ACTIVE: AtomicBool = AtomicBool::new(false);

/// The first Ctrl-C stops training at the end of the current step (the learner checks the
/// interrupter after each step); a second one exits at once, with status 130 as shells expect.
pub fn stop_on_ctrl_c(interrupter: Interrupter) -> Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT])
        .context("cannot install the Ctrl-C handler")?;
    std::thread::spawn(move || {
        for (count, _) in signals.forever().enumerate() {
            if count == 0 {
                if !DISPLAY_ACTIVE.load(Ordering::SeqCst) {
                    eprintln!(
                        "\nCtrl-C: stopping after the current step (press again to quit at once)"
                    );
                }
                interrupter.stop(Some(CTRL_C));
            } else {
                raw_mode::restore();
                std::process::exit(130);
            }
        }
    });
    Ok(())
}

/// The reason a Ctrl-C gives the interrupter.
pub const CTRL_C: &str = "Ctrl-C";
/// The reason the display's stop gives.
pub const DISPLAY_STOP: &str = "the display's stop (q, s)";

/// burn-train's TUI with Ctrl-C kept a signal and its stop passed on to training.
pub struct TerminalDisplay {
    inner: Option<TuiMetricsRendererWrapper>,
    /// The display's own: it presses it from its `q` menu and resets it when training ends.
    display: Interrupter,
    training: Interrupter,
}

impl TerminalDisplay {
    /// Takes over the terminal; `checkpoint` is the epoch a resumed run starts after.
    pub fn new(training: Interrupter, checkpoint: Option<usize>) -> Self {
        let display = Interrupter::new();
        raw_mode::save();
        DISPLAY_ACTIVE.store(true, Ordering::SeqCst);
        let inner = TuiMetricsRendererWrapper::new(display.clone(), checkpoint);
        raw_mode::keep_ctrl_c_a_signal();
        Self {
            inner: Some(inner),
            display,
            training,
        }
    }

    fn inner(&mut self) -> &mut TuiMetricsRendererWrapper {
        self.pass_on_stop();
        self.inner
            .as_mut()
            .expect("the display is only taken out when dropped")
    }

    fn pass_on_stop(&self) {
        if self.display.should_stop() && !self.training.should_stop() {
            self.training.stop(Some(DISPLAY_STOP));
        }
    }
}

impl Drop for TerminalDisplay {
    fn drop(&mut self) {
        // The TUI leaves the alternate screen when it is dropped; only then may others print.
        drop(self.inner.take());
        DISPLAY_ACTIVE.store(false, Ordering::SeqCst);
    }
}

/// What burn's renderer returns at the end of training and of a test.
type RenderResult = std::result::Result<(), Box<dyn core::error::Error>>;

/// Methods of burn's renderer traits that the display passes on to the renderer it wraps
/// unchanged: it adds nothing but the lock around it.
macro_rules! pass_to_inner {
    ($(fn $name:ident(&mut self $(, $arg:ident: $ty:ty)*) $(-> $ret:ty)?;)*) => {
        $(fn $name(&mut self $(, $arg: $ty)*) $(-> $ret)? {
            self.inner().$name($($arg),*)
        })*
    };
}

impl MetricsRendererTraining for TerminalDisplay {
    pass_to_inner! {
        fn update_train(&mut self, state: MetricState);
        fn update_valid(&mut self, state: MetricState);
        fn on_train_end(&mut self, summary: Option<LearnerSummary>) -> RenderResult;
    }
}

impl MetricsRendererEvaluation for TerminalDisplay {
    pass_to_inner! {
        fn update_test(&mut self, name: EvaluationName, state: MetricState);
        fn on_test_end(&mut self, summary: Option<LearnerSummary>) -> RenderResult;
    }
}

impl TrainingProgressLogger for TerminalDisplay {
    pass_to_inner! {
        fn start(
            &mut self,
            total_epochs: usize,
            starting_epoch: usize,
            total_items: Option<usize>,
            label: Option<&str>
        );
        fn update_epoch(&mut self, epoch: usize);
        fn start_split(&mut self, split: &str, total_items: usize);
        fn update_split(&mut self, items_processed: usize);
        fn end_split(&mut self);
        fn log_event_training(&mut self, event: String);
    }

    fn end(&mut self) {
        TrainingProgressLogger::end(self.inner());
    }
}

impl EvaluationProgressLogger for TerminalDisplay {
    pass_to_inner! {
        fn start_global_progress(&mut self, total_tests: usize);
        fn start_test(&mut self, name: &str, total_items: usize);
        fn update_test_progress(&mut self, items_processed: usize);
        fn end_test(&mut self);
        fn end_global_progress(&mut self);
        fn log_event_evaluation(&mut self, event: String);
    }
}

impl MetricsRenderer for TerminalDisplay {
    pass_to_inner! {
        fn manual_close(&mut self);
        fn register_metric(&mut self, definition: MetricDefinition);
    }
}

/// The terminal settings around the display's raw mode.
#[cfg(unix)]
mod raw_mode {
    use std::sync::Mutex;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use super::DISPLAY_ACTIVE;

    /// The settings before the display changed them, for a second Ctrl-C to put back.
    static BEFORE: Mutex<Option<libc::termios>> = Mutex::new(None);

    fn with_tty<T>(f: impl FnOnce(i32) -> Option<T>) -> Option<T> {
        use std::os::fd::AsRawFd;
        let tty = std::fs::File::open("/dev/tty").ok()?;
        f(tty.as_raw_fd())
    }

    fn settings(fd: i32) -> Option<libc::termios> {
        // Safety: tcgetattr fills the zeroed struct it is given, or fails and leaves it unread.
        let mut termios: libc::termios = unsafe { std::mem::zeroed() };
        (unsafe { libc::tcgetattr(fd, &mut termios) } == 0).then_some(termios)
    }

    fn apply(fd: i32, termios: &libc::termios) {
        // Safety: sets the settings of an open terminal from a struct tcgetattr filled.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, termios) };
    }

    pub fn save() {
        if let Some(termios) = with_tty(settings) {
            *BEFORE.lock().unwrap_or_else(|e| e.into_inner()) = Some(termios);
        }
    }

    /// Waits (briefly) for the display's thread to enter raw mode, then lets the terminal turn
    /// Ctrl-C into SIGINT again. Ctrl-Z stays off: a stopped process would leave the terminal
    /// raw under the shell.
    pub fn keep_ctrl_c_a_signal() {
        with_tty(|fd| {
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                let mut termios = settings(fd)?;
                if termios.c_lflag & libc::ICANON == 0 {
                    termios.c_lflag |= libc::ISIG;
                    termios.c_cc[libc::VSUSP] = libc::_POSIX_VDISABLE;
                    apply(fd, &termios);
                    return Some(());
                }
                if Instant::now() >= deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    }

    /// Puts the terminal back as it was before the display (settings, main screen, no mouse
    /// reports, cursor shown), for a process that exits without the display closing.
    pub fn restore() {
        if !DISPLAY_ACTIVE.load(Ordering::SeqCst) {
            return;
        }
        if let Some(before) = *BEFORE.lock().unwrap_or_else(|e| e.into_inner()) {
            with_tty(|fd| {
                apply(fd, &before);
                Some(())
            });
        }
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = out.write_all(
            b"\x1b[?1006l\x1b[?1015l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?1049l\x1b[?25h",
        );
        let _ = out.flush();
    }
}

#[cfg(not(unix))]
mod raw_mode {
    pub fn save() {}
    pub fn keep_ctrl_c_a_signal() {}
    pub fn restore() {}
}
