//! CPU time from /proc and core pinning with `taskset`: how much CPU the
//! server spent per request, and keeping server and generator on their own
//! cores so that they do not steal each other's time.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// Clock ticks per second of /proc's utime and stime.
fn ticks_per_s() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            // Linux has used 100 on every common architecture for decades.
            .unwrap_or(100)
    })
}

/// utime + stime of a /proc `stat` line, and the command name, or `None` if
/// the line is not one.
fn parse_stat(line: &str) -> Option<(String, u64)> {
    // The command name is in parentheses and may itself hold spaces or ')'.
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    // After the name: state(3) ppid pgrp session tty tpgid flags minflt cminflt
    // majflt cmajflt utime(14) stime(15), numbered as in proc(5).
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

fn ticks_to_us(ticks: u64) -> u64 {
    ticks * 1_000_000 / ticks_per_s()
}

/// CPU time (user + system) of process `pid` and all its threads, µs, with
/// the 10 ms resolution of /proc.
pub fn process_cpu_us(pid: u32) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text)
        .map(|(_, t)| ticks_to_us(t))
        .ok_or_else(|| std::io::Error::other(format!("/proc/{pid}/stat: unexpected format")))
}

/// CPU time of this process's threads named `name`, µs. Threads that have
/// exited are not counted, so the runtime whose threads these are should
/// keep them (tokio keeps its workers; idle blocking threads may go).
pub fn own_threads_cpu_us(name: &str) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let path = entry?.path().join("stat");
        // A thread may exit between listing and reading.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if let Some((comm, ticks)) = parse_stat(&text) {
            if comm == name {
                total += ticks;
            }
        }
    }
    Ok(ticks_to_us(total))
}

/// Cores this process may use, as first asked: pinning later narrows the
/// process's own view, so the first answer is kept.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// True when `taskset` can be run.
pub fn taskset_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Command::new("taskset")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Pins thread (or process main thread) `tid` to `core`. Threads it creates
/// afterwards inherit the mask.
pub fn pin(tid: u32, core: usize) -> anyhow::Result<()> {
    let out = Command::new("taskset")
        .args(["-p", "-c", &core.to_string(), &tid.to_string()])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run taskset: {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "taskset -p -c {core} {tid} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The kernel's id of the calling thread (its /proc/self/task entry).
pub fn current_tid() -> Option<u32> {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok())
        })
        .or_else(|| Some(std::process::id()).filter(|_| Path::new("/proc/self").exists()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0";
        assert_eq!(parse_stat(line), Some(("my (odd) name".to_owned(), 300)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_cpu_time_grows_with_work() {
        let me = std::process::id();
        let before = process_cpu_us(me).unwrap();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(60) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = process_cpu_us(me).unwrap();
        assert!(after >= before + 20_000, "{before} -> {after}");
    }
}
