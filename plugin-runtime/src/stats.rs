//! Per-plugin call counters and latency percentiles for `status()`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Latencies of the last calls; enough for stable p99 without unbounded memory.
const WINDOW: usize = 2048;

#[derive(Default)]
pub(crate) struct Stats {
    calls: AtomicU64,
    failures: AtomicU64,
    recent_us: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    samples: Vec<u32>,
    next: usize,
}

impl Stats {
    pub fn record(&self, micros: u64, failed: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let sample = u32::try_from(micros).unwrap_or(u32::MAX);
        // A poisoned lock only means another recorder panicked; the samples
        // are still plain numbers, so keep using them.
        let mut ring = self.recent_us.lock().unwrap_or_else(|p| p.into_inner());
        if ring.samples.len() < WINDOW {
            ring.samples.push(sample);
        } else {
            let i = ring.next;
            ring.samples[i] = sample;
        }
        ring.next = (ring.next + 1) % WINDOW;
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let mut samples = self.recent_us.lock().unwrap_or_else(|p| p.into_inner()).samples.clone();
        samples.sort_unstable();
        StatsSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            p50_us: percentile(&samples, 50),
            p99_us: percentile(&samples, 99),
        }
    }
}

pub(crate) struct StatsSnapshot {
    pub calls: u64,
    pub failures: u64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
}

/// Nearest-rank percentile of sorted samples.
pub(crate) fn percentile(sorted: &[u32], pct: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted.get(rank - 1).map(|v| u64::from(*v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_over_a_window() {
        let stats = Stats::default();
        for us in 1..=100 {
            stats.record(us, us % 10 == 0);
        }
        let snap = stats.snapshot();
        assert_eq!(snap.calls, 100);
        assert_eq!(snap.failures, 10);
        assert_eq!(snap.p50_us, Some(50));
        assert_eq!(snap.p99_us, Some(99));
    }
}
