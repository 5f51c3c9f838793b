//! `weir run`'s command line: where records come from and go, the operator, checkpoints and
//! stopping, the Kinesis source, a deployed operator's watch, the generator, the metrics.

use std::time::Duration;

use clap::Args;
use weir::location::Location;

use super::{AwsArgs, HostArgs, TrustArgs, parse_duration, parse_setting};

/// How `weir run` reports its counters every stats interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsFormat {
    /// A summary line in the log.
    Log,
    /// CloudWatch Embedded Metric Format lines on standard error.
    Emf,
}

/// Arguments of `weir run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Where records come from: a Kinesis stream (`kinesis://NAME` or a stream ARN; every
    /// shard read concurrently), `generator` (the built-in trade generator), a file of JSON
    /// lines, or `-` for standard input. A file or standard input ends at end of file: every
    /// pending window is emitted and weir exits 0.
    #[arg(long, env = "WEIR_SOURCE", default_value = "generator", value_name = "LOCATION")]
    pub source: Location,

    /// Where results go: a file or `-` for standard output (one JSON object per line), or a
    /// Kinesis stream (`kinesis://NAME` or a stream ARN; partition key = the result's key).
    #[arg(long, env = "WEIR_SINK", default_value = "-", value_name = "LOCATION")]
    pub sink: Location,

    /// The operator: a `.wasm` component file, `s3://BUCKET/PREFIX` (what `weir deploy` put
    /// there: the manifest's component, checked against its sha256, with the manifest's
    /// settings, which --set overrides), or `builtin:sliding-window-max` (the default,
    /// embedded in weir).
    #[arg(
        long,
        env = "WEIR_OPERATOR",
        default_value = "builtin:sliding-window-max",
        value_name = "LOCATION"
    )]
    pub operator: Location,

    /// An operator setting, repeatable, or several separated by commas (so WEIR_SET can hold
    /// them all). For sliding-window-max: window=60s, slide=10s, time=event|processing,
    /// out-of-orderness=1s, max-ahead=1d, event-time-field=EVENT_TIME, ticker-field=TICKER,
    /// price-field=PRICE.
    #[arg(long = "set", env = "WEIR_SET", value_delimiter = ',', value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,

    /// Where records that cannot be processed go (unparseable, refused or late trades, records
    /// the operator fails on, results the sink cannot write), one JSON object each with the
    /// reason, shard, partition key, arrival time and the record (text, or base64): a file
    /// (appended to), `kinesis://STREAM` (a record each), or `s3://BUCKET/PREFIX` (batched into
    /// JSON-lines objects). Default: standard error.
    #[arg(long, env = "WEIR_DEAD_LETTER", value_name = "LOCATION")]
    pub dead_letter: Option<Location>,

    /// What to do with a record the operator fails on (a trap, an error, a limit): `dead-letter`
    /// sets it aside with the reason and goes on; `halt` stops weir with an error naming it,
    /// processing nothing after it (the last checkpoint holds everything before).
    #[arg(
        long,
        env = "WEIR_ON_OPERATOR_ERROR",
        default_value = "dead-letter",
        value_name = "dead-letter|halt"
    )]
    pub on_operator_error: OnErrorArg,

    /// Operator instances, each on its own thread. Every record goes to the instance that
    /// owns its grouping key (for sliding-window-max the TICKER field; see `weir check`),
    /// whatever shard or partition key it came with. Reading and writing run on one more
    /// thread per core the instances leave free, at least one (TOKIO_WORKER_THREADS sets it).
    /// Default: the machine's available cores.
    #[arg(long, env = "WEIR_PARALLELISM", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub parallelism: Option<u16>,

    /// No longer used, accepted so that existing scripts keep working: a shard stops holding
    /// back the watermark after an empty read that found it caught up, not after a time
    /// (a time-based idleness made in-order records late after a producer pause).
    #[arg(long, env = "WEIR_IDLE_AFTER", hide = true, value_parser = parse_duration, value_name = "DURATION")]
    pub idle_after: Option<Duration>,

    /// Records per operator call, at most: a source closes a batch once one instance's share
    /// of it holds this many.
    #[arg(long, env = "WEIR_BATCH_SIZE", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: u32,

    /// How often processing time is passed to the operator when no records arrive, so that
    /// processing-time windows fire on idle input.
    #[arg(long, env = "WEIR_TICK_INTERVAL", default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub tick_interval: Duration,

    /// How often counters are reported (see --metrics-format).
    #[arg(long, env = "WEIR_STATS_INTERVAL", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub stats_interval: Duration,

    /// Serve metrics in the Prometheus text format at this address (e.g. 127.0.0.1:9464;
    /// port 0 picks a free one, logged at start): per shard records in/out, millis behind
    /// latest, read throttles and retries; sink retries and added latency.
    #[arg(long, env = "WEIR_METRICS_ADDR", value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// How counters are reported every --stats-interval: `log` (a summary line in the log) or
    /// `emf` (a CloudWatch Embedded Metric Format line on standard error, namespace `weir`,
    /// dimension `Source`: an ECS task's awslogs driver turns it into CloudWatch metrics).
    #[arg(long, env = "WEIR_METRICS_FORMAT", default_value = "log", value_name = "FORMAT")]
    pub metrics_format: MetricsFormat,

    #[command(flatten)]
    pub checkpoint: CheckpointArgs,

    #[command(flatten)]
    pub leases: LeaseArgs,

    #[command(flatten)]
    pub kinesis: KinesisSourceArgs,

    #[command(flatten)]
    pub deployment: DeploymentArgs,

    #[command(flatten)]
    pub generator: GeneratorArgs,

    #[command(flatten)]
    pub aws: AwsArgs,

    #[command(flatten)]
    pub host: HostArgs,
}

/// `--on-operator-error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnErrorArg {
    /// Set the record aside in the dead-letter destination and go on.
    DeadLetter,
    /// Stop with an error naming the record.
    Halt,
}

impl From<OnErrorArg> for weir::operator::OnOperatorError {
    fn from(arg: OnErrorArg) -> Self {
        match arg {
            OnErrorArg::DeadLetter => Self::DeadLetter,
            OnErrorArg::Halt => Self::Halt,
        }
    }
}

/// Several workers on one stream.
#[derive(Args, Debug)]
#[command(next_help_heading = "Several workers (scale-out)")]
pub struct LeaseArgs {
    /// Share the stream with every other weir given the same DynamoDB table: each worker reads
    /// the shards it holds a lease on, and leases move between workers (with their checkpoints)
    /// as workers join, leave or fail. The table is created on first use (on-demand billing).
    /// Needs --checkpoint (the same location for every worker) and a Kinesis source whose
    /// partition key is the operator's grouping key (see builtin:rekey).
    #[arg(long, env = "WEIR_LEASE_TABLE", value_name = "NAME")]
    pub lease_table: Option<String>,
    /// How long a worker may fail to renew its leases before the others take them over. A
    /// worker stops writing results before this runs out.
    #[arg(long, env = "WEIR_FAILOVER_TIME", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub failover_time: Duration,
    /// How often a worker reads every lease even when the group announced no change: it then
    /// deletes those of its own checkpoint objects that no lease names any more and three newer
    /// ones replaced (so at most this long after they were replaced).
    #[arg(long, env = "WEIR_LEASE_RESCAN_INTERVAL", default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub lease_rescan_interval: Duration,
    /// This worker's name in the lease table [default: HOST-PID-TIME, unique per process]
    #[arg(long, env = "WEIR_WORKER_ID", value_name = "NAME")]
    pub worker_id: Option<String>,
    /// Run even though records' partition keys are not their grouping key. Workers read whole
    /// shards, so this is right only if the stream keeps every key on one shard another way
    /// (and across a split or merge the state then follows the MD5 of the grouping key).
    #[arg(long, env = "WEIR_ALLOW_SPREAD_KEYS")]
    pub allow_spread_keys: bool,
}

/// Checkpoints and stopping.
#[derive(Args, Debug)]
#[command(next_help_heading = "Checkpoints and stopping")]
pub struct CheckpointArgs {
    /// Keep checkpoints here, a directory or `s3://BUCKET/PREFIX`, and go on from the newest
    /// one at start: every shard after its last record processed, with the operator's state
    /// (restored by key, whatever --parallelism it was taken with); --start-position applies
    /// only to shards the checkpoint does not know. One process per location. Needs a Kinesis
    /// source.
    #[arg(long, env = "WEIR_CHECKPOINT", value_name = "LOCATION")]
    pub checkpoint: Option<Location>,
    /// How often a checkpoint is taken. A crash repeats at most this much work, and the
    /// results produced since the last checkpoint come out again.
    #[arg(long, env = "WEIR_CHECKPOINT_INTERVAL", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub checkpoint_interval: Duration,
    /// Go on from the checkpoint's shard positions but not its operator state: for an operator
    /// whose new version cannot restore the old state (or another grouping key). The windows
    /// pending at the checkpoint are lost.
    #[arg(long, env = "WEIR_RESET_STATE")]
    pub reset_state: bool,
    /// On SIGTERM or SIGINT weir stops reading, finishes the records read, writes every result
    /// and a last checkpoint, and exits 0. If that takes longer than this, or a second signal
    /// comes, it exits at once with code 1 (a restart then goes on from the last checkpoint).
    #[arg(long, env = "WEIR_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_timeout: Duration,
}

/// Options of an operator deployed to S3 (`--operator s3://BUCKET/PREFIX`).
#[derive(Args, Debug)]
#[command(next_help_heading = "Deployed operator (s3://)")]
pub struct DeploymentArgs {
    /// How often to look for a new version (a conditional GET of the manifest). A new one is
    /// downloaded, verified, compiled and initialised aside, then every shard switches to it at
    /// a batch boundary, carrying its window state.
    #[arg(long, env = "WEIR_WATCH_INTERVAL", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub watch_interval: Duration,
    /// Roll a new version back when it fails more than this many batches ...
    #[arg(long, env = "WEIR_ROLLBACK_AFTER_TRAPS", default_value_t = 2, value_name = "N")]
    pub rollback_after_traps: u32,
    /// ... within this long after the switch; the failed batches then go to the previous
    /// version, with the state.
    #[arg(long, env = "WEIR_ROLLBACK_WINDOW", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub rollback_window: Duration,
    /// Append the differences kept of a candidate shadowing the live version (the first few of
    /// each kind, with both sides and the input) to this file as JSON lines, instead of the
    /// log. Every weir also publishes its evidence under the deployment: `weir shadow status`.
    #[arg(long, env = "WEIR_SHADOW_DIFF", value_name = "FILE")]
    pub shadow_diff: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// Options of the Kinesis source.
#[derive(Args, Debug)]
#[command(next_help_heading = "Kinesis source")]
pub struct KinesisSourceArgs {
    /// Where to start reading the shards open now: `latest` (records written from now on),
    /// `trim-horizon` (the oldest records kept) or `at-timestamp:<RFC 3339 time>`. Shards
    /// created later by a split or merge are read from their beginning.
    #[arg(long, env = "WEIR_START_POSITION", default_value = "latest", value_name = "POSITION")]
    pub start_position: weir_kinesis::StartPosition,
    /// Wait after an empty read of a shard; doubles while the shard stays empty, up to 1 s.
    /// A shard that is behind is read again at once.
    #[arg(long, env = "WEIR_POLL_INTERVAL", default_value = "200ms", value_parser = parse_duration, value_name = "DURATION")]
    pub poll_interval: Duration,
    /// How often the shard list is read again to find shards created by a split or merge
    /// (it is also read whenever a shard ends).
    #[arg(long, env = "WEIR_SHARD_DISCOVERY_INTERVAL", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub shard_discovery_interval: Duration,
    /// End the input once every shard has been read to its current end and stayed there this
    /// long; then every pending window is emitted and weir exits 0. A shard caught up this long
    /// is not read again in the run and stops holding the watermark back. In a lease group a
    /// worker that holds no lease also waits while a lease it could read is free. For backfills, drains and tests;
    /// by default weir reads until it is stopped.
    #[arg(long, env = "WEIR_UNTIL_IDLE", value_parser = parse_duration, value_name = "DURATION")]
    pub until_idle: Option<Duration>,
    /// Read every shard through enhanced fan-out (SubscribeToShard) as this consumer: records
    /// pushed within about 70 ms over a 2 MB/s pipe per shard of its own, instead of sharing
    /// each shard's 2 MB/s and 5 GetRecords calls per second with the stream's other readers.
    /// Registered if missing (weir waits until it is ACTIVE), reused if present. One weir (or
    /// one lease group) per consumer name: a second reader of the same consumer takes its
    /// subscriptions over. AWS bills it per consumer-shard hour and per GB read.
    #[arg(long, env = "WEIR_EFO_CONSUMER", value_name = "NAME")]
    pub efo_consumer: Option<String>,
    /// Deregister the --efo-consumer when weir stops. Off by default: the consumer is kept for
    /// the next run (registering one takes seconds, and a lease group's workers share it).
    #[arg(long, env = "WEIR_EFO_DEREGISTER", requires = "efo_consumer")]
    pub efo_deregister: bool,
    /// Renew each subscription after this long, from the last event taken (the service ends
    /// it at 5 minutes).
    #[arg(long, env = "WEIR_EFO_RENEW_AFTER", default_value = "290s", value_parser = parse_duration, value_name = "DURATION")]
    pub efo_renew_after: Duration,
    /// Subscribe again when a subscription has sent nothing for this long (AWS sends an event
    /// at least every 5 s, records or not): a half-open connection never stalls a shard.
    #[arg(long, env = "WEIR_EFO_INACTIVITY", default_value = "15s", value_parser = parse_duration, value_name = "DURATION")]
    pub efo_inactivity: Duration,
}

impl KinesisSourceArgs {
    /// How subscriptions are kept as `consumer`.
    pub fn fan_out(&self, consumer: &weir_kinesis::Consumer) -> weir_kinesis::FanOut {
        weir_kinesis::FanOut {
            consumer_arn: consumer.arn.clone(),
            renew_after: self.efo_renew_after,
            inactivity: self.efo_inactivity,
        }
    }
}

/// Options of the built-in generator source.
#[derive(Args, Debug)]
#[command(next_help_heading = "Generator source")]
pub struct GeneratorArgs {
    /// Trades per second of wall-clock time (0: as fast as possible).
    #[arg(long, env = "WEIR_GENERATOR_RATE", default_value_t = 10_000.0)]
    pub rate: f64,
    /// Stop after this many trades (then the input ends); default: run until interrupted.
    #[arg(long, env = "WEIR_GENERATOR_COUNT")]
    pub count: Option<u64>,
    /// `default` (AMZN, GOOG, AZRE, ORCL, BABA), a number N of synthetic tickers, or a
    /// comma-separated list.
    #[arg(long, env = "WEIR_GENERATOR_TICKERS", default_value = "default")]
    pub tickers: weir_producer::Tickers,
    /// Seed of the random walk.
    #[arg(long, env = "WEIR_GENERATOR_SEED", default_value_t = 42)]
    pub seed: u64,
}
