//! deploy/templates stood up in moto's CloudFormation (`scripts/local-stacks`, against the
//! moto with IAM enforcement that `scripts/with-emulators` starts: WEIR_TEST_IAM_AWS), and weir
//! run as their roles: the reference application end to end as the service's task role,
//! configured only by its task definition's `WEIR_*` environment, a new version published as
//! the pipeline's publish role, and each permission the task role grants shown to be needed.

use crate::util;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;
use util::kinesis::{assert_same_results, deduplicated};
use util::process::Weir;
use util::*;

use crate::swap::{SWAPS, WITHIN, same_code_new_digest};

/// Temporary credentials, or an IAM user's keys (no token).
#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "PascalCase")]
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

/// What `scripts/local-stacks up` prints.
#[derive(Deserialize, Debug)]
struct Stacks {
    /// The moto they stand in (not printed: the tests know it).
    #[serde(skip)]
    endpoint: String,
    stacks: BTreeMap<String, BTreeMap<String, String>>,
    task_role: String,
    environment: BTreeMap<String, String>,
    credentials: BTreeMap<String, Credentials>,
}

impl Stacks {
    fn output(&self, stack: &str, name: &str) -> &str {
        self.stacks
            .get(stack)
            .and_then(|o| o.get(name))
            .unwrap_or_else(|| panic!("no output {name} of {stack}: {self:?}"))
    }

    fn credentials(&self, who: &str) -> &Credentials {
        &self.credentials[who]
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn bucket(&self) -> &str {
        self.output("artifacts", "BucketName")
    }

    fn operator(&self) -> String {
        format!("s3://{}/operators/max", self.bucket())
    }

    fn signing_key(&self) -> String {
        format!("kms://{}", self.output("pipeline", "SigningKeyArn"))
    }
}

/// The moto with IAM enforcement that `scripts/with-emulators` starts.
fn iam_endpoint() -> String {
    std::env::var("WEIR_TEST_IAM_AWS").unwrap_or_else(|_| {
        panic!("WEIR_TEST_IAM_AWS is not set: run these tests through scripts/test or scripts/with-emulators, which start moto with IAM enforcement")
    })
}

fn local_stacks() -> Command {
    let mut cmd = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/local-stacks"));
    cmd.args(["--endpoint", &iam_endpoint()]);
    cmd
}

/// The stacks' streams, bucket and lease table are one job's: one test at a time uses them.
fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The stacks, stood up once for this test binary.
fn stacks() -> &'static Stacks {
    static STACKS: OnceLock<Stacks> = OnceLock::new();
    STACKS.get_or_init(|| {
        let out = local_stacks().arg("up").output().unwrap();
        assert!(
            out.status.success(),
            "scripts/local-stacks up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut stacks: Stacks = serde_json::from_slice(&out.stdout).unwrap();
        stacks.endpoint = iam_endpoint();
        stacks
    })
}

/// `cmd` talking to the stacks' moto as `who`: every service at one endpoint, and no other
/// endpoint or credentials from the test's environment.
fn as_identity<'a>(cmd: &'a mut Command, stacks: &Stacks, who: &Credentials) -> &'a mut Command {
    for var in ["KINESIS", "S3", "DYNAMODB", "KMS", "STS"] {
        cmd.env_remove(format!("AWS_ENDPOINT_URL_{var}"));
    }
    cmd.env("AWS_ENDPOINT_URL", stacks.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", &who.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &who.secret_access_key);
    match &who.session_token {
        Some(token) => cmd.env("AWS_SESSION_TOKEN", token),
        None => cmd.env_remove("AWS_SESSION_TOKEN"),
    }
}

/// `weir run` as ECS would start the service's task: its task definition's environment (the
/// cache in a folder of the test instead of the task's volume), as `who`.
fn task(stacks: &Stacks, who: &Credentials, cache: &std::path::Path) -> Command {
    let mut cmd = weir();
    for (name, value) in &stacks.environment {
        cmd.env(name, value);
    }
    cmd.env("WEIR_CACHE_DIR", cache);
    as_identity(&mut cmd, stacks, who);
    cmd.arg("run");
    cmd
}

/// `weir deploy FILE` of the operator as the pipeline's publish step runs it: signed with
/// the pipeline's key as the publish role, written as the operator-deploy role.
fn publish(stacks: &Stacks, file: &std::path::Path) -> Output {
    let mut cmd = weir();
    as_identity(&mut cmd, stacks, stacks.credentials("publish"));
    cmd.args(["deploy", file.to_str().unwrap(), &stacks.operator()])
        .args(["--sign", &stacks.signing_key()])
        .args(["--role-arn", stacks.output("artifacts", "DeployRoleArn")])
        .output()
        .unwrap()
}

/// `count` trades from `start_ms` into the stacks' trades stream (as the administrator: the
/// templates define no producer role); the same trades as JSON lines.
fn produce(stacks: &Stacks, count: u64, start_ms: i64) -> Vec<u8> {
    let to_stream = |cmd: &mut Command| {
        as_identity(cmd, stacks, stacks.credentials("admin")).args(["--sink", "kinesis://weir-trades"]);
    };
    util::kinesis::produce_as(to_stream, count, 20, start_ms, &[])
}

/// Every record of `stream`, read as the administrator with `weir tail`.
fn tail(stacks: &Stacks, stream: &str) -> Vec<serde_json::Value> {
    util::kinesis::tail_as(|cmd| as_identity(cmd, stacks, stacks.credentials("admin")), stream, &[])
}

#[test]
fn the_templates_stand_up_in_order_and_the_task_definition_configures_weir() {
    let stacks = stacks();
    for (stack, output) in [
        ("pipeline", "SigningKeyArn"),
        ("artifacts", "DeployRoleArn"),
        ("streams", "TradesStreamArn"),
        ("service", "ServiceName"),
        ("cross-account", "CloudFormationExecutionRoleArn"),
    ] {
        assert!(!stacks.output(stack, output).is_empty());
    }
    let env = &stacks.environment;
    assert_eq!(env["WEIR_SOURCE"], stacks.output("streams", "TradesStreamArn"));
    assert_eq!(env["WEIR_SINK"], stacks.output("streams", "ResultsStreamArn"));
    assert_eq!(env["WEIR_DEAD_LETTER"], stacks.output("streams", "DeadLettersStreamArn"));
    assert_eq!(env["WEIR_OPERATOR"], stacks.operator());
    assert_eq!(env["WEIR_TRUST"], stacks.signing_key());
    assert!(env["WEIR_CHECKPOINT"].starts_with(&format!("s3://{}/", stacks.bucket())), "{env:?}");
    assert!(stacks.task_role.contains("TaskRole"));
}

#[test]
fn the_reference_application_runs_as_the_task_role_and_swaps_to_a_version_the_pipeline_publishes() {
    let _one = exclusive();
    let stacks = stacks();
    let dir = tempfile::tempdir().unwrap();
    let v1 = component("sliding_window_max");
    let out = publish(stacks, &v1);
    assert!(out.status.success(), "publish v1: {}", String::from_utf8_lossy(&out.stderr));

    // An hour ago: after the event times of the other tests here, which share the stream.
    let start_ms = jiff::Timestamp::now().as_millisecond() / 60_000 * 60_000 - 3_600_000;
    let mut input = produce(stacks, 10_000, start_ms);
    let task_role = stacks.credentials("task");
    let mut cmd = task(stacks, task_role, dir.path());
    cmd.env("WEIR_WATCH_INTERVAL", "1s");
    let mut service = Weir::start(cmd);
    service.wait_for_total("weir_records_in_total", |n| n >= 10_000.0, Duration::from_secs(120));

    // The pipeline publishes a new version (same code, another digest); the task switches.
    let v2 = same_code_new_digest(&v1, dir.path());
    let out = publish(stacks, &v2);
    assert!(out.status.success(), "publish v2: {}", String::from_utf8_lossy(&out.stderr));
    service.wait_for_metric(SWAPS, |n| n >= 1.0, WITHIN);

    // A record no result can be made of goes to the stack's dead-letter stream.
    put_record(stacks, "weir-trades", "bad", b"not a trade");
    input.extend(produce(stacks, 10_000, start_ms + 10_000));
    service.wait_for_total("weir_records_in_total", |n| n >= 20_001.0, Duration::from_secs(120));
    // Stopped as ECS stops a task: its leases handed back with a last checkpoint.
    service.signal("TERM");
    let (status, log) = service.wait(Duration::from_secs(120));
    assert!(status.success(), "{log}");

    // A new task takes the stream over from the checkpoints and runs to the end of it.
    let mut cmd = task(stacks, task_role, dir.path());
    cmd.args(["--until-idle", "3s"]);
    let (status, log) = Weir::start(cmd).wait(Duration::from_secs(120));
    assert!(status.success(), "{log}");

    let ours = |record: &serde_json::Value| {
        let result: serde_json::Value = serde_json::from_str(record["data"].as_str().unwrap()).unwrap();
        let end: jiff::Timestamp = result["WINDOW_END"].as_str().unwrap().parse().unwrap();
        end.as_millisecond() > start_ms
    };
    let results: Vec<serde_json::Value> = tail(stacks, "weir-max-prices").into_iter().filter(ours).collect();
    let (once, _) = deduplicated(&results);
    assert_same_results(&once, &native_per_ticker(&input, &[]));
    let dead: Vec<serde_json::Value> = tail(stacks, "weir-dead-letters")
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(r["data"].as_str().unwrap()).unwrap())
        .filter(|letter| letter["partition_key"] == "bad")
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{dead:?}");

    // The lease table names the checkpoint, in the stacks' bucket, the last task left.
    let mut cmd = weir();
    as_identity(&mut cmd, stacks, stacks.credentials("admin"));
    let out = cmd
        .args([
            "leases",
            &stacks.environment["WEIR_SOURCE"],
            "--lease-table",
            &stacks.environment["WEIR_LEASE_TABLE"],
        ])
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "weir leases: {}", String::from_utf8_lossy(&out.stderr));
    let rows = util::leases::LeaseGroup::rows(&out);
    assert!(!rows.is_empty());
    for row in &rows {
        let checkpoint = row["checkpoint"].as_str().unwrap_or_default();
        assert!(checkpoint.starts_with(&stacks.environment["WEIR_CHECKPOINT"]), "{row}");
    }
}

/// One record put into `stream` as the administrator.
fn put_record(stacks: &Stacks, stream: &str, key: &str, data: &[u8]) {
    let admin = stacks.credentials("admin");
    let rt = util::kinesis::runtime();
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .endpoint_url(stacks.endpoint())
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            &admin.access_key_id,
            &admin.secret_access_key,
            admin.session_token.clone(),
            None,
            "local-stacks",
        ))
        .build();
    let client = aws_sdk_kinesis::Client::from_conf(config);
    rt.block_on(
        client
            .put_record()
            .stream_name(stream)
            .partition_key(key)
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .send(),
    )
    .unwrap();
}

/// Credentials for a copy of `role` without `action` (`scripts/local-stacks role`).
fn without(stacks: &Stacks, role: &str, action: &str) -> Credentials {
    let mut cmd = local_stacks();
    let admin = stacks.credentials("admin");
    cmd.env("AWS_ACCESS_KEY_ID", &admin.access_key_id).env("AWS_SECRET_ACCESS_KEY", &admin.secret_access_key);
    let out = cmd.args(["role", role, "--without", action]).output().unwrap();
    assert!(out.status.success(), "local-stacks role: {}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    serde_json::from_value(answer["credentials"].clone()).unwrap()
}

/// Every action the task role grants (the service without enhanced fan-out).
const TASK_ACTIONS: [&str; 14] = [
    "kinesis:DescribeStreamSummary",
    "kinesis:ListShards",
    "kinesis:GetShardIterator",
    "kinesis:GetRecords",
    "kinesis:PutRecords",
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Scan",
    "kms:GetPublicKey",
];

#[test]
fn each_action_the_task_role_grants_is_needed_and_a_task_without_it_says_so() {
    let _one = exclusive();
    let stacks = stacks();
    let dir = tempfile::tempdir().unwrap();
    let out = publish(stacks, &component("sliding_window_max"));
    assert!(out.status.success(), "publish: {}", String::from_utf8_lossy(&out.stderr));
    // Before the trades of the other tests here (late if they ran first: dead letters, written
    // with the same permission as results).
    let mut start_ms = 1_790_000_000_000;
    let mut failures = Vec::new();
    for action in TASK_ACTIONS {
        let credentials = without(stacks, &stacks.task_role, action);
        produce(stacks, 2_000, start_ms);
        start_ms += 100_000;
        let mut cmd = task(stacks, &credentials, dir.path());
        // Checkpoints each second, and every lease read each second, so that an old checkpoint
        // object is deleted (s3:DeleteObject) within the run.
        cmd.env("WEIR_CHECKPOINT_INTERVAL", "1s").env("WEIR_LEASE_RESCAN_INTERVAL", "1s");
        cmd.args(["--until-idle", "5s"]);
        let (status, log) = Weir::start(cmd).wait(Duration::from_secs(90));
        let named = format!("need {action} on");
        let said = log.lines().find(|l| l.contains(&named));
        // Without ListShards a worker goes on with the shards its lease table knows, and says
        // at each discovery that it cannot list them; every other refusal stops it.
        let stopped = !status.success() || action == "kinesis:ListShards";
        if said.is_none() || !stopped {
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            failures.push(format!("{action}: {status}, said {said:?}; the log ends {tail:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn each_action_the_deploy_role_grants_is_needed_and_a_deploy_without_it_says_so() {
    let stacks = stacks();
    let dir = tempfile::tempdir().unwrap();
    let v1 = component("sliding_window_max");
    let v2 = same_code_new_digest(&v1, dir.path());
    let mut failures = Vec::new();
    for action in ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] {
        let credentials = without(stacks, "weir-operator-deploy", action);
        // A prefix of its own under operators/ (the role's), apart from the service's operator.
        let target = format!("s3://{}/operators/deploy-check/{}", stacks.bucket(), action.replace(':', "-"));
        let weir_as_deploy_role = |args: &[&str]| {
            let mut cmd = weir();
            as_identity(&mut cmd, stacks, &credentials);
            cmd.args(args).output().unwrap()
        };
        // A first version, a candidate, and the candidate's status (which lists its evidence):
        // what the publish step does as this role.
        let steps = [
            weir_as_deploy_role(&["deploy", v1.to_str().unwrap(), &target]),
            weir_as_deploy_role(&["deploy", "--candidate", v2.to_str().unwrap(), &target]),
            weir_as_deploy_role(&["shadow", "status", &target]),
        ];
        let named = format!("need {action} on");
        let refused = steps.iter().find(|out| !out.status.success());
        match refused {
            Some(out) if String::from_utf8_lossy(&out.stderr).contains(&named) => {}
            _ => failures.push(format!(
                "{action}: {:?}",
                steps.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect::<Vec<_>>()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
