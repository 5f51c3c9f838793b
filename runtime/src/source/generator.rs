//! The built-in trade generator as a source: trades for the reference application, partition
//! key = ticker, paced to a wall-clock rate. Event time starts at the current time and advances
//! 1 ms per trade, so at the default rate of 10,000 trades/s event time runs ten times faster
//! than the wall clock and 60-second windows close every second or so.

use std::time::Duration;

use tokio::sync::mpsc;
use weir_producer::{GeneratorConfig, Pacer, TradeGenerator};

use super::{Batcher, SourceError, SourceEvent};
use crate::clock::now_ms;
use crate::routing::Router;

/// The shard name the generator's records carry.
pub const GENERATOR_SHARD: &str = "generator";

/// Settings of the generator source.
#[derive(Clone, Debug)]
pub struct GeneratorSource {
    /// What to generate.
    pub config: GeneratorConfig,
    /// Trades per second of wall-clock time (0: as fast as possible).
    pub rate: f64,
    /// Stop after this many trades (None: run until stopped).
    pub count: Option<u64>,
    /// Records per batch, at most.
    pub batch_size: usize,
}

impl GeneratorSource {
    pub(super) async fn run(self, tx: mpsc::Sender<SourceEvent>, router: &Router) -> Result<(), SourceError> {
        if tx.send(SourceEvent::root(GENERATOR_SHARD)).await.is_err() {
            return Ok(());
        }
        let mut generator = TradeGenerator::new(&self.config)?;
        let mut pacer = Pacer::new(self.rate);
        let mut sent: u64 = 0;
        let mut line = Vec::with_capacity(128);
        let mut batch = Batcher::new(router, GENERATOR_SHARD);
        loop {
            let room = self.count.map_or(u64::MAX, |c| c - sent).min(self.batch_size as u64);
            if room == 0 {
                return Ok(());
            }
            let due = pacer.due(room);
            if due == 0 {
                tokio::time::sleep(pacer.until_next().max(Duration::from_millis(1))).await;
                continue;
            }
            let arrival = now_ms();
            for _ in 0..due {
                line.clear();
                let ticker = generator.write_next(&mut line);
                batch.push(ticker, &line, arrival, None);
            }
            sent += due;
            if tx.send(SourceEvent::batch(batch.take())).await.is_err() {
                return Ok(());
            }
        }
    }
}
