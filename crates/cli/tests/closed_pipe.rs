//! A reader that closes the pipe before `cnnzoo` has printed (`cnnzoo models | head -1`) ends
//! the process quietly, as it ends other Unix tools: killed by SIGPIPE or exit 0, never a panic
//! with a stack trace.
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

#[test]
fn every_command_ends_quietly_when_its_reader_has_gone() {
    let runs = tempfile::tempdir().unwrap();
    let runs = runs.path().to_str().unwrap();
    for args in [
        vec!["completions", "bash"],
        vec!["models"],
        vec!["models", "--json"],
        vec!["runs", runs],
        vec!["train", "--help"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cnnzoo"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The read end closes before the program prints anything.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.success() || status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {status:?}\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
