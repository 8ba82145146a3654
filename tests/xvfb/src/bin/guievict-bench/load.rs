//! CPU load and CPU accounting for the benchmark. In flow process IDs (a benchmark client, the
//! `guievict run` or socat process that carries its bytes, the X server); out flow the
//! nanoseconds of CPU their threads used (the scheduler's own count, `sum_exec_runtime` in
//! `/proc/PID/task/TID/schedstat`, so short measurements are not rounded to clock ticks), the
//! context switches of a process that should be asleep (each one a wake-up), and [`Load`]: as
//! many CPU-bound processes as there are cores, at normal priority, alive while it is.

use anyhow::{Context, Result};
use std::process::{Child, Command, Stdio};

/// CPU-bound processes (`sh -c 'while :; do :; done'`), killed when dropped.
pub struct Load {
    children: Vec<Child>,
}

impl Load {
    /// Start `n` busy loops.
    pub fn start(n: usize) -> Result<Self> {
        let mut children = Vec::with_capacity(n);
        for _ in 0..n {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "while :; do :; done"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            crate::die_with_parent(&mut cmd);
            children.push(cmd.spawn().context("starting a busy loop (sh)")?);
        }
        // Let the scheduler spread them before anything is measured.
        std::thread::sleep(std::time::Duration::from_millis(200));
        Ok(Self { children })
    }

    /// How many busy loops the machine gets: one per core.
    pub fn cores() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `(pid, tid)` of every thread of `pid` and of its descendants (alive now).
fn tree_threads(pid: u32, out: &mut Vec<(u32, u32)>) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for t in tasks.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        out.push((pid, tid));
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")).unwrap_or_default();
        for c in children.split_whitespace().filter_map(|s| s.parse().ok()) {
            tree_threads(c, out);
        }
    }
}

fn threads(pids: &[u32]) -> Vec<(u32, u32)> {
    let mut v = Vec::new();
    for &p in pids {
        tree_threads(p, &mut v);
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// CPU time used so far by the processes `pids` and their descendants, in nanoseconds (threads
/// that already exited are not counted: the benchmark's processes keep theirs).
pub fn cpu_ns(pids: &[u32]) -> u64 {
    threads(pids)
        .into_iter()
        .filter_map(|(p, t)| {
            let s = std::fs::read_to_string(format!("/proc/{p}/task/{t}/schedstat")).ok()?;
            s.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Context switches (voluntary and not) of the processes `pids` and their descendants so far:
/// every wake-up of a sleeping thread is one.
pub fn switches(pids: &[u32]) -> u64 {
    threads(pids)
        .into_iter()
        .filter_map(|(p, t)| {
            let s = std::fs::read_to_string(format!("/proc/{p}/task/{t}/status")).ok()?;
            Some(
                s.lines()
                    .filter(|l| l.contains("ctxt_switches:"))
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .sum::<u64>(),
            )
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_child_uses_cpu_and_a_sleeping_one_does_not_wake() {
        let me = std::process::id();
        let before = cpu_ns(&[me]);
        // Spin until the kernel's own clock of this thread says 50 ms ran (on a loaded
        // machine 50 ms of wall time may be far less CPU), at most 10 s.
        let thread_ns = || {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes one timespec we own.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
        };
        let t = std::time::Instant::now();
        let t0 = thread_ns();
        let mut x = 0u64;
        while thread_ns() < t0 + 50_000_000 && t.elapsed() < std::time::Duration::from_secs(10) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(
            cpu_ns(&[me]) >= before + 45_000_000,
            "50 ms of spinning not counted"
        );
        let mut sleeper = Command::new("sleep").arg("5").spawn().unwrap();
        let s = sleeper.id();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let w = switches(&[s]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(switches(&[s]), w, "sleep(1) woke up");
        let _ = sleeper.kill();
        let _ = sleeper.wait();
    }
}
