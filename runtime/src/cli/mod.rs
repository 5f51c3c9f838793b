//! The command line as the user types it (clap definitions, with the help text that teaches
//! the tool); [`crate::cmd`] turns it into the objects that run.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use weir::deployment::{KeySource, PromoteAfter};
use weir::location::Location;

mod run;

pub use run::{CheckpointArgs, MetricsFormat, RunArgs};

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
    /// s3://BUCKET/PREFIX` runs what the manifest names; with --sign or --sign-key the entry is
    /// signed, and a weir run with --trust runs only entries signed by a key it trusts.
    ///
    /// `weir deploy OPERATOR.wasm s3://BUCKET/PREFIX [--set KEY=VALUE]... [--sign kms://KEY]`;
    /// `weir deploy --rollback s3://BUCKET/PREFIX` points the manifest back to the previous
    /// deployment; `weir deploy --status s3://BUCKET/PREFIX` says what runs and who signed it.
    ///
    /// Shadow deploys: `weir deploy --candidate OPERATOR.wasm s3://BUCKET/PREFIX` publishes a
    /// version that every running weir runs beside the live one, on the same records from the
    /// same state, comparing outputs and writing none; `--promote` makes it live (the usual
    /// swap), `--reject` takes it away, `--promote-after RECORDS,DURATION` waits for that much
    /// evidence without a difference and promotes it (or rejects it on the first difference).
    Deploy(DeployArgs),
    /// Operators deployed to S3.
    Operators(OperatorsArgs),
    /// A candidate shadowing the live version: the evidence of every running weir (records
    /// compared, differences by kind and key, the first differences with both sides), whether
    /// it may be promoted, and the decisions taken.
    Shadow(ShadowArgs),
    /// Who reads what in a lease group (`weir run --lease-table`): every shard with its owner,
    /// lease counter, state, how far its last checkpoint is behind the stream's newest record,
    /// and when that checkpoint was taken; then the workers and when each last renewed.
    Leases(LeasesArgs),
    /// Make a signing key for `weir deploy --sign-key`: its private half written to PATH
    /// (readable by you only), its public half to PATH.pub (for `weir run --trust`). For
    /// laptops and tests; a pipeline signs with a KMS key (`--sign kms://KEY`).
    Keygen(KeygenArgs),
    /// Start a new operator project in a folder of its own, in Rust, Python or JavaScript: a
    /// map of one function to grow from, its native test, the contract, and a README with the
    /// commands that test, build, check and deploy it.
    ///
    /// `weir new --lang python my-operator [--weir PATH-TO-A-WEIR-CHECKOUT]`
    New(NewArgs),
}

/// Arguments of `weir keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the private key (PATH.pub gets the public key); neither may exist.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

/// Arguments of `weir new`.
#[derive(Args, Debug)]
pub struct NewArgs {
    /// The operator's name (lower-case letters, digits and '-'): the folder made, and the name
    /// the operator gives itself.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The language.
    #[arg(long, value_enum)]
    pub lang: Language,
    /// The folder to create (default: NAME).
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
    /// A checkout of weir whose SDKs the project uses, by path. Without it the project names
    /// the SDK by git (Rust) or by package name (Python, JavaScript).
    #[arg(long, env = "WEIR_HOME", value_name = "PATH")]
    pub weir: Option<PathBuf>,
}

/// The languages `weir new` writes operators in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// Rust, built with cargo for wasm32-wasip2.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
}

impl Language {
    /// The language's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::Python => "Python",
            Self::Js => "JavaScript",
        }
    }
}

/// Arguments of `weir leases`.
#[derive(Args, Debug)]
pub struct LeasesArgs {
    /// The stream the group reads: `kinesis://NAME`.
    #[arg(value_name = "STREAM")]
    pub stream: Location,
    /// The group's lease table.
    #[arg(long, env = "WEIR_LEASE_TABLE", value_name = "NAME")]
    pub lease_table: String,
    /// Print JSON lines (one per shard, then one per worker) instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
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
    /// Say what is deployed, who signed each version, and (with --trust) whether a weir
    /// trusting those keys would run the current one; changes nothing.
    #[arg(long, conflicts_with_all = ["rollback", "settings", "sign", "sign_key"])]
    pub status: bool,
    /// Publish the component as the candidate, not live: every running weir watching the
    /// deployment runs it beside the live version, from the live state, on the same records,
    /// and compares its outputs with the live ones; none of its outputs is written.
    #[arg(long, conflicts_with_all = ["rollback", "status"])]
    pub candidate: bool,
    /// With --candidate: wait until the running weirs have compared this many records over
    /// this long with no difference, then promote it (exit 0); reject it on the first
    /// difference or failure (exit 1). `100000,10m`.
    #[arg(long, requires = "candidate", value_name = "RECORDS,DURATION")]
    pub promote_after: Option<PromoteAfter>,
    /// With --promote-after: give up waiting after this long (exit 1; the candidate stays).
    #[arg(long, default_value = "1h", value_parser = parse_duration, value_name = "DURATION")]
    pub promote_timeout: Duration,
    /// With --candidate: its outputs are meant to differ. It is never promoted on evidence,
    /// only with --promote; the differences are still counted and reported.
    #[arg(long, requires = "candidate", conflicts_with = "promote_after")]
    pub expect_differences: bool,
    /// Make the candidate the live version: running weirs switch to it as to any new
    /// version, state carried. Only `s3://BUCKET/PREFIX` is given.
    #[arg(long, conflicts_with_all = ["rollback", "status", "candidate", "settings", "sign", "sign_key"])]
    pub promote: bool,
    /// Take the candidate away: running weirs stop it. Only `s3://BUCKET/PREFIX` is given.
    #[arg(long, conflicts_with_all = ["rollback", "status", "candidate", "promote", "settings", "sign", "sign_key"])]
    pub reject: bool,
    /// An operator setting stored in the manifest and passed to `init` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting, conflicts_with = "rollback")]
    pub settings: Vec<(String, String)>,
    /// Sign the new manifest entry with this asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY;
    /// a key id, ARN or alias/NAME): the key never leaves KMS. A weir run with --trust runs
    /// only signed versions.
    #[arg(long, value_name = "kms://KEY", value_parser = parse_kms_key, conflicts_with = "sign_key")]
    pub sign: Option<String>,
    /// Read and write the deployment as this IAM role (assumed with the default credentials,
    /// which sign): the pipeline's publish step signs as itself and publishes as the workload
    /// account's operator-deploy role.
    #[arg(long, env = "WEIR_DEPLOY_ROLE_ARN", value_name = "ARN")]
    pub role_arn: Option<String>,
    /// Sign with the private key in this PEM file instead (`weir keygen PATH` makes one): for
    /// laptops and tests.
    #[arg(long, env = "WEIR_SIGN_KEY", value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub host: HostArgs,
}

/// Arguments of `weir shadow`.
#[derive(Args, Debug)]
pub struct ShadowArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ShadowCommand,
}

/// `weir shadow` subcommands.
#[derive(Subcommand, Debug)]
pub enum ShadowCommand {
    /// The candidate at `s3://BUCKET/PREFIX`, every weir's evidence about it, the first
    /// differences, whether it may be promoted, and the decisions taken.
    Status {
        /// Where the operators are deployed.
        #[arg(value_name = "s3://BUCKET/PREFIX")]
        location: Location,
        #[command(flatten)]
        aws: AwsArgs,
    },
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
    /// Read through enhanced fan-out as this consumer (registered if missing, and left
    /// registered), instead of polling: for a stream whose GetRecords budget its readers
    /// already use up.
    #[arg(long, value_name = "NAME")]
    pub efo_consumer: Option<String>,
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

/// Which deployed versions may run.
#[derive(Args, Debug, Default, Clone)]
#[command(next_help_heading = "Signed deployments")]
pub struct TrustArgs {
    /// Run only deployed versions signed by one of these keys: a public key file (PEM, such
    /// as the PATH.pub `weir keygen PATH` writes) or kms://KEY (its public half, read from KMS
    /// once at start). Repeatable, or comma-separated in WEIR_TRUST: trust the old and the new
    /// key while rotating. An unsigned version, one signed by another key, one changed after
    /// signing, or one older in sequence than a version already run is refused before it is
    /// downloaded; a running weir keeps its version.
    #[arg(long, env = "WEIR_TRUST", value_delimiter = ',', value_name = "FILE|kms://KEY")]
    pub trust: Vec<KeySource>,
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
    /// the limit and the checks it costs (10-20% of an operator's speed, in Rust, Python or
    /// JavaScript; BENCHMARKS.md): only for operators you trust not to loop forever.
    #[arg(long, env = "WEIR_MAX_CALL_TIME", default_value = "5s", value_name = "DURATION|off")]
    pub max_call_time: TimeLimit,
    /// Results (keys and data) one operator call may return, in MiB: more fails the call,
    /// like a trap, so one record cannot flood the sink.
    #[arg(long, env = "WEIR_MAX_OUTPUT_MIB", default_value_t = 64, value_name = "MIB")]
    pub max_output_mib: usize,
    /// Operator instances to reserve memory for up front, so that a swap, a restart or a
    /// shadow candidate reuses memory already mapped instead of mapping fresh memory:
    /// `auto` (for `weir run`, four per instance and four more), a number, or `off` (each
    /// instance allocated on demand).
    #[arg(long, env = "WEIR_INSTANCE_SLOTS", default_value = "auto", value_name = "auto|N|off")]
    pub instance_slots: InstanceSlots,
}

/// How many operator instances to reserve memory for (`--instance-slots`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceSlots {
    /// As many as the run needs for its parallelism; none outside `weir run`.
    Auto,
    /// None: every instance is allocated on demand.
    Off,
    /// Exactly this many.
    Exactly(usize),
}

impl std::str::FromStr for InstanceSlots {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            n => match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Self::Exactly(n)),
                _ => Err(format!(
                    "{s:?} is not a number of instance slots: give auto, off or a number above 0"
                )),
            },
        }
    }
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
    pub trust: TrustArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub host: HostArgs,
}

fn parse_kms_key(s: &str) -> Result<String, String> {
    match s.parse::<KeySource>()? {
        KeySource::Kms(key) => Ok(key),
        KeySource::File(_) => {
            Err("--sign takes kms://KEY (KEY_ID, alias/NAME or an ARN); sign with a key file with --sign-key FILE".into())
        }
    }
}

pub(crate) fn parse_setting(s: &str) -> Result<(String, String), String> {
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
    fn instance_slots_parse_with_a_helpful_error() {
        assert_eq!("auto".parse(), Ok(InstanceSlots::Auto));
        assert_eq!("off".parse(), Ok(InstanceSlots::Off));
        assert_eq!("12".parse(), Ok(InstanceSlots::Exactly(12)));
        for bad in ["0", "-1", "many"] {
            let error = bad.parse::<InstanceSlots>().unwrap_err();
            assert!(error.contains("give auto, off or a number above 0"), "{error}");
        }
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
