//! A native test driver for operators: the host's call sequence without wasm, for `cargo test`.

use crate::{DeadLetter, Error, KeyedStates, Operator, Output, OwnedBatch, Settings};

/// Drives one operator instance the way the host does: records are gathered into a batch,
/// which is processed when it is full, when time advances, or when the input ends.
///
/// The harness is a host reading one shard: the watermark is the latest event time the
/// operator reported. The host passes a new watermark with the next call; the harness passes
/// it at once, with a `tick`, so that a test sees windows fire right after the record that
/// moved the watermark (the outputs, in order, are the same either way).
///
/// Processing time starts at 0 and moves only when [`set_time`](Self::set_time) or
/// [`advance_time`](Self::advance_time) says so; records pushed get the current processing time
/// as their arrival time unless pushed with [`push_at`](Self::push_at).
pub struct Harness<O: Operator> {
    operator: O,
    settings: Settings,
    pending: OwnedBatch,
    batch_size: usize,
    outputs: Output,
    dead_letters: Vec<DeadLetter>,
}

/// A snapshot in the order the harness returns it: sorted by key.
fn sorted(state: &KeyedStates) -> KeyedStates {
    state.sorted().into_iter().collect()
}

impl<O: Operator> Harness<O> {
    /// Initialise an operator with `settings`, on shard `shard-0`, with batches of 1,024.
    pub fn new(settings: &[(&str, &str)]) -> Result<Self, Error> {
        let settings = Settings::from_pairs(settings);
        let operator = O::init(&settings)?;
        Ok(Self {
            operator,
            settings,
            pending: OwnedBatch::new("shard-0"),
            batch_size: 1024,
            outputs: Output::default(),
            dead_letters: Vec::new(),
        })
    }

    /// Process a batch whenever `records` records are pending (at least 1).
    pub fn with_batch_size(mut self, records: usize) -> Self {
        self.batch_size = records.max(1);
        self
    }

    /// Name the shard records come from.
    pub fn with_shard_id(mut self, shard_id: &str) -> Self {
        self.pending.shard_id = shard_id.to_string();
        self
    }

    /// Add a record arriving now. A full batch is processed at once; an error from it is kept
    /// for the next call that returns a `Result` ([`flush`](Self::flush) and the like).
    pub fn push(&mut self, partition_key: &str, data: &[u8]) -> &mut Self {
        let now = self.pending.now_ms;
        self.push_at(partition_key, data, now)
    }

    /// Add a record with an explicit arrival time (ms since the Unix epoch).
    pub fn push_at(&mut self, partition_key: &str, data: &[u8], arrival_time_ms: i64) -> &mut Self {
        self.pending.push(partition_key, data, arrival_time_ms);
        if self.pending.len() >= self.batch_size {
            // Surfaced again by the next flush: a failed batch stays pending.
            let _ = self.flush();
        }
        self
    }

    /// Process the pending records now, as one batch.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut out = Output::default();
        self.operator.process(&self.pending.view(), &mut out)?;
        for rejection in &out.rejected {
            if let Some(record) = self.pending.view().records().nth(rejection.index as usize) {
                self.dead_letters.push(DeadLetter::new(&record, rejection.reason.clone()));
            }
        }
        out.rejected.clear();
        self.outputs.append(&out);
        self.pending.clear();
        if let Some(time) = out.event_time_ms.filter(|&t| t > self.pending.watermark_ms) {
            self.pending.watermark_ms = time;
            self.tick()?;
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<(), Error> {
        let mut out = Output::default();
        self.operator.tick(self.pending.now_ms, self.pending.watermark_ms, &mut out)?;
        self.outputs.append(&out);
        Ok(())
    }

    /// The watermark: the latest event time the operator reported ([`NO_WATERMARK`](crate::NO_WATERMARK) before any).
    pub fn watermark_ms(&self) -> i64 {
        self.pending.watermark_ms
    }

    /// Set processing time (ms since the Unix epoch) without telling the operator; records
    /// pushed afterwards carry it.
    pub fn set_time(&mut self, now_ms: i64) -> &mut Self {
        let _ = self.flush();
        self.pending.now_ms = now_ms;
        self
    }

    /// Process pending records, move processing time to `now_ms` and tick the operator.
    pub fn advance_time(&mut self, now_ms: i64) -> Result<(), Error> {
        self.flush()?;
        self.pending.now_ms = now_ms;
        self.tick()
    }

    /// Process pending records and end the input.
    pub fn end_input(&mut self) -> Result<(), Error> {
        self.flush()?;
        let mut out = Output::default();
        self.operator.finish(self.pending.now_ms, &mut out)?;
        self.outputs.append(&out);
        Ok(())
    }

    /// Process a prepared batch as the host would (pending records go first).
    pub fn process(&mut self, batch: &OwnedBatch) -> Result<(), Error> {
        self.flush()?;
        let now_ms = batch.now_ms;
        let mut batch = batch.clone();
        batch.watermark_ms = self.pending.watermark_ms;
        let saved = std::mem::replace(&mut self.pending, batch);
        let result = self.flush();
        let watermark_ms = self.pending.watermark_ms;
        self.pending = saved;
        self.pending.now_ms = now_ms;
        self.pending.watermark_ms = watermark_ms;
        result
    }

    /// Everything emitted so far.
    pub fn output(&self) -> &Output {
        &self.outputs
    }

    /// Everything emitted so far, as `(key, data)` strings (data decoded as UTF-8, lossily).
    pub fn output_strings(&self) -> Vec<(String, String)> {
        self.outputs.iter().map(|(k, d)| (k.to_string(), String::from_utf8_lossy(d).into_owned())).collect()
    }

    /// Remove and return everything emitted so far.
    pub fn take_output(&mut self) -> Output {
        std::mem::take(&mut self.outputs)
    }

    /// Records the operator refused so far.
    pub fn dead_letters(&self) -> &[DeadLetter] {
        &self.dead_letters
    }

    /// The operator's keyed snapshot (pending records are processed first), sorted by key.
    pub fn snapshot(&mut self) -> Result<KeyedStates, Error> {
        self.flush()?;
        let mut state = KeyedStates::default();
        self.operator.snapshot(&mut state)?;
        Ok(sorted(&state))
    }

    /// Replace the operator with a fresh instance of the same settings restored from `state`,
    /// as the host does on a swap, a change of parallelism or a restart. Output collected so
    /// far is kept, and so is the watermark (the host's, not the operator's).
    pub fn restart_from(&mut self, state: &KeyedStates) -> Result<(), Error> {
        self.flush()?;
        state.check()?;
        let mut operator = O::init(&self.settings)?;
        operator.restore(state)?;
        self.operator = operator;
        Ok(())
    }

    /// The operator itself.
    pub fn operator(&self) -> &O {
        &self.operator
    }
}
