//! Load shedding driven by the CPU and the runtime's lateness: refuse a
//! share of the calls that would queue.
//!
//! The concurrency limit counts calls that a connection has handed to the
//! service. A quote is CPU work that runs to its end once polled, so under
//! overload the calls that wait are not there: they wait in the socket and
//! the connection's buffers, where no slot counts them, and every call grows
//! slow instead of the excess being refused (docs/performance.md has the
//! measurement). Two signals do see that queue. The CPU demand: the time
//! the process's threads ran plus the time they were ready to run but
//! waited for a core (Linux's schedstat). When that keeps the cores the
//! process may use busy, arrivals outrun it; counting the waiting too means
//! a server starved by a neighbour is seen as overloaded, which its own CPU
//! time alone would hide. And the lateness of the runtime: a task that is
//! due waits behind every runnable task.
//!
//! So a controller samples both and keeps an *admit share*: while the CPU
//! demand over the last 100 ms is at or over its target, or the sampler itself
//! woke at least the lag target late on each of its last four wake-ups, it
//! cuts the share by a quarter (multiplicative decrease, so
//! that a burst is met within a few samples); otherwise it gives back a
//! twentieth (additive increase, so that the share creeps back up and
//! settles just under saturation). A cut forgets the samples before it and
//! the next decision waits for 50 ms of fresh ones: deciding again on the
//! busy samples that caused the cut would cut once per sample while they
//! stay in view, and the share would swing well below what the cores serve.
//! Calls that can be shed are admitted in that share, spread evenly over arrivals, and the rest are refused at once
//! with RESOURCE_EXHAUSTED, which costs a small fraction of a quote. The CPU
//! then has headroom, the hidden queue drains, and both the admitted calls
//! and the refusals answer quickly.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The admit share in millionths: 1,000,000 admits every call.
const SHARE_ALL: u32 = 1_000_000;
/// The least share ever admitted: some calls always get through, so a
/// mistaken reading cannot turn the server off.
const SHARE_MIN: u32 = 20_000;
/// Below the target, the share grows by this much a sample.
const SHARE_STEP_UP: u32 = 50_000;
/// Samples a decision looks back over. CPU use is taken over all of them:
/// arrivals are bursty, and a busy 25 ms is not overload. Lateness counts
/// only when every one of them woke late: the least is the standing queue
/// (as in CoDel), while a single late wake-up is more often the host taking
/// the core for a moment, which shedding cannot help.
const WINDOW_SAMPLES: usize = 4;
/// Fresh samples a decision needs after a cut.
const HOLD_SAMPLES: usize = 2;

/// The admit share and the rule that moves it; shared by every connection.
#[derive(Debug)]
pub struct Overload {
    /// CPU demand to stay under, as a share of the usable cores (0..1).
    target: f64,
    /// Lateness of the runtime that counts as overload.
    lag_target: Duration,
    /// Calls admitted per million.
    share: AtomicU32,
    /// Arrivals so far, to spread admissions evenly.
    arrivals: AtomicU64,
}

impl Overload {
    /// A controller holding CPU demand under `target_percent` of the usable
    /// cores and the runtime's lateness under `lag_target`.
    pub fn new(target_percent: u32, lag_target: Duration) -> Overload {
        Overload {
            target: f64::from(target_percent.clamp(1, 100)) / 100.0,
            lag_target,
            share: AtomicU32::new(SHARE_ALL),
            arrivals: AtomicU64::new(0),
        }
    }

    /// The share of calls admitted now, 0..1.
    pub fn admit_share(&self) -> f64 {
        f64::from(self.share.load(Ordering::Relaxed)) / f64::from(SHARE_ALL)
    }

    /// Whether the next call that may be shed is admitted.
    pub fn admits(&self) -> bool {
        let share = self.share.load(Ordering::Relaxed);
        if share >= SHARE_ALL {
            return true;
        }
        // The n-th arrival's place in [0, 1) by the golden-ratio sequence:
        // any run of arrivals is admitted in very nearly the share, with no
        // random number generator and no lock.
        let n = self.arrivals.fetch_add(1, Ordering::Relaxed);
        let place = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 44; // 0..2^20
        place * u64::from(SHARE_ALL) < u64::from(share) << 20
    }

    /// Moves the share after a sample: over the last samples the process's
    /// CPU demand was `use_share` of its usable cores and the sampler's
    /// wake-ups were all at least `lag` late.
    /// Returns whether it cut the share.
    pub fn observe(&self, use_share: f64, lag: Duration) -> bool {
        let now = self.share.load(Ordering::Relaxed);
        let cut = use_share >= self.target || lag >= self.lag_target;
        let next = if cut {
            (now - now / 4).max(SHARE_MIN)
        } else {
            now.saturating_add(SHARE_STEP_UP).min(SHARE_ALL)
        };
        self.share.store(next, Ordering::Relaxed);
        metrics::gauge!("stockroute_grpc_admit_share").set(f64::from(next) / f64::from(SHARE_ALL));
        cut
    }

    /// Samples the process's CPU demand (time run plus time waiting for a core) and the sampler's
    /// own lateness every `interval` and moves the share, until the returned
    /// task is aborted. The cores are those this process
    /// may use ([`usable_cores`]), read once.
    pub fn spawn_sampler(self: Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let cores = usable_cores();
        tracing::debug!(cores, target = self.target, "CPU shedding on");
        tokio::spawn(async move {
            let mut last = (Instant::now(), cpu_demand());
            let mut due = tokio::time::Instant::now() + interval;
            let mut window = Window::default();
            loop {
                tokio::time::sleep_until(due).await;
                let lag = tokio::time::Instant::now().saturating_duration_since(due);
                let now = (Instant::now(), cpu_demand());
                // A late wake-up covers a longer window; the use it reads is
                // still the use over that window.
                window.push(Sample {
                    lag,
                    wall: now.0.duration_since(last.0).as_secs_f64(),
                    demand: now.1.saturating_sub(last.1).as_secs_f64(),
                });
                if let Some((use_share, standing)) = window.reading(cores) {
                    if self.observe(use_share, standing) {
                        window.clear();
                    }
                }
                metrics::gauge!("stockroute_runtime_lag_seconds").set(lag.as_secs_f64());
                last = now;
                due = tokio::time::Instant::now() + interval;
            }
        })
    }
}

/// One sample of the sampler.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// How late the sampler woke.
    lag: Duration,
    /// Wall time since the previous sample, seconds.
    wall: f64,
    /// CPU demand since the previous sample, seconds.
    demand: f64,
}

/// The last samples a decision reads.
///
/// A cut empties it: the samples before a cut describe a load the cut has
/// changed, and deciding on them again would cut once per sample for as long
/// as they stay in view, four cuts (to a third of the share) for one busy
/// moment, a sawtooth whose average admits well under what the cores can
/// serve. After a cut the next decision waits for [`HOLD_SAMPLES`] fresh
/// samples.
#[derive(Debug, Default)]
struct Window {
    samples: std::collections::VecDeque<Sample>,
}

impl Window {
    fn push(&mut self, sample: Sample) {
        if self.samples.len() == WINDOW_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    fn clear(&mut self) {
        self.samples.clear();
    }

    /// CPU demand as a share of `cores`, and the standing lateness (the least
    /// over a full window; none until the window is full), once there are
    /// enough samples to decide on.
    fn reading(&self, cores: f64) -> Option<(f64, Duration)> {
        if self.samples.len() < HOLD_SAMPLES {
            return None;
        }
        let wall: f64 = self.samples.iter().map(|s| s.wall).sum();
        let demand: f64 = self.samples.iter().map(|s| s.demand).sum();
        if wall <= 0.0 || cores <= 0.0 {
            return None;
        }
        let standing = if self.samples.len() == WINDOW_SAMPLES {
            self.samples.iter().map(|s| s.lag).min().unwrap_or_default()
        } else {
            Duration::ZERO
        };
        Some((demand / (wall * cores), standing))
    }
}

/// The cores this process may keep busy: those its affinity allows, or its
/// cgroup's CPU quota when that is smaller. A container limited to half a
/// core saturates at 0.5 of one, so the quota is read as the fraction it is
/// (the standard library rounds it up to whole cores).
pub fn usable_cores() -> f64 {
    let affinity = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let quota = std::fs::read_to_string("/sys/fs/cgroup/cpu.max")
        .ok()
        .and_then(|s| cgroup_v2_quota(&s))
        .or_else(|| {
            let quota = std::fs::read_to_string("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").ok()?;
            let period = std::fs::read_to_string("/sys/fs/cgroup/cpu/cpu.cfs_period_us").ok()?;
            quota_of(quota.trim(), period.trim())
        });
    quota.map_or(affinity, |q| q.min(affinity))
}

/// The quota of a cgroup v2 `cpu.max` (`max 100000` or `50000 100000`).
fn cgroup_v2_quota(text: &str) -> Option<f64> {
    let mut fields = text.split_whitespace();
    quota_of(fields.next()?, fields.next()?)
}

/// `quota / period` in cores, `None` when unlimited or unreadable.
fn quota_of(quota: &str, period: &str) -> Option<f64> {
    let quota: f64 = quota.parse().ok().filter(|q: &f64| *q > 0.0)?;
    let period: f64 = period.parse().ok().filter(|p: &f64| *p > 0.0)?;
    Some(quota / period)
}

/// CPU demand of this process so far: for every live thread, the time it
/// ran plus the time it was runnable but waited for a core, from
/// `/proc/self/task/*/schedstat`; where that cannot be read, the process's
/// CPU time alone. A thread that exits takes its share with it, which reads
/// as a quiet sample, never as a busy one.
fn cpu_demand() -> Duration {
    schedstat_demand().unwrap_or_else(process_cpu)
}

fn schedstat_demand() -> Option<Duration> {
    let mut total_ns = 0u64;
    let mut threads = 0;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(entry) = entry else { continue };
        // A thread may exit between the listing and the read.
        let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        let (ran, waited) = parse_schedstat(&text)?;
        total_ns = total_ns.saturating_add(ran).saturating_add(waited);
        threads += 1;
    }
    (threads > 0).then(|| Duration::from_nanos(total_ns))
}

/// Nanoseconds run and waited, from a schedstat line (`ran waited slices`).
fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_whitespace();
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// CPU time (user and system) of every thread of this process so far.
fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: Duration = Duration::from_millis(5);
    const QUIET: Duration = Duration::from_micros(100);

    fn admitted_of(overload: &Overload, calls: usize) -> usize {
        (0..calls).filter(|_| overload.admits()).count()
    }

    #[test]
    fn schedstat_lines_give_time_run_and_waited() {
        assert_eq!(
            parse_schedstat("355198602 1103227179 957\n"),
            Some((355_198_602, 1_103_227_179))
        );
        assert_eq!(parse_schedstat("garbage"), None);
        assert!(cpu_demand() > Duration::ZERO);
    }

    #[test]
    fn cgroup_quotas_read_as_fractions_of_a_core() {
        assert_eq!(cgroup_v2_quota("50000 100000\n"), Some(0.5));
        assert_eq!(cgroup_v2_quota("max 100000\n"), None);
        assert_eq!(cgroup_v2_quota("garbage"), None);
        assert_eq!(quota_of("-1", "100000"), None, "cgroup v1 unlimited");
        assert_eq!(quota_of("200000", "100000"), Some(2.0));
        assert!(usable_cores() > 0.0);
    }

    #[test]
    fn an_idle_server_admits_everything() {
        let o = Overload::new(90, LAG);
        o.observe(0.5, QUIET);
        assert_eq!(admitted_of(&o, 1_000), 1_000);
    }

    #[test]
    fn saturation_cuts_the_share_and_headroom_gives_it_back() {
        let o = Overload::new(90, LAG);
        for _ in 0..3 {
            o.observe(0.97, QUIET);
        }
        // Three cuts of a quarter: 0.75^3 of the calls.
        let share = o.admit_share();
        assert!((share - 0.421_875).abs() < 1e-6, "share {share}");
        let admitted = admitted_of(&o, 10_000);
        assert!(
            (4_100..=4_340).contains(&admitted),
            "admitted {admitted} of 10,000 at share {share}"
        );
        for _ in 0..20 {
            o.observe(0.5, QUIET);
        }
        assert_eq!(o.admit_share(), 1.0);
        assert_eq!(admitted_of(&o, 1_000), 1_000);
    }

    #[test]
    fn a_late_runtime_is_overload_at_any_cpu_use() {
        // A neighbour has the cores: little CPU of our own, but every task waits.
        let o = Overload::new(90, LAG);
        o.observe(0.2, Duration::from_millis(30));
        assert!((o.admit_share() - 0.75).abs() < 1e-6);
        o.observe(0.2, QUIET);
        assert!((o.admit_share() - 0.8).abs() < 1e-6);
    }

    #[test]
    fn the_share_never_falls_to_nothing() {
        let o = Overload::new(90, LAG);
        for _ in 0..200 {
            o.observe(1.0, QUIET);
        }
        let admitted = admitted_of(&o, 10_000);
        assert!(
            (150..=250).contains(&admitted),
            "admitted {admitted} of 10,000 at the least share"
        );
    }

    #[test]
    fn any_short_run_of_arrivals_gets_close_to_its_share() {
        let o = Overload::new(90, LAG);
        o.observe(1.0, QUIET); // share 0.75
        for _ in 0..50 {
            let admitted = admitted_of(&o, 20);
            assert!((13..=17).contains(&admitted), "admitted {admitted} of 20");
        }
    }

    fn sample(demand: f64, lag: Duration) -> Sample {
        Sample {
            lag,
            wall: 0.025,
            demand: demand * 0.025,
        }
    }

    #[test]
    fn a_cut_waits_for_fresh_samples_before_the_next_decision() {
        let o = Overload::new(90, LAG);
        let mut w = Window::default();
        let decide = |w: &mut Window, demand: f64| {
            w.push(sample(demand, QUIET));
            match w.reading(1.0) {
                Some((use_share, lag)) if o.observe(use_share, lag) => {
                    w.clear();
                    Some(true)
                }
                Some(_) => Some(false),
                None => None,
            }
        };
        assert_eq!(decide(&mut w, 0.5), None, "one sample is not enough");
        assert_eq!(decide(&mut w, 0.5), Some(false));
        assert_eq!(decide(&mut w, 2.0), Some(true), "busy: cut");
        // The busy sample is gone with the cut: the next sample alone decides nothing,
        // and two quiet ones let the share grow again.
        assert_eq!(decide(&mut w, 0.5), None);
        assert_eq!(decide(&mut w, 0.5), Some(false));
        assert!((o.admit_share() - 0.8).abs() < 1e-6, "{}", o.admit_share());
    }

    #[test]
    fn lateness_counts_only_over_a_full_window() {
        let mut w = Window::default();
        let late = Duration::from_millis(30);
        w.push(sample(0.2, late));
        w.push(sample(0.2, late));
        assert_eq!(w.reading(1.0).map(|r| r.1), Some(Duration::ZERO));
        w.push(sample(0.2, late));
        w.push(sample(0.2, late));
        assert_eq!(w.reading(1.0).map(|r| r.1), Some(late));
        // One punctual wake-up in the window: no standing queue.
        w.push(sample(0.2, QUIET));
        assert_eq!(w.reading(1.0).map(|r| r.1), Some(QUIET));
    }

    /// Runs the controller against a server whose CPU demand follows the
    /// share admitted one sample earlier: `load` times its capacity offered,
    /// a refusal costing `refusal` of an admitted call. The mean share over
    /// the last three quarters of 2,000 samples.
    fn steady_share(load: f64, refusal: f64) -> f64 {
        let o = Overload::new(90, LAG);
        let mut w = Window::default();
        let mut previous = 1.0;
        let mut shares = Vec::new();
        for _ in 0..2_000 {
            let demand = (load * (previous + (1.0 - previous) * refusal)).min(1.0);
            previous = o.admit_share();
            w.push(sample(demand, QUIET));
            if let Some((use_share, lag)) = w.reading(1.0) {
                if o.observe(use_share, lag) {
                    w.clear();
                }
            }
            shares.push(o.admit_share());
        }
        let tail = &shares[500..];
        tail.iter().sum::<f64>() / tail.len() as f64
    }

    #[test]
    fn under_steady_overload_the_share_settles_near_what_the_cores_serve() {
        // The share that keeps demand at the 90 % target:
        // load × (s + (1 − s) × refusal) = 0.9.
        for (load, refusal) in [(1.2, 0.1), (1.5, 0.1), (1.5, 0.25), (3.0, 0.05)] {
            let ideal = (0.9 / load - refusal) / (1.0 - refusal);
            let mean = steady_share(load, refusal);
            assert!(
                mean >= 0.85 * ideal && mean <= 1.1 * ideal,
                "load {load}, refusal {refusal}: mean share {mean:.3}, ideal {ideal:.3}"
            );
        }
    }

    #[tokio::test]
    async fn the_sampler_reads_real_cpu_use() {
        // Burn CPU on every usable core while the sampler watches: it must
        // see saturation and cut the share. (A test that the reading works,
        // not a timing test: nothing else can make the share fall.)
        let o = Arc::new(Overload::new(50, Duration::from_secs(3600)));
        let sampler = Arc::clone(&o).spawn_sampler(Duration::from_millis(10));
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let burners: Vec<_> = (0..cores)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while o.admit_share() >= 1.0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for b in burners {
            b.join().unwrap();
        }
        sampler.abort();
        assert!(
            o.admit_share() < 1.0,
            "the sampler never saw the busy cores"
        );
    }
}
