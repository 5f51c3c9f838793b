//! The one retry mechanism of weir's AWS calls: backon's exponential backoff with jitter (so
//! that many clients retrying the same throttled shard or bucket spread out instead of retrying
//! in step), tried again only while the error is [`Transient`], each retry counted per
//! [`Service`] ([`retries`], exported as `weir_aws_retries_total{service}`) and logged with what
//! was being done.
//!
//! Two ways to use it: [`retry`] (and [`retry_with`], for a call that needs `&mut` state)
//! wraps a whole call in backon's `Retryable`; [`Backoff`] gives the same delays, counted the
//! same way, to the two loops that must change the request between attempts (the Kinesis reader
//! renews its shard iterator, the writer resends only the refused entries).

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder, Retryable, RetryableWithContext};

use crate::Transient;

/// Retries after which each further one is logged as a warning by [`Backoff::loud`] users.
pub const QUIET_ATTEMPTS: u32 = 5;

/// An AWS service weir calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// Kinesis Data Streams.
    Kinesis,
    /// S3.
    S3,
    /// DynamoDB.
    DynamoDb,
    /// KMS (signing deployments, and the public keys that verify them).
    Kms,
}

impl Service {
    /// Every service, in the order of their series.
    pub const ALL: [Service; 4] = [Service::Kinesis, Service::S3, Service::DynamoDb, Service::Kms];

    /// The service's name, as the `service` label has it.
    pub fn name(self) -> &'static str {
        match self {
            Service::Kinesis => "kinesis",
            Service::S3 => "s3",
            Service::DynamoDb => "dynamodb",
            Service::Kms => "kms",
        }
    }
}

static RETRIES: [AtomicU64; Service::ALL.len()] = [const { AtomicU64::new(0) }; Service::ALL.len()];

/// Calls to `service` tried again so far by this process, by every path.
pub fn retries(service: Service) -> u64 {
    RETRIES[service as usize].load(Relaxed)
}

fn count(service: Service) {
    RETRIES[service as usize].fetch_add(1, Relaxed);
}

/// How long to wait between attempts, and how many to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    first: Duration,
    max: Duration,
    attempts: Option<usize>,
}

impl Policy {
    /// A read at start, which gives up after five attempts in all: from 200 ms up to 2 s.
    pub const READ: Policy = Policy::forever(Duration::from_millis(200), Duration::from_secs(2)).attempts(5);
    /// A write weir keeps trying (a checkpoint, a batch of dead letters): from 200 ms up to
    /// 10 s, without end while the error is transient.
    pub const WRITE: Policy = Policy::forever(Duration::from_millis(200), Duration::from_secs(10));

    /// Backoff from `first` (plus jitter up to as much again), doubling, up to `max`, forever.
    pub const fn forever(first: Duration, max: Duration) -> Self {
        Self { first, max, attempts: None }
    }

    /// The same, giving up after `attempts` in all (the first included).
    pub const fn attempts(self, attempts: usize) -> Self {
        Self { attempts: Some(attempts), ..self }
    }

    fn builder(self) -> ExponentialBuilder {
        let builder =
            ExponentialBuilder::new().with_min_delay(self.first).with_max_delay(self.max).with_jitter();
        match self.attempts {
            Some(attempts) => builder.with_max_times(attempts.saturating_sub(1)),
            None => builder.without_max_times(),
        }
    }
}

/// Call `call` until it succeeds, fails in a way that is not [`Transient`], or `policy` runs
/// out of attempts; each retry is counted for `service` and logged with `what` was being done
/// (such as "write checkpoint 7 to s3://bucket/prefix").
pub async fn retry<T, E, Fut, F>(
    service: Service,
    policy: Policy,
    what: impl Display,
    call: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Transient + Display,
{
    call.retry(policy.builder())
        .when(|e: &E| e.is_transient())
        .notify(|e: &E, delay| retried(service, &what, e, delay))
        .await
}

/// [`retry`] for a call that borrows `context` mutably: each attempt gets it and hands it back.
pub async fn retry_with<C, T, E, Fut, F>(
    service: Service,
    policy: Policy,
    what: impl Display,
    context: C,
    call: F,
) -> (C, Result<T, E>)
where
    F: FnMut(C) -> Fut,
    Fut: Future<Output = (C, Result<T, E>)>,
    E: Transient + Display,
{
    call.retry(policy.builder())
        .context(context)
        .when(|e: &E| e.is_transient())
        .notify(|e: &E, delay| retried(service, &what, e, delay))
        .await
}

fn retried(service: Service, what: &dyn Display, error: &dyn Display, delay: Duration) {
    count(service);
    tracing::warn!("cannot {what} ({error}); trying again in {delay:?}");
}

/// The delays of one run of retries, for a loop that changes its request between attempts;
/// each delay taken counts a retry of `service`.
#[derive(Debug)]
pub struct Backoff {
    service: Service,
    delays: ExponentialBackoff,
    attempts: u32,
    cap: Duration,
}

impl Backoff {
    /// Delays under `policy` (its number of attempts is not enforced: the loop decides).
    pub fn new(service: Service, policy: Policy) -> Self {
        let delays = Policy { attempts: None, ..policy }.builder().build();
        Self { service, delays, attempts: 0, cap: policy.max }
    }

    /// The wait before the next attempt; counts the retry.
    pub fn next_delay(&mut self) -> Duration {
        self.attempts += 1;
        count(self.service);
        // Without a limit of attempts the backoff never runs out; the cap is only a fallback.
        self.delays.next().unwrap_or(self.cap)
    }

    /// Retries so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether the last failure should be reported as a warning (after [`QUIET_ATTEMPTS`]).
    pub fn loud(&self) -> bool {
        self.attempts > QUIET_ATTEMPTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Failure {
        Busy,
        Denied,
    }

    impl Transient for Failure {
        fn is_transient(&self) -> bool {
            *self == Failure::Busy
        }
    }

    impl Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    /// Runs `f` with the clock paused, so backoff delays pass at once.
    fn paused<T>(f: impl Future<Output = T>) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build();
        runtime.map(|rt| rt.block_on(f)).unwrap_or_else(|e| panic!("a test runtime: {e}"))
    }

    // The counters are per process and tests run side by side: each test that reads a counter
    // uses a service no other test retries.

    #[test]
    fn a_transient_failure_is_tried_again_and_each_retry_counted() {
        let before = retries(Service::Kinesis);
        let mut calls = 0;
        let result: Result<u32, Failure> = paused(retry(Service::Kinesis, Policy::WRITE, "put", || {
            calls += 1;
            let n = calls;
            async move { if n < 4 { Err(Failure::Busy) } else { Ok(n) } }
        }));
        assert_eq!(result, Ok(4));
        assert_eq!(retries(Service::Kinesis) - before, 3);
    }

    #[test]
    fn a_failure_retrying_cannot_fix_stops_at_once_with_its_reason() {
        let mut calls = 0;
        let result: Result<(), Failure> = paused(retry(Service::S3, Policy::WRITE, "put", || {
            calls += 1;
            async { Err(Failure::Denied) }
        }));
        assert_eq!(result, Err(Failure::Denied));
        assert_eq!(calls, 1, "no second attempt");
    }

    #[test]
    fn a_bounded_policy_gives_up_after_its_attempts_with_the_last_error() {
        let before = retries(Service::DynamoDb);
        let mut calls = 0;
        let (calls_seen, result) = paused(retry_with(
            Service::DynamoDb,
            Policy::READ,
            "scan",
            &mut calls,
            |calls: &mut u32| async move {
                *calls += 1;
                (calls, Err::<(), _>(Failure::Busy))
            },
        ));
        assert_eq!(result, Err(Failure::Busy));
        assert_eq!(*calls_seen, 5, "Policy::READ makes five attempts in all");
        assert_eq!(retries(Service::DynamoDb) - before, 4);
    }

    #[test]
    fn backoff_delays_grow_to_the_cap_with_jitter_and_never_run_out() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(Service::S3, Policy::forever(ms(50), ms(400)).attempts(2));
        let got: Vec<Duration> = (0..40).map(|_| b.next_delay()).collect();
        assert!(got[0] >= ms(50) && got[0] <= ms(100), "{got:?}");
        assert!(got[1] >= ms(100) && got[1] <= ms(200), "{got:?}");
        assert!(got.iter().all(|&x| x <= ms(800)), "jitter adds at most the delay itself: {got:?}");
        assert!(got[39] >= ms(400), "at the cap after many attempts: {got:?}");
        assert_eq!(b.attempts(), 40);
        assert!(b.loud());
    }
}
