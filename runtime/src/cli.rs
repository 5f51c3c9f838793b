//! The command line as the user types it (clap definitions, with the help text that teaches
//! the tool); [`crate::cmd`] turns it into the objects that run.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use weir::location::Location;

/// weir runs stream operators compiled to WebAssembly components: it reads records, keeps
/// keyed window state in the operator, and writes results, like a Kinesis Data Analytics /
/// Flink application with a small host instead of a JVM cluster.
#[derive(Parser, Debug)]
#[command(name = "weir", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log lines as `text` (for people; coloured on a terminal) or `json` (one object per line,
    /// for CloudWatch Logs Insights and the like). WEIR_LOG sets the level (info by default).
    #[arg(long, global = true, env = "WEIR_LOG_FORMAT", default_value = "text", value_name = "FORMAT")]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How `weir run` reports its counters every stats interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsFormat {
    /// A summary line in the log.
    Log,
    /// CloudWatch Embedded Metric Format lines on standard error.
    Emf,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run an operator over a source, writing results to a sink.
    ///
    /// With no arguments: generated stock trades through the built-in sliding-window-max
    /// operator (per ticker, the maximum price over 60 s windows sliding by 10 s), results on
    /// standard output. The generator's event time runs faster than the wall clock (1 ms per
    /// trade, 10,000 trades/s by default: ten times), so windows close about once a second.
    Run(Box<RunArgs>),
    /// Check an operator component: load it, check its contract version, instantiate it and
    /// call init with the settings; print what it is.
    Check(CheckArgs),
    /// Print a Kinesis stream's records as JSON lines, one object per record with its shard,
    /// sequence number, partition key, arrival time and data (as text when it is UTF-8, else
    /// as `data_base64`): what `aws kinesis get-records | base64 --decode` scripts do.
    Tail(TailArgs),
    /// Deploy an operator to S3, as a build pipeline would: check the component (contract
    /// version, instantiate, init with the settings), store it under its sha256
    /// (`PREFIX/<sha256>.wasm`), then point `PREFIX/current.json` at it with a conditional
    /// write, so two concurrent deploys cannot overwrite each other. `weir run --operator
    /// s3://BUCKET/PREFIX` runs what the manifest names.
    ///
    /// `weir deploy OPERATOR.wasm s3://BUCKET/PREFIX [--set KEY=VALUE]...`;
    /// `weir deploy --rollback s3://BUCKET/PREFIX` points the manifest back to the previous
    /// deployment.
    Deploy(DeployArgs),
    /// Operators deployed to S3.
    Operators(OperatorsArgs),
}

/// Arguments of `weir deploy`.
#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The component to deploy, then where: `OPERATOR.wasm s3://BUCKET/PREFIX`; with
    /// --rollback, only `s3://BUCKET/PREFIX`.
    #[arg(value_name = "[OPERATOR.wasm] s3://BUCKET/PREFIX", num_args = 1..=2, required = true)]
    pub args: Vec<String>,
    /// Point the manifest back to the deployment before the current one (its component and
    /// settings), instead of deploying a new component.
    #[arg(long)]
    pub rollback: bool,
    /// An operator setting stored in the manifest and passed to `init` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting, conflicts_with = "rollback")]
    pub settings: Vec<(String, String)>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub host: HostArgs,
}

/// Arguments of `weir operators`.
#[derive(Args, Debug)]
pub struct OperatorsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: OperatorsCommand,
}

/// `weir operators` subcommands.
#[derive(Subcommand, Debug)]
pub enum OperatorsCommand {
    /// The deployments under `s3://BUCKET/PREFIX`, current first.
    List {
        /// Where the operators are deployed.
        #[arg(value_name = "s3://BUCKET/PREFIX")]
        location: Location,
        #[command(flatten)]
        aws: AwsArgs,
    },
}

/// Arguments of `weir tail`.
#[derive(Args, Debug)]
pub struct TailArgs {
    /// The stream: `kinesis://NAME` or a stream ARN.
    #[arg(value_name = "STREAM")]
    pub stream: Location,
    /// Where to start in every shard: `trim-horizon` (the oldest record kept) or `latest`
    /// (only records written from now on; implies --follow).
    #[arg(long, default_value = "trim-horizon", value_name = "POSITION")]
    pub from: TailFrom,
    /// Keep reading as records arrive, instead of stopping once every shard is read to its
    /// current end.
    #[arg(long)]
    pub follow: bool,
    /// Stop after this many records.
    #[arg(long)]
    pub limit: Option<u64>,
    /// How often to poll a shard that returned nothing.
    #[arg(long, default_value = "200ms", value_parser = parse_duration, value_name = "DURATION")]
    pub poll_interval: Duration,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Where `weir tail` starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TailFrom {
    /// The oldest record each shard keeps.
    TrimHorizon,
    /// Records written from now on.
    Latest,
}

/// AWS settings; credentials and endpoints come from the SDK's usual chain
/// (AWS_ACCESS_KEY_ID, AWS_PROFILE, roles; AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_KINESIS).
#[derive(Args, Debug)]
#[command(next_help_heading = "AWS")]
pub struct AwsArgs {
    /// The AWS region; default: AWS_REGION, then the profile's region.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
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
    /// whatever shard or partition key it came with. Default: the machine's available cores.
    #[arg(long, env = "WEIR_PARALLELISM", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub parallelism: Option<u16>,

    /// How long a shard may deliver no records before it stops holding back the event-time
    /// watermark (the smallest, over the shards, of the latest event time read from each).
    #[arg(long, env = "WEIR_IDLE_AFTER", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_after: Duration,

    /// Records per operator call, at most.
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
    /// long; then every pending window is emitted and weir exits 0. For backfills, drains and
    /// tests; by default weir reads until it is stopped.
    #[arg(long, env = "WEIR_UNTIL_IDLE", value_parser = parse_duration, value_name = "DURATION")]
    pub until_idle: Option<Duration>,
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

/// Options of the operator host.
#[derive(Args, Debug)]
#[command(next_help_heading = "Operator host")]
pub struct HostArgs {
    /// Folder of compiled operators (keyed by sha256), so a restart does not recompile.
    /// Default: $WEIR_CACHE_DIR, else ~/.cache/weir/compiled.
    #[arg(long, env = "WEIR_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile the operator on every start instead of using the cache.
    #[arg(long, env = "WEIR_NO_CACHE")]
    pub no_cache: bool,
    /// Memory an operator instance may use, in MiB.
    #[arg(long, env = "WEIR_MAX_MEMORY_MIB", default_value_t = 256, value_name = "MIB")]
    pub max_memory_mib: usize,
    /// Time one operator call may take before it is interrupted (the instance is then
    /// replaced, and the records it failed on go to the dead-letter destination). `off` removes
    /// the limit and the checks it costs (about a third of an operator's speed): only for
    /// operators you trust not to loop forever.
    #[arg(long, env = "WEIR_MAX_CALL_TIME", default_value = "5s", value_name = "DURATION|off")]
    pub max_call_time: TimeLimit,
    /// Results (keys and data) one operator call may return, in MiB: more fails the call,
    /// like a trap, so one record cannot flood the sink.
    #[arg(long, env = "WEIR_MAX_OUTPUT_MIB", default_value_t = 64, value_name = "MIB")]
    pub max_output_mib: usize,
}

/// Arguments of `weir check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The operator component (a `.wasm` file, `s3://BUCKET/PREFIX` or
    /// `builtin:sliding-window-max`).
    #[arg(value_name = "LOCATION")]
    pub operator: Location,
    /// An operator setting, repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub host: HostArgs,
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE (for example --set window=30s)")),
    }
}

/// A duration, or `off` for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeLimit(pub Option<Duration>);

impl std::str::FromStr for TimeLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "off" { Ok(Self(None)) } else { parse_duration(s).map(|d| Self(Some(d))) }
    }
}

/// Durations as `500ms`, `10s`, `1m`, `1h 30m` or ISO 8601 `PT10S`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration ({e}); write one such as 500ms, 10s or 1m"))?;
    Duration::try_from(d).map_err(|_| format!("{s:?} is negative; durations here must be positive"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn settings_and_durations_parse_with_helpful_errors() {
        assert_eq!(parse_setting("window=30s"), Ok(("window".into(), "30s".into())));
        assert_eq!(parse_setting("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_setting("window").unwrap_err().contains("KEY=VALUE"));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").unwrap_err().contains("such as 500ms"));
    }

    #[test]
    fn every_option_of_weir_run_can_be_set_from_the_environment() {
        let cli = Cli::command();
        let run = cli.find_subcommand("run").expect("weir run");
        for arg in run.get_arguments().filter(|a| a.get_long().is_some()) {
            let long = arg.get_long().unwrap_or_default();
            if matches!(long, "help" | "region") {
                // --region: the SDK reads AWS_REGION already.
                continue;
            }
            let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
            assert!(env.starts_with("WEIR_"), "--{long} has no WEIR_ environment variable");
        }
    }

    #[test]
    fn run_defaults_are_the_reference_application() {
        let cli = Cli::try_parse_from(["weir", "run"]).unwrap();
        let Command::Run(args) = cli.command else { panic!("not run") };
        assert_eq!(args.source, Location::Generator);
        assert_eq!(args.sink, Location::Stdio);
        assert_eq!(args.operator, Location::Builtin("sliding-window-max".into()));
        assert_eq!(args.host.max_call_time, TimeLimit(Some(Duration::from_secs(5))));
        assert_eq!(args.kinesis.start_position, weir_kinesis::StartPosition::Latest);
        assert_eq!(args.kinesis.poll_interval, Duration::from_millis(200));
        let cli = Cli::try_parse_from(["weir", "run", "--max-call-time", "off"]).unwrap();
        let Command::Run(args) = cli.command else { panic!("not run") };
        assert_eq!(args.host.max_call_time, TimeLimit(None));
    }
}
