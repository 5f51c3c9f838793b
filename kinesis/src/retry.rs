//! The one retry policy of weir's AWS calls: exponential backoff with jitter (backon's), so
//! that many clients retrying the same throttled shard spread out instead of retrying in step.
//! Each caller picks its first and longest delay; transient failures are retried without end
//! (a stream job waits for Kinesis rather than giving up), and each caller warns once a retry
//! has failed [`QUIET_ATTEMPTS`] times.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Attempts after which each further retry is logged as a warning.
pub const QUIET_ATTEMPTS: u32 = 5;

/// Backoff from `first` (plus jitter up to as much again), doubling, up to `max`, forever.
pub const fn policy(first: Duration, max: Duration) -> ExponentialBuilder {
    ExponentialBuilder::new().with_min_delay(first).with_max_delay(max).with_jitter().without_max_times()
}

/// The delays of one run of retries under `policy`.
pub fn delays(policy: ExponentialBuilder) -> Delays {
    Delays { backoff: policy.build(), attempt: 0, max: Duration::ZERO }
}

/// Successive delays of a policy, with the attempt count.
#[derive(Debug)]
pub struct Delays {
    backoff: ExponentialBackoff,
    attempt: u32,
    max: Duration,
}

impl Delays {
    /// The wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.attempt += 1;
        let delay = self.backoff.next().unwrap_or(self.max);
        self.max = self.max.max(delay);
        delay
    }

    /// Attempts that failed so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Whether the last failure should be reported as a warning.
    pub fn loud(&self) -> bool {
        self.attempt > QUIET_ATTEMPTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_never_run_out() {
        let ms = Duration::from_millis;
        let mut d = delays(policy(ms(50), ms(400)));
        let got: Vec<Duration> = (0..40).map(|_| d.next_delay()).collect();
        assert!(got[0] >= ms(50) && got[0] <= ms(100), "{got:?}");
        assert!(got[1] >= ms(100) && got[1] <= ms(200), "{got:?}");
        assert!(got.iter().all(|&x| x <= ms(800)), "jitter adds at most the delay itself: {got:?}");
        assert!(got[39] >= ms(400), "at the cap after many attempts: {got:?}");
        assert_eq!(d.attempts(), 40);
        assert!(d.loud());
    }
}
