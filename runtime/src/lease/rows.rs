//! The lease rows of the lease table, one per shard: listing them, adding new shards, taking
//! a lease (conditioned on the counter read), recording a checkpoint and giving a lease up
//! (conditioned on the owner and counter it was taken with).

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

use aws_sdk_dynamodb::types::AttributeValue;
use weir_kinesis::{HashRange, ShardInfo};

use super::table::{GROUP, Item, LeaseTable, condition_failed, get_i, get_n, get_s, key, n, s};
use super::{Lease, LeaseError};

impl LeaseTable {
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
            if self.put_new(row).await? {
                added += 1;
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
