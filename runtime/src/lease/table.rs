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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TableStatus,
};
use weir_aws::{self as aws, Transient, cause, describe, one_line};

use super::{Group, LeaseError};

/// The group row's id (no shard id starts with `#`).
pub const GROUP: &str = "#group";
/// How long a new table may take to become active.
const CREATE_WAIT: Duration = Duration::from_secs(60);

pub(super) type Item = HashMap<String, AttributeValue>;

/// One lease table.
#[derive(Clone, Debug)]
pub struct LeaseTable {
    client: Client,
    pub(super) name: String,
    endpoint: String,
    pub(super) calls: Arc<Calls>,
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

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub(super) fn get_n(item: &Item, name: &str) -> Option<u64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

pub(super) fn get_i(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

pub(super) fn key(id: &str) -> Item {
    HashMap::from([("id".to_string(), s(id))])
}

/// Whether `error` is a failed condition.
pub(super) fn condition_failed<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
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

    pub(super) fn client_for_read(&self) -> &Client {
        self.calls.reads.fetch_add(1, Relaxed);
        &self.client
    }

    pub(super) fn client_for_write(&self) -> &Client {
        self.calls.writes.fetch_add(1, Relaxed);
        &self.client
    }

    /// A conditional UpdateItem's outcome: true when written, false when the condition failed.
    pub(super) fn conditional<O, E, R>(&self, reply: Result<O, SdkError<E, R>>) -> Result<bool, LeaseError>
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

    /// Write `row` unless a row with its id exists: true when written.
    pub(super) async fn put_new(&self, row: Item) -> Result<bool, LeaseError> {
        let put = self
            .client_for_write()
            .put_item()
            .table_name(&self.name)
            .set_item(Some(row))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(self.explain("dynamodb:PutItem", &e)),
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

    pub(super) fn explain<E, R>(&self, action: &'static str, error: &SdkError<E, R>) -> LeaseError
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
                transient: error.is_transient(),
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
        self.put_new(row).await?;
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
        // The SDK's waiter: DescribeTable until ACTIVE (not found yet counts as not yet).
        self.client.wait_until_table_exists().table_name(&self.name).wait(CREATE_WAIT).await.map_err(
            |e| LeaseError::Failed {
                table: self.name.clone(),
                action: "dynamodb:CreateTable",
                detail: format!(
                    "the table did not become active within {CREATE_WAIT:?}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                ),
            },
        )?;
        Ok(())
    }
}
