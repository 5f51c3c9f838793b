//! The group row of the lease table (`#group`): which job the table serves, its workers'
//! heartbeats, and the change count every worker watches. Joining, renewing (every lease of a
//! worker at once), expelling a silent worker and leaving are single conditional updates.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::table::{GROUP, LeaseTable, get_n, get_s, key, n, s};
use super::{Group, LeaseError, Member};

impl LeaseTable {
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
}
