//! The live display as a user meets it: `cnnzoo train` in a 120x40 pseudo-terminal, keys typed
//! into it, and the screen it leaves behind read by a terminal emulator.
mod common;

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, PtySize, native_pty_system};

use common::{assert_contains_all, mini_data};

const ROWS: u16 = 40;
const COLS: u16 = 120;
/// Ample for a few epochs of the small ResNet on a busy 2-core machine.
const PATIENCE: Duration = Duration::from_secs(600);

/// `cnnzoo` running in a pseudo-terminal, everything it writes collected.
struct TerminalRun {
    child: Box<dyn Child + Send + Sync>,
    keyboard: Box<dyn Write + Send>,
    written: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl TerminalRun {
    fn start(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Self {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_cnnzoo"));
        command.args(args);
        command.cwd(cwd);
        command.env("TERM", "xterm-256color");
        command.env("CNNZOO_CIFAR_URL", "http://127.0.0.1:9/unreachable");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = pty.slave.spawn_command(command).expect("cnnzoo starts");
        drop(pty.slave);
        let mut output = pty.master.try_clone_reader().unwrap();
        let keyboard = pty.master.take_writer().unwrap();
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = written.clone();
        let reader = std::thread::spawn(move || {
            // Holding the master keeps the terminal open until the reader has seen the end.
            let _master = pty.master;
            let mut buffer = [0u8; 8192];
            while let Ok(n) = output.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Self {
            child,
            keyboard,
            written,
            reader: Some(reader),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.written.lock().unwrap().clone()
    }

    /// Waits until the raw output holds `needle`.
    fn wait_for(&mut self, needle: &str) {
        let started = Instant::now();
        while !String::from_utf8_lossy(&self.bytes()).contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "exited ({status:?}) before printing {needle:?}:\n{}",
                    self.screen()
                );
            }
            assert!(
                started.elapsed() < PATIENCE,
                "no {needle:?} after {PATIENCE:?}:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.keyboard.write_all(keys).unwrap();
        self.keyboard.flush().unwrap();
    }

    /// Waits for the exit and returns its status code and the parsed terminal.
    fn finish(mut self) -> (u32, vt100::Parser) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "still running after {PATIENCE:?}:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        drop(self.keyboard);
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let mut terminal = emulator(1000);
        terminal.process(&self.written.lock().unwrap());
        (status.exit_code(), terminal)
    }

    /// The screen as a terminal would show it now, for failure messages.
    fn screen(&self) -> String {
        let mut terminal = emulator(0);
        terminal.process(&self.bytes());
        terminal.screen().contents()
    }
}

/// A terminal emulator the size of the pseudo-terminal.
fn emulator(scrollback: usize) -> vt100::Parser {
    let size = |n| NonZeroU16::new(n).expect("a terminal has rows and columns");
    vt100::Parser::new(size(ROWS), size(COLS), scrollback)
}

/// The main screen after exit, scrollback included.
fn everything_shown(terminal: &mut vt100::Parser) -> String {
    let mut lines = Vec::new();
    let mut offset = 1000;
    loop {
        terminal.screen_mut().set_scrollback(offset);
        let shown = terminal.screen().scrollback();
        if shown == offset || offset == 0 {
            lines.push(terminal.screen().contents());
            if offset == 0 {
                break;
            }
        }
        offset = offset.saturating_sub(usize::from(ROWS)).min(shown);
    }
    lines.join("\n")
}

fn train_args<'a>(data: &'a str, output: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--config",
        "small.toml",
        "--data-dir",
        data,
        "--output",
        output,
    ]
}

fn setup(epochs: usize, seed: u64) -> (tempfile::TempDir, String) {
    let dir = common::small_resnet_dir(epochs, seed, "");
    (dir, mini_data().to_str().unwrap().to_string())
}

/// A run on the terminal held at pause point `point`, then sent one Ctrl-C.
fn ctrl_c_when_paused(dir: &Path, args: &[&str], point: &str) -> TerminalRun {
    let mut run = TerminalRun::start(args, dir, &[("CNNZOO_PAUSE_AT", point)]);
    run.wait_for(&format!("paused at {point}"));
    run.type_keys(b"\x03");
    run
}

#[test]
fn a_finished_run_leaves_its_results_on_the_screen() {
    let (dir, data) = setup(1, 31);
    let run = TerminalRun::start(&train_args(&data, "runs/shown"), dir.path(), &[]);
    let (code, mut terminal) = run.finish();
    assert!(
        !terminal.screen().alternate_screen(),
        "the display did not give the screen back"
    );
    let shown = everything_shown(&mut terminal);
    assert_eq!(code, 0, "{shown}");
    assert_contains_all(
        &shown,
        &["best epoch 1:", "test top-1 ", "run folder: runs/shown"],
    );
    // Each closing line starts at the left edge: no staircase from a raw-mode terminal.
    for needle in ["test top-1 ", "run folder: "] {
        assert!(
            shown.lines().any(|line| line.starts_with(needle)),
            "{needle:?} does not start a line:\n{shown}"
        );
    }
    assert!(dir.path().join("runs/shown/results.json").is_file());
}

#[test]
fn ctrl_c_on_the_display_stops_after_the_step_and_says_how_to_resume() {
    let (dir, data) = setup(3, 32);
    let run = ctrl_c_when_paused(dir.path(), &train_args(&data, "runs/ctrl-c"), "step:2:1");
    let (code, mut terminal) = run.finish();
    let shown = everything_shown(&mut terminal);
    assert_eq!(code, 130, "{shown}");
    assert!(!terminal.screen().alternate_screen());
    assert_contains_all(
        &shown,
        &[
            "stopped by Ctrl-C",
            "interrupted.bpk",
            "continue with: cnnzoo train --resume --output runs/ctrl-c",
        ],
    );
    let run_dir = dir.path().join("runs/ctrl-c");
    assert!(run_dir.join("interrupted.bpk").is_file());
    assert!(!run_dir.join("results.json").exists());
    let runs = common::cnnzoo(&["runs", "runs", "--json"], dir.path());
    let listed: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(listed[0]["status"], "stopped", "{listed}");
}

#[test]
fn the_displays_own_stop_is_a_stop_not_a_finish() {
    let (dir, data) = setup(50, 33);
    let mut run = TerminalRun::start(&train_args(&data, "runs/menu"), dir.path(), &[]);
    // The display's status panel says "Training" once steps are under way; its quit menu offers
    // to stop "immediately" (by killing the process) beside the stop this test chooses.
    run.wait_for("Training");
    run.type_keys(b"q");
    run.wait_for("immediately");
    run.type_keys(b"s");
    let (code, mut terminal) = run.finish();
    let shown = everything_shown(&mut terminal);
    assert_eq!(code, 130, "{shown}");
    assert_contains_all(
        &shown,
        &["stopped by the display's stop", "interrupted.bpk"],
    );
    let run_dir = dir.path().join("runs/menu");
    assert!(run_dir.join("interrupted.bpk").is_file());
    assert!(
        !run_dir.join("results.json").exists(),
        "a stopped run was evaluated as finished"
    );
}

#[test]
fn a_second_ctrl_c_quits_at_once_and_gives_the_terminal_back() {
    let (dir, data) = setup(2, 34);
    // Held while epoch 1's weights are being written: the first Ctrl-C cannot end that.
    let args = train_args(&data, "runs/twice");
    let mut run = ctrl_c_when_paused(dir.path(), &args, "checkpoint:model:1");
    std::thread::sleep(Duration::from_millis(500));
    run.type_keys(b"\x03");
    let (code, terminal) = run.finish();
    assert_eq!(code, 130, "{}", terminal.screen().contents());
    assert!(
        !terminal.screen().alternate_screen(),
        "the terminal was left on the display's screen"
    );
    assert!(!dir.path().join("runs/twice/results.json").exists());
}
