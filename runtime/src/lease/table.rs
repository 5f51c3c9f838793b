//! The lease table in DynamoDB: one table per application, holding everything workers share.
//!
//! ```text
//! id = "#group"          source, checkpoint location, `changes` (bumped whenever a lease is
//!                        freed or a worker joins or leaves), `workers`: worker -> heartbeat
//! id = <shard id>        owner (absent: free), counter (the fencing token: +1 on every take),
//!                        parents, hash range, finished, checkpoint (object, position, time)
//! ```
//!
//! A worker renews all its leases at once by bumping its heartbeat in the group row: one write
//! per worker per renewal, however many shards it holds (the KCL writes every lease). Every
//! change of owner is an `UpdateItem` conditioned on the counter the writer last read, and
//! every write by an owner (a checkpoint reference, a release) is conditioned on the owner and
//! counter it took the lease with, so a worker that lost a lease can no longer touch it.
//!
//! The SDK's retries are off: the lease loop tries again on its next round, the checkpoint
//! writer with its backoff.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TableStatus,
};
use weir_kinesis::aws::{self, cause, describe, one_line};
use weir_kinesis::{HashRange, ShardInfo};

use super::{Group, Lease, LeaseError, Member};

/// The group row's id (no shard id starts with `#`).
pub const GROUP: &str = "#group";
/// How long a new table may take to become active.
const CREATE_WAIT: Duration = Duration::from_secs(60);

type Item = HashMap<String, AttributeValue>;

/// One lease table.
#[derive(Clone, Debug)]
pub struct LeaseTable {
    client: Client,
    name: String,
    endpoint: String,
    calls: Arc<Calls>,
}

/// Requests made to the table by this handle and its clones, for the cost figures.
#[derive(Debug, Default)]
pub struct Calls {
    /// GetItem and Scan requests.
    pub reads: AtomicU64,
    /// Items a Scan returned (each read unit covers up to 4 KB, and lease rows are small).
    pub scanned: AtomicU64,
    /// PutItem and UpdateItem requests.
    pub writes: AtomicU64,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n(item: &Item, name: &str) -> Option<u64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn get_i(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn key(id: &str) -> Item {
    HashMap::from([("id".to_string(), s(id))])
}

/// Whether `error` is a failed condition.
fn condition_failed<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

impl LeaseTable {
    /// The table `name` (not yet checked); `region` overrides the configured region.
    pub async fn connect(name: &str, region: Option<&str>) -> Self {
        let config = aws::config(region).await;
        let endpoint = aws::endpoint_override(&config, "DYNAMODB")
            .unwrap_or_else(|| aws::regional_endpoint(&config, "DynamoDB"));
        let dynamo = aws_sdk_dynamodb::config::Builder::from(&config)
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build();
        Self { client: Client::from_conf(dynamo), name: name.to_string(), endpoint, calls: Arc::default() }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The requests made so far (by this handle and its clones).
    pub fn calls(&self) -> &Calls {
        &self.calls
    }

    fn client_for_read(&self) -> &Client {
        self.calls.reads.fetch_add(1, Relaxed);
        &self.client
    }

    fn client_for_write(&self) -> &Client {
        self.calls.writes.fetch_add(1, Relaxed);
        &self.client
    }

    /// A conditional UpdateItem's outcome: true when written, false when the condition failed.
    fn conditional<O, E, R>(&self, reply: Result<O, SdkError<E, R>>) -> Result<bool, LeaseError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        match reply {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(self.explain("dynamodb:UpdateItem", &e)),
        }
    }

    /// A CreateTable request that could not be built.
    fn unbuilt(&self, error: impl std::fmt::Display) -> LeaseError {
        LeaseError::Failed {
            table: self.name.clone(),
            action: "dynamodb:CreateTable",
            detail: error.to_string(),
        }
    }

    fn explain<E, R>(&self, action: &'static str, error: &SdkError<E, R>) -> LeaseError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let table = self.name.clone();
        let endpoint = self.endpoint.clone();
        match (error.code(), error) {
            (Some("ResourceNotFoundException"), _) => LeaseError::NoTable { table, endpoint },
            (Some("AccessDeniedException" | "UnrecognizedClientException"), _) => LeaseError::Denied {
                table,
                action,
                detail: error.message().unwrap_or("no detail").to_string(),
            },
            _ if let Some(credentials) = cause::<CredentialsError>(error) => {
                LeaseError::NoCredentials { table, detail: one_line(&credentials.to_string()) }
            }
            (_, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => {
                LeaseError::Unreachable { table, endpoint, detail: describe(error) }
            }
            (Some(code), _) => LeaseError::Refused {
                table,
                action,
                code: code.to_string(),
                message: error.message().unwrap_or_default().to_string(),
                transient: aws::is_transient(error),
            },
            _ => LeaseError::Failed { table, action, detail: describe(error) },
        }
    }

    /// Make sure the table exists (created with on-demand billing if not, then waited for) and
    /// holds the group row of `source` with checkpoints at `checkpoints`; a table of another
    /// source or checkpoint location is refused.
    pub async fn open(&self, source: &str, checkpoints: &str) -> Result<Group, LeaseError> {
        self.create_if_missing().await?;
        let row = HashMap::from([
            ("id".to_string(), s(GROUP)),
            ("source".to_string(), s(source)),
            ("checkpoints".to_string(), s(checkpoints)),
            ("changes".to_string(), n(0)),
            ("workers".to_string(), AttributeValue::M(HashMap::new())),
        ]);
        let put = self
            .client_for_write()
            .put_item()
            .table_name(&self.name)
            .set_item(Some(row))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match put {
            Ok(_) => {}
            Err(e) if condition_failed(&e) => {}
            Err(e) => return Err(self.explain("dynamodb:PutItem", &e)),
        }
        let group = self.group().await?;
        if group.source != source || group.checkpoints != checkpoints {
            return Err(LeaseError::OtherJob {
                table: self.name.clone(),
                stream: group.source,
                checkpoints: group.checkpoints,
                wanted_stream: source.to_string(),
                wanted_checkpoints: checkpoints.to_string(),
            });
        }
        Ok(group)
    }

    async fn create_if_missing(&self) -> Result<(), LeaseError> {
        let described = self.client.describe_table().table_name(&self.name).send().await;
        let status = match described {
            Ok(reply) => reply.table().and_then(|t| t.table_status().cloned()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                tracing::info!("creating the lease table {} (on-demand billing)", self.name);
                let created = self
                    .client
                    .create_table()
                    .table_name(&self.name)
                    .billing_mode(BillingMode::PayPerRequest)
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name("id")
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .map_err(|e| self.unbuilt(e))?,
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name("id")
                            .key_type(KeyType::Hash)
                            .build()
                            .map_err(|e| self.unbuilt(e))?,
                    )
                    .send()
                    .await;
                match created {
                    Ok(_) => None,
                    // Another worker created it first.
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => None,
                    Err(e) => return Err(self.explain("dynamodb:CreateTable", &e)),
                }
            }
            Err(e) => return Err(self.explain("dynamodb:DescribeTable", &e)),
        };
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + CREATE_WAIT;
        loop {
            let reply = self.client.describe_table().table_name(&self.name).send().await;
            match reply {
                Ok(r) if r.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) => {
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
                Err(e) => return Err(self.explain("dynamodb:DescribeTable", &e)),
            }
            if tokio::time::Instant::now() > deadline {
                return Err(LeaseError::Failed {
                    table: self.name.clone(),
                    action: "dynamodb:CreateTable",
                    detail: format!("the table did not become active within {CREATE_WAIT:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The group row, read consistently.
    pub async fn group(&self) -> Result<Group, LeaseError> {
        let reply = self
            .client_for_read()
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key(GROUP)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.explain("dynamodb:GetItem", &e))?;
        let item = reply.item().ok_or_else(|| LeaseError::Corrupt {
            table: self.name.clone(),
            row: GROUP.to_string(),
            reason: "missing".to_string(),
        })?;
        let workers = match item.get("workers") {
            Some(AttributeValue::M(map)) => map
                .iter()
                .filter_map(|(worker, entry)| {
                    let AttributeValue::M(entry) = entry else { return None };
                    Some((
                        worker.clone(),
                        Member {
                            heartbeat: get_n(entry, "heartbeat").unwrap_or(0),
                            renewed_at: get_s(entry, "renewed_at").unwrap_or_default(),
                        },
                    ))
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        Ok(Group {
            source: get_s(item, "source").unwrap_or_default(),
            checkpoints: get_s(item, "checkpoints").unwrap_or_default(),
            changes: get_n(item, "changes").unwrap_or(0),
            workers,
        })
    }

    /// Bump the group's change count: every worker scans the leases again.
    pub async fn bump(&self) -> Result<(), LeaseError> {
        self.client_for_write()
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key(GROUP)))
            .update_expression("ADD changes :one")
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| self.explain("dynamodb:UpdateItem", &e))?;
        Ok(())
    }

    /// Join the group as `worker` (or renew a membership someone removed).
    pub async fn join(&self, worker: &str, heartbeat: u64) -> Result<(), LeaseError> {
        let entry = HashMap::from([
            ("heartbeat".to_string(), n(heartbeat)),
            ("renewed_at".to_string(), s(jiff::Timestamp::now().to_string())),
        ]);
        self.client_for_write()
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key(GROUP)))
            .update_expression("SET workers.#w = :entry ADD changes :one")
            .expression_attribute_names("#w", worker)
            .expression_attribute_values(":entry", AttributeValue::M(entry))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| self.explain("dynamodb:UpdateItem", &e))?;
        Ok(())
    }

    /// Renew every lease `worker` holds: its heartbeat becomes `heartbeat`. False when the
    /// worker is no longer a member (the others took it for dead).
    pub async fn renew(&self, worker: &str, heartbeat: u64) -> Result<bool, LeaseError> {
        let reply = self
            .client_for_write()
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key(GROUP)))
            .update_expression("SET workers.#w.heartbeat = :hb, workers.#w.renewed_at = :at")
            .condition_expression("attribute_exists(workers.#w)")
            .expression_attribute_names("#w", worker)
            .expression_attribute_values(":hb", n(heartbeat))
            .expression_attribute_values(":at", s(jiff::Timestamp::now().to_string()))
            .send()
            .await;
        self.conditional(reply)
    }

    /// Remove `worker` from the group if its heartbeat is still `heartbeat` (it stopped
    /// renewing). True when this call removed it.
    pub async fn expel(&self, worker: &str, heartbeat: u64) -> Result<bool, LeaseError> {
        let reply = self
            .client_for_write()
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key(GROUP)))
            .update_expression("REMOVE workers.#w ADD changes :one")
            .condition_expression("workers.#w.heartbeat = :hb")
            .expression_attribute_names("#w", worker)
            .expression_attribute_values(":hb", n(heartbeat))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        self.conditional(reply)
    }

    /// Leave the group (after releasing every lease).
    pub async fn leave(&self, worker: &str) -> Result<(), LeaseError> {
        self.client_for_write()
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key(GROUP)))
            .update_expression("REMOVE workers.#w ADD changes :one")
            .expression_attribute_names("#w", worker)
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| self.explain("dynamodb:UpdateItem", &e))?;
        Ok(())
    }

    /// Every lease, read consistently.
    pub async fn leases(&self) -> Result<Vec<Lease>, LeaseError> {
        let mut leases = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let reply = self
                .client_for_read()
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.explain("dynamodb:Scan", &e))?;
            self.calls.scanned.fetch_add(reply.items().len() as u64, Relaxed);
            for item in reply.items() {
                if get_s(item, "id").is_some_and(|id| id != GROUP) {
                    leases.push(self.lease(item)?);
                }
            }
            match reply.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => break,
            }
        }
        leases.sort_by(|a, b| a.shard.cmp(&b.shard));
        Ok(leases)
    }

    fn lease(&self, item: &Item) -> Result<Lease, LeaseError> {
        let shard = get_s(item, "id").unwrap_or_default();
        let corrupt = |reason: &str| LeaseError::Corrupt {
            table: self.name.clone(),
            row: shard.clone(),
            reason: reason.to_string(),
        };
        let hash = |name| get_s(item, name).and_then(|v| v.parse::<u128>().ok());
        let (Some(start), Some(end)) = (hash("hash_start"), hash("hash_end")) else {
            return Err(corrupt("no hash range"));
        };
        let parents = match item.get("parents") {
            Some(AttributeValue::L(list)) => list.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
            _ => Vec::new(),
        };
        Ok(Lease {
            shard: shard.clone(),
            owner: get_s(item, "owner"),
            counter: get_n(item, "counter").unwrap_or(0),
            finished: item.get("finished").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
            parents,
            hash_range: HashRange { start, end },
            checkpoint: get_s(item, "checkpoint"),
            position: get_s(item, "position"),
            checkpoint_at: get_s(item, "checkpoint_at"),
            event_time_ms: get_i(item, "event_time_ms"),
        })
    }

    /// Add a row for each of `shards` the table does not have yet (an existing row is left
    /// as it is). Returns how many were added.
    pub async fn add(&self, shards: &[ShardInfo]) -> Result<usize, LeaseError> {
        let mut added = 0;
        for shard in shards {
            let row = HashMap::from([
                ("id".to_string(), s(&shard.id)),
                ("counter".to_string(), n(0)),
                ("finished".to_string(), AttributeValue::Bool(false)),
                ("parents".to_string(), AttributeValue::L(shard.parents.iter().map(s).collect())),
                ("hash_start".to_string(), s(shard.hash_range.start.to_string())),
                ("hash_end".to_string(), s(shard.hash_range.end.to_string())),
            ]);
            let put = self
                .client_for_write()
                .put_item()
                .table_name(&self.name)
                .set_item(Some(row))
                .condition_expression("attribute_not_exists(id)")
                .send()
                .await;
            match put {
                Ok(_) => added += 1,
                Err(e) if condition_failed(&e) => {}
                Err(e) => return Err(self.explain("dynamodb:PutItem", &e)),
            }
        }
        Ok(added)
    }

    /// Take `lease` for `worker`, if nobody changed it since it was read. Returns the new
    /// counter, or None when someone else moved first.
    pub async fn take(&self, lease: &Lease, worker: &str) -> Result<Option<u64>, LeaseError> {
        let mut update = self
            .client_for_write()
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key(&lease.shard)))
            .update_expression("SET #owner = :me ADD #counter :one")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#counter", "counter")
            .expression_attribute_values(":me", s(worker))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":seen", n(lease.counter))
            .expression_attribute_values(":no", AttributeValue::Bool(false));
        update = match &lease.owner {
            Some(previous) => update
                .condition_expression("#counter = :seen AND finished = :no AND #owner = :previous")
                .expression_attribute_values(":previous", s(previous)),
            None => update
                .condition_expression("#counter = :seen AND finished = :no AND attribute_not_exists(#owner)"),
        };
        match update.send().await {
            Ok(_) => Ok(Some(lease.counter + 1)),
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(self.explain("dynamodb:UpdateItem", &e)),
        }
    }

    /// Record where `shard`'s checkpoint is, if `worker` still holds it with `counter`. False
    /// when it does not (the lease was lost: the write is refused).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_checkpoint(
        &self,
        shard: &str,
        worker: &str,
        counter: u64,
        object: &str,
        position: Option<&str>,
        event_time_ms: Option<i64>,
        at: jiff::Timestamp,
    ) -> Result<bool, LeaseError> {
        // A shard with no record yet has neither a position nor an event time: a checkpoint
        // only ever adds them, so they are set when known and otherwise left alone.
        let mut set = vec!["checkpoint = :object", "checkpoint_at = :at"];
        let mut update = self
            .client_for_write()
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key(shard)))
            .condition_expression("#owner = :me AND #counter = :counter")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#counter", "counter")
            .expression_attribute_values(":me", s(worker))
            .expression_attribute_values(":counter", n(counter))
            .expression_attribute_values(":object", s(object))
            .expression_attribute_values(":at", s(at.to_string()));
        if let Some(position) = position {
            set.push("#position = :position");
            update = update
                .expression_attribute_names("#position", "position")
                .expression_attribute_values(":position", s(position));
        }
        if let Some(t) = event_time_ms {
            set.push("event_time_ms = :event");
            update = update.expression_attribute_values(":event", AttributeValue::N(t.to_string()));
        }
        let expression = format!("SET {}", set.join(", "));
        self.conditional(update.update_expression(expression).send().await)
    }

    /// Give `shard` up (`finished`: for good, it was read to its end), if `worker` still holds
    /// it with `counter`. False when it did not hold it any more.
    pub async fn release(
        &self,
        shard: &str,
        worker: &str,
        counter: u64,
        finished: bool,
    ) -> Result<bool, LeaseError> {
        let reply = self
            .client_for_write()
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key(shard)))
            .update_expression("SET finished = :finished REMOVE #owner")
            .condition_expression("#owner = :me AND #counter = :counter")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#counter", "counter")
            .expression_attribute_values(":me", s(worker))
            .expression_attribute_values(":counter", n(counter))
            .expression_attribute_values(":finished", AttributeValue::Bool(finished))
            .send()
            .await;
        self.conditional(reply)
    }
}
