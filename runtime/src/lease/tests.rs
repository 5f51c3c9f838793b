//! The lease loop ([`Coordinator`]) against an in-memory table ([`MemoryLeases`]) under tokio's
//! paused clock: taking, balancing, renewing, expiring, stealing, releasing and fencing, each
//! in virtual seconds. The DynamoDB table's own conditions are tested against the emulator
//! (`runtime/tests/leases.rs`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::registry::Registry;
use weir_kinesis::{HashRange, ShardInfo};

use super::worker::{TermEnd, Terms, WorkerError};
use super::{Coordinator, CoordinatorOptions, Lease, LeaseStore, MemoryLeases, Worker};
use crate::metrics::LeaseMetrics;
use crate::pipeline::Ending;

const FAILOVER: Duration = Duration::from_secs(10);

/// A table with `n` shards side by side (no parents).
async fn table(n: u128) -> Arc<MemoryLeases> {
    let table = Arc::new(MemoryLeases::new("leases"));
    table.open("kinesis://trades", "checkpoints").await.unwrap();
    let width = u128::MAX / n;
    let shards: Vec<ShardInfo> = (0..n)
        .map(|i| ShardInfo {
            id: format!("shard-{i}"),
            parents: Vec::new(),
            closed: false,
            hash_range: HashRange {
                start: i * width,
                end: if i + 1 == n { u128::MAX } else { (i + 1) * width - 1 },
            },
        })
        .collect();
    table.add(&shards).await.unwrap();
    table
}

/// A worker's lease loop, with terms that end at once on every change (as the leases bench
/// runs them): the leases being given up are given up.
struct Member {
    coordinator: Arc<Coordinator>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Member {
    async fn start(table: &Arc<MemoryLeases>, id: &str) -> Self {
        let metrics = LeaseMetrics::register(&mut Registry::default());
        let store: Arc<dyn LeaseStore> = table.clone();
        let options = CoordinatorOptions::new(id.to_string(), FAILOVER);
        let coordinator = Coordinator::start(store, None, options, metrics).await.unwrap();
        let lease_loop = tokio::spawn(coordinator.clone().run());
        let terms = tokio::spawn({
            let coordinator = coordinator.clone();
            async move {
                let mut generation = coordinator.generation();
                while generation.changed().await.is_ok() {
                    coordinator.after_term().await.unwrap();
                }
            }
        });
        Self { coordinator, tasks: vec![lease_loop, terms] }
    }

    fn held(&self) -> usize {
        self.coordinator.term_leases().len()
    }

    /// The process dies: nothing is given up, nothing renewed.
    fn crash(&self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// Wait (in virtual time) until `done`, for at most `limit`; how long it took.
async fn within(limit: Duration, done: impl Fn() -> bool) -> Duration {
    let start = tokio::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not done within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_lone_worker_takes_every_lease_and_renews_them() {
    let table = table(4).await;
    let a = Member::start(&table, "a").await;
    within(Duration::from_secs(5), || a.held() == 4).await;
    let before = table.group().await.unwrap().workers["a"].heartbeat;
    tokio::time::sleep(FAILOVER * 3).await;
    let after = table.group().await.unwrap().workers["a"].heartbeat;
    assert!(after >= before + 6, "renewed every failover time / 3: heartbeat {before} -> {after}");
    assert!(a.coordinator.deadline.is_open(), "renewals keep the write deadline ahead");
    let owners: Vec<_> = table.leases().await.unwrap().into_iter().map(|l| l.owner).collect();
    assert_eq!(owners, vec![Some("a".to_string()); 4]);
}

#[tokio::test(start_paused = true)]
async fn a_joining_worker_gets_its_share_from_the_one_holding_every_lease() {
    let table = table(6).await;
    let a = Member::start(&table, "a").await;
    within(Duration::from_secs(5), || a.held() == 6).await;
    let b = Member::start(&table, "b").await;
    within(Duration::from_secs(30), || a.held() == 3 && b.held() == 3).await;
    let leases = table.leases().await.unwrap();
    assert_eq!(leases.iter().filter(|l| l.owner.as_deref() == Some("b")).count(), 3);
    assert!(leases.iter().all(|l| l.counter >= 1), "every lease was taken at least once");
}

#[tokio::test(start_paused = true)]
async fn three_workers_starting_together_over_four_leases_all_get_one() {
    let table = table(4).await;
    let (a, b, c) =
        tokio::join!(Member::start(&table, "a"), Member::start(&table, "b"), Member::start(&table, "c"));
    let members = [&a, &b, &c];
    within(Duration::from_secs(30), || members.iter().all(|m| m.held() >= 1)).await;
    let mut held: Vec<usize> = members.iter().map(|m| m.held()).collect();
    held.sort();
    assert_eq!(held, [1, 1, 2]);
}

#[tokio::test(start_paused = true)]
async fn a_silent_worker_is_expelled_after_the_failover_time_and_its_leases_taken_over() {
    let table = table(4).await;
    let a = Member::start(&table, "a").await;
    let b = Member::start(&table, "b").await;
    within(Duration::from_secs(30), || a.held() == 2 && b.held() == 2).await;
    a.crash();
    let took = within(FAILOVER * 4, || b.held() == 4).await;
    assert!(took >= FAILOVER, "taken over only once the failover time passed ({took:?})");
    assert!(!table.group().await.unwrap().workers.contains_key("a"), "a was expelled");
    assert!(!a.coordinator.deadline.is_open(), "a's own deadline passed before b could take over");
    assert!(b.coordinator.metrics().stolen.get() >= 2, "b counts the leases it took from a");
}

#[tokio::test(start_paused = true)]
async fn a_worker_whose_lease_was_taken_cannot_record_a_checkpoint_or_release_it() {
    let table = table(2).await;
    let a = Member::start(&table, "a").await;
    within(Duration::from_secs(5), || a.held() == 2).await;
    let counter = a.coordinator.counter("shard-0").unwrap();
    a.crash();
    let b = Member::start(&table, "b").await;
    within(FAILOVER * 4, || b.held() == 2).await;
    let at = jiff::Timestamp::now();
    let recorded =
        table.record_checkpoint("shard-0", "a", counter, "a.ckpt", Some("9"), None, at).await.unwrap();
    assert!(!recorded, "a's conditional write on its old counter is refused");
    assert!(!table.release("shard-0", "a", counter, true).await.unwrap());
    let row = table.leases().await.unwrap().remove(0);
    assert_eq!((row.owner.as_deref(), row.checkpoint, row.finished), (Some("b"), None, false));
    assert!(row.counter > counter, "the new owner's counter fences the old one's writes");
}

#[tokio::test(start_paused = true)]
async fn a_stopping_worker_gives_every_lease_up_and_the_other_takes_them_at_once() {
    let table = table(4).await;
    let a = Member::start(&table, "a").await;
    let b = Member::start(&table, "b").await;
    within(Duration::from_secs(30), || a.held() == 2 && b.held() == 2).await;
    a.coordinator.stop().await.unwrap();
    assert!(!table.group().await.unwrap().workers.contains_key("a"), "a left the group");
    let took = within(FAILOVER, || b.held() == 4).await;
    assert!(took < FAILOVER / 2, "taken within a poll or two, not after the failover time ({took:?})");
    assert!(!a.coordinator.deadline.is_open(), "a stopped writing when it left");
}

/// Terms over shards with nothing left to read: each ends at once, as when every shard held
/// went idle under `--until-idle`, and notes the shards it was given.
struct IdleTerms(Arc<Mutex<BTreeSet<String>>>);

#[async_trait::async_trait]
impl Terms for IdleTerms {
    async fn run(&mut self, term: &[Lease], _rows: &[Lease], _end: TermEnd) -> Result<Ending, WorkerError> {
        let mut read = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        read.extend(term.iter().map(|lease| lease.shard.clone()));
        Ok(Ending::EndOfInput)
    }
}

#[tokio::test(start_paused = true)]
async fn a_worker_with_until_idle_does_not_end_while_a_lease_is_left_to_take() {
    let table = table(4).await;
    // b joined and went silent before taking anything: until it is expelled (after the
    // failover time) a may take only its share, two leases, and its first term goes idle.
    table.join("b", 1).await.unwrap();
    let metrics = LeaseMetrics::register(&mut Registry::default());
    let options = CoordinatorOptions::new("a".to_string(), FAILOVER);
    let until_idle = Some(Duration::from_secs(3));
    let store: Arc<dyn LeaseStore> = table.clone();
    let worker = Worker::join(store, "kinesis://trades", "checkpoints", None, options, until_idle, metrics)
        .await
        .unwrap();
    let read = Arc::new(Mutex::new(BTreeSet::new()));
    let ending = worker.run(&mut IdleTerms(read.clone()), std::future::pending()).await.unwrap();
    assert_eq!(ending, Ending::EndOfInput);
    let read = read.lock().unwrap().clone();
    assert_eq!(read.len(), 4, "b's share is read too, once b is expelled: {read:?}");
    let left = table.leases().await.unwrap();
    assert!(left.iter().all(|l| l.owner.is_none()), "a gave every lease up as it ended: {left:#?}");
}

/// The leases bench's phases at a small size. After the joins the group settled at 7, 7, 7,
/// 7, 7 and 5 of 40 over 6 (floor 6) and stayed there: the short worker had asked the others
/// to look again when it joined, less than `ASK_EVERY` before it found itself short again, so
/// it did not ask, and with the group row unchanged it never scanned (nor asked) again.
#[tokio::test(start_paused = true)]
async fn eight_workers_then_five_leave_then_three_join_each_settle_between_floor_and_ceiling_plus_one() {
    let table = table(40).await;
    let balanced = |members: &[&Member]| {
        let held: Vec<usize> = members.iter().map(|m| m.held()).collect();
        let (low, high) = (40 / members.len(), 40usize.div_ceil(members.len()) + 1);
        held.iter().sum::<usize>() == 40 && held.iter().all(|h| (low..=high).contains(h))
    };
    let mut members = Vec::new();
    for i in 0..8 {
        members.push(Member::start(&table, &format!("worker-{i:02}")).await);
    }
    within(Duration::from_secs(60), || balanced(&members.iter().collect::<Vec<_>>())).await;
    for leaving in members.drain(..5) {
        leaving.coordinator.stop().await.unwrap();
        leaving.crash();
    }
    within(Duration::from_secs(60), || balanced(&members.iter().collect::<Vec<_>>())).await;
    for i in 0..3 {
        members.push(Member::start(&table, &format!("joined-{i}")).await);
    }
    let all: Vec<&Member> = members.iter().collect();
    within(Duration::from_secs(60), || balanced(&all)).await;
}
