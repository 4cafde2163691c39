//! Bounded waits for another party's answer (a station's answer to an
//! eject), through a clock a test can hold.
//!
//! In production the bound is a real timer. A test that must see the
//! answer (a station that refuses: 502) cannot let a real timer race it: on
//! a loaded machine the timer may fire first (504). With [`Timeouts::Manual`]
//! no wait ends by time; the test ends the waits running at a moment it
//! chooses ([`ManualTimeouts::fire`], after [`ManualTimeouts::wait_for_waiters`]),
//! so each answer it checks has one possible cause.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::watch;

/// How a bounded wait ends when the answer does not come.
#[derive(Debug, Clone, Default)]
pub enum Timeouts {
    /// After the wait's own limit (production).
    #[default]
    Real,
    /// Only when the test fires the clock.
    Manual(ManualTimeouts),
}

impl Timeouts {
    /// `fut`'s output, or `None` when the wait ended first (after `limit`,
    /// or when a manual clock fired).
    pub async fn timeout<F: Future>(&self, limit: Duration, fut: F) -> Option<F::Output> {
        match self {
            Timeouts::Real => tokio::time::timeout(limit, fut).await.ok(),
            Timeouts::Manual(clock) => clock.timeout(fut).await,
        }
    }
}

/// A clock that ends waits only when told (tests).
#[derive(Debug, Clone)]
pub struct ManualTimeouts {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Moved on by each [`ManualTimeouts::fire`].
    fired: watch::Sender<u64>,
    /// Waits running now.
    waiting: AtomicUsize,
}

impl Default for ManualTimeouts {
    fn default() -> Self {
        ManualTimeouts { inner: Arc::new(Inner { fired: watch::Sender::new(0), waiting: AtomicUsize::new(0) }) }
    }
}

/// Counts a wait while it runs, also when its future is dropped midway.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ManualTimeouts {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many waits are running.
    pub fn waiters(&self) -> usize {
        self.inner.waiting.load(Ordering::SeqCst)
    }

    /// Ends every wait running now as timed out (waits started later are
    /// not affected).
    pub fn fire(&self) {
        self.inner.fired.send_modify(|n| *n += 1);
    }

    /// Waits (in real time, at most `limit`) until `n` waits are running;
    /// whether they are.
    pub async fn wait_for_waiters(&self, n: usize, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.waiters() < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    async fn timeout<F: Future>(&self, fut: F) -> Option<F::Output> {
        // Subscribed before the wait counts as running, so a fire that
        // follows `waiters() >= n` always reaches it.
        let mut fired = self.inner.fired.subscribe();
        self.inner.waiting.fetch_add(1, Ordering::SeqCst);
        let _running = Waiting(&self.inner.waiting);
        tokio::select! {
            biased;
            out = fut => Some(out),
            _ = fired.changed() => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_ends_only_the_waits_running_when_it_fires() {
        let clock = ManualTimeouts::new();
        let timeouts = Timeouts::Manual(clock.clone());
        // An answer ends the wait whatever the limit.
        assert_eq!(timeouts.timeout(Duration::ZERO, async { 7 }).await, Some(7));
        let waiting = {
            let timeouts = timeouts.clone();
            tokio::spawn(async move { timeouts.timeout(Duration::ZERO, std::future::pending::<()>()).await })
        };
        assert!(clock.wait_for_waiters(1, Duration::from_secs(5)).await);
        clock.fire();
        assert_eq!(waiting.await.unwrap(), None);
        assert_eq!(clock.waiters(), 0);
        let real = Timeouts::Real.timeout(Duration::from_millis(1), std::future::pending::<()>()).await;
        assert_eq!(real, None);
    }
}
