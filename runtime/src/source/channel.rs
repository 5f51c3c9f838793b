//! Events another task sends, as a source: for a program that embeds weir and reads its own
//! input, and for tests that script exactly what a source says and when (shards starting and
//! ending, batches, caught-up reads) without an emulator or a clock.

use tokio::sync::mpsc;

use super::{SourceError, SourceEvent};

/// The events of a channel, passed on in order until its senders are gone (the end of input).
pub struct ChannelSource {
    events: mpsc::Receiver<SourceEvent>,
}

impl ChannelSource {
    /// The source of what is sent on `events`; it must follow [`SourceEvent`]'s order per shard.
    pub fn new(events: mpsc::Receiver<SourceEvent>) -> Self {
        Self { events }
    }

    pub(super) async fn run(mut self, tx: mpsc::Sender<SourceEvent>) -> Result<(), SourceError> {
        while let Some(event) = self.events.recv().await {
            if tx.send(event).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}
