//! Events another task sends, as a source: for a program that embeds weir and reads its own
//! input, and for tests that script exactly what a source says and when (shards starting and
//! ending, batches, caught-up reads) without an emulator or a clock.

use tokio::sync::mpsc;

use super::{SourceError, SourceEvent};
use crate::routing::Router;

/// The events of a channel, passed on in order until its senders are gone (the end of input).
pub struct ChannelSource {
    events: mpsc::Receiver<SourceEvent>,
}

impl ChannelSource {
    /// The source of what is sent on `events`; it must follow [`SourceEvent`]'s order per shard.
    /// Batches are routed as they pass, unless they were routed for as many instances.
    pub fn new(events: mpsc::Receiver<SourceEvent>) -> Self {
        Self { events }
    }

    pub(super) async fn run(
        mut self,
        tx: mpsc::Sender<SourceEvent>,
        router: &Router,
    ) -> Result<(), SourceError> {
        while let Some(mut event) = self.events.recv().await {
            if let SourceEvent::Batch { batch, .. } = &mut event {
                batch.route(router);
            }
            if tx.send(event).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}
