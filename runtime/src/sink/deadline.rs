//! The deadline on a lease group worker's outputs, moved forward by every successful renewal
//! of its leases, after which the worker must assume the others took them and stop writing.
//! (Not to be confused with fencing, which is another writer taking over: a checkpoint
//! pointer or a lease counter that moved.)
//!
//! Others judge a worker dead once its heartbeat has not changed for the failover time, by
//! their own clocks, from when they first saw its last heartbeat, which was written after the
//! renewal was sent. So the deadline is the time the last successful renewal was *sent* plus
//! 90% of the failover time: it passes before anyone can take the leases, as long as clocks
//! run at roughly the same rate (they need not agree on the time). A process paused past it
//! (SIGSTOP, a long GC-like stall, a partition) finds it passed when it wakes, and writes
//! nothing more.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Shared between the lease coordinator (which moves it) and the sink (which checks it).
#[derive(Clone, Debug)]
pub struct WriteDeadline {
    origin: Instant,
    /// Milliseconds after `origin` until which writes are allowed (0: never).
    until_ms: Arc<AtomicU64>,
}

impl Default for WriteDeadline {
    fn default() -> Self {
        Self { origin: Instant::now(), until_ms: Arc::new(AtomicU64::new(0)) }
    }
}

impl WriteDeadline {
    /// A renewal sent at `sent` succeeded: writes are allowed until `sent` + 90% of `failover`.
    pub fn renewed(&self, sent: Instant, failover: Duration) {
        let until = sent.saturating_duration_since(self.origin) + failover.mul_f64(0.9);
        self.until_ms.fetch_max(until.as_millis() as u64, Ordering::AcqRel);
    }

    /// Every lease is gone: no write is allowed until the next renewal.
    pub fn close(&self) {
        self.until_ms.store(0, Ordering::Release);
    }

    /// Whether writes are allowed now.
    pub fn is_open(&self) -> bool {
        (self.origin.elapsed().as_millis() as u64) < self.until_ms.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_opens_on_renewal_and_closes_before_the_others_may_take_over() {
        let deadline = WriteDeadline::default();
        assert!(!deadline.is_open(), "closed before the first renewal");
        let sent = Instant::now();
        deadline.renewed(sent, Duration::from_secs(10));
        assert!(deadline.is_open());
        let long_ago = Instant::now() - Duration::from_secs(20);
        let old = WriteDeadline { origin: long_ago, until_ms: Arc::new(AtomicU64::new(0)) };
        old.renewed(long_ago, Duration::from_secs(10));
        assert!(!old.is_open(), "a renewal sent 20 s ago does not cover now with a 10 s failover");
        deadline.close();
        assert!(!deadline.is_open());
    }
}
