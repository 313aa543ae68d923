//! The process's peak resident memory (`VmHWM` on Linux; unknown elsewhere).

/// The peak resident memory since the process started or since the last [`take_peak_rss_mb`],
/// in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// The peak so far, then the peak reset to the memory in use now (`clear_refs` 5), so that the
/// next call reports the peak of the time in between (an epoch).
pub fn take_peak_rss_mb() -> Option<f64> {
    let peak = peak_rss_mb();
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    peak
}
