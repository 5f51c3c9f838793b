//! Exponential backoff with full jitter (the AWS architecture blog's recommendation): attempt
//! `n` waits a random time up to `base * 2^n`, capped, so that many clients retrying the same
//! throttled shard spread out instead of retrying in step.

use std::time::Duration;

use rand::Rng;

/// A backoff policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's delay.
    pub base: Duration,
    /// The largest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (1 for the first retry): random, at least 1 ms,
    /// at most `min(base * 2^(attempt-1), max)`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let millis = rand::rng().random_range(0..=ceiling.as_millis() as u64);
        Duration::from_millis(millis.max(1))
    }

    /// The largest delay retry number `attempt` can get.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_cap_and_delays_stay_under_it() {
        let b = Backoff { base: Duration::from_millis(50), max: Duration::from_secs(5) };
        assert_eq!(b.ceiling(1), Duration::from_millis(50));
        assert_eq!(b.ceiling(2), Duration::from_millis(100));
        assert_eq!(b.ceiling(4), Duration::from_millis(400));
        assert_eq!(b.ceiling(30), Duration::from_secs(5));
        for attempt in 1..40 {
            let d = b.delay(attempt);
            assert!(d >= Duration::from_millis(1) && d <= b.ceiling(attempt), "{d:?} at {attempt}");
        }
    }
}
