//! An operator that misbehaves on request: the weir host's test fixture for traps, CPU and
//! memory limits, failed batches and failed inits.
//!
//! Otherwise it echoes every record (same key, same data) and counts records per key, so tests
//! can see that state survives a restart. Settings, each naming a text that triggers it when a
//! record's data contains it:
//!
//! - `trap-on`: panic (a wasm trap) on that record;
//! - `fail-on`: fail the whole batch that holds it;
//! - `reject-on`: refuse that record;
//! - `spin-on`: loop forever on it (for the CPU limit);
//! - `alloc-on`: allocate without bound on it (for the memory limit);
//! - `flood-on`: emit 2 MiB of results for it (for the output limit);
//! - `fail-restore=true`: refuse any state given to `restore`;
//! - `fail-init=true`: refuse to start;
//! - `key-field=NAME`: group records by this JSON field (default: by partition key);
//! - `trap-first=N`: trap in the first N `process` calls of each instance.

use std::collections::BTreeMap;

use weir_operator::{Batch, Error, Grouping, KeyedStates, Operator, Output, Settings, codec};

/// The fixture operator.
#[derive(Debug, Default)]
pub struct Fixture {
    trap_on: Option<String>,
    fail_on: Option<String>,
    reject_on: Option<String>,
    spin_on: Option<String>,
    alloc_on: Option<String>,
    flood_on: Option<String>,
    fail_restore: bool,
    key_field: Option<String>,
    trap_first: u32,
    calls: u32,
    counts: BTreeMap<String, u64>,
}

fn contains(data: &[u8], needle: &Option<String>) -> bool {
    needle.as_ref().is_some_and(|n| !n.is_empty() && data.windows(n.len()).any(|w| w == n.as_bytes()))
}

impl Operator for Fixture {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.check_known(&[
            "trap-on",
            "fail-on",
            "reject-on",
            "spin-on",
            "alloc-on",
            "flood-on",
            "fail-restore",
            "key-field",
            "fail-init",
            "trap-first",
        ])?;
        if settings.get("fail-init") == Some("true") {
            return Err(Error::new("told to fail init (fail-init=true)"));
        }
        let text = |k: &str| settings.get(k).map(str::to_string);
        Ok(Self {
            trap_on: text("trap-on"),
            fail_on: text("fail-on"),
            reject_on: text("reject-on"),
            spin_on: text("spin-on"),
            alloc_on: text("alloc-on"),
            flood_on: text("flood-on"),
            fail_restore: settings.get("fail-restore") == Some("true"),
            key_field: text("key-field"),
            trap_first: settings.parse_or("trap-first", 0, |v| v.parse::<u32>())?,
            ..Self::default()
        })
    }

    fn grouping(&self) -> Grouping {
        match &self.key_field {
            Some(field) => Grouping::JsonField(field.clone()),
            None => Grouping::PartitionKey,
        }
    }

    fn process(&mut self, batch: &Batch<'_>, out: &mut Output) -> Result<(), Error> {
        self.calls += 1;
        if self.calls <= self.trap_first {
            panic!("told to trap in the first {} calls (trap-first)", self.trap_first);
        }
        if batch.records().any(|r| contains(r.data, &self.fail_on)) {
            return Err(Error::new("told to fail this batch (fail-on)"));
        }
        for record in batch.records() {
            if contains(record.data, &self.trap_on) {
                panic!("told to trap on this record (trap-on)");
            }
            if contains(record.data, &self.spin_on) {
                let mut x: u64 = 1;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(3));
                }
            }
            if contains(record.data, &self.alloc_on) {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            if contains(record.data, &self.flood_on) {
                let chunk = vec![b'x'; 64 << 10];
                for _ in 0..32 {
                    out.emit(record.partition_key, &chunk);
                }
                continue;
            }
            if contains(record.data, &self.reject_on) {
                out.reject(record.index, "told to refuse this record (reject-on)");
                continue;
            }
            *self.counts.entry(record.partition_key.to_string()).or_default() += 1;
            out.emit(record.partition_key, record.data);
        }
        Ok(())
    }

    fn finish(&mut self, _now_ms: i64, out: &mut Output) -> Result<(), Error> {
        for (key, n) in &self.counts {
            out.emit(key, format!("count={n}").as_bytes());
        }
        Ok(())
    }

    fn snapshot(&self, out: &mut KeyedStates) -> Result<(), Error> {
        for (key, n) in &self.counts {
            out.push_with(key, |buf| codec::encode_into(1, n, buf))?;
        }
        Ok(())
    }

    fn restore(&mut self, state: &KeyedStates) -> Result<(), Error> {
        if self.fail_restore {
            return Err(Error::new("told to refuse any state (fail-restore=true)"));
        }
        for e in state.iter() {
            *self.counts.entry(e.key.to_owned()).or_default() += codec::decode::<u64>(1, e.state)?;
        }
        Ok(())
    }
}

weir_operator::export_operator!(Fixture);
