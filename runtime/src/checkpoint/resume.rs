//! Going on from a checkpoint: where a Kinesis reader resumes each of its shards, and whether
//! the operator running now can take its state. The single run and a lease group's terms check
//! a checkpoint the same way before anything starts.

use std::collections::BTreeMap;

use weir_kinesis::{Resume, StartPosition};

use super::{Checkpoint, ShardProgress, describe, operator_ref};
use crate::operator::{LoadedOperator, Runner};

/// Where a Kinesis reader resumes each shard of a checkpoint: after its last record, or, with
/// none read yet, from where it started being read (its beginning, or a time), so that nothing
/// written meanwhile is skipped.
pub fn resume_positions(shards: &BTreeMap<String, ShardProgress>) -> BTreeMap<String, Resume> {
    shards
        .iter()
        .map(|(id, progress)| {
            let resume = match (&progress.after, progress.finished) {
                (_, true) => Resume::Finished,
                (Some(after), false) => Resume::From(StartPosition::AfterSequenceNumber(after.clone())),
                (None, false) if progress.started_at_ms <= 0 => Resume::From(StartPosition::TrimHorizon),
                (None, false) => Resume::From(
                    jiff::Timestamp::from_millisecond(progress.started_at_ms)
                        .map_or(StartPosition::TrimHorizon, StartPosition::AtTimestamp),
                ),
            };
            (id.clone(), resume)
        })
        .collect()
}

/// The operator running now cannot take a checkpoint's state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state is grouped by another key.
    #[error(
        "checkpoint {id} at {location} holds state grouped by {grouping}, but operator {operator} groups by {running}: state cannot move to another grouping key; run with --reset-state to go on from the checkpoint's positions without its state"
    )]
    OtherGrouping {
        /// The checkpoint.
        id: u64,
        /// Where it is.
        location: String,
        /// Its grouping key.
        grouping: String,
        /// The running operator, in words.
        operator: String,
        /// Its grouping key.
        running: String,
    },
    /// The operator's `restore` refused the state.
    #[error(
        "operator {operator} cannot restore the state of checkpoint {id} at {location}, written by operator {written_by}: {reason}; run with --reset-state to go on from the checkpoint's positions without its state"
    )]
    Refused {
        /// The running operator, in words.
        operator: String,
        /// The checkpoint.
        id: u64,
        /// Where it is.
        location: String,
        /// The operator that wrote it, in words.
        written_by: String,
        /// What the operator said.
        reason: String,
    },
}

/// Check that `loaded` can go on from `checkpoint`'s state (taken at `location`): the same
/// grouping key, and a state its `restore` takes (tried on one instance now, not once the
/// pipeline runs). With `reset_state` the state is dropped instead.
pub fn check_state(
    checkpoint: &mut Checkpoint,
    loaded: &LoadedOperator,
    reset_state: bool,
    location: &str,
) -> Result<(), StateError> {
    let meta = &checkpoint.meta;
    let running = operator_ref(loaded);
    if reset_state {
        tracing::warn!(
            "--reset-state: the state of checkpoint {} ({} entries, operator {}) is dropped; its shard positions are kept",
            meta.id,
            checkpoint.state.len(),
            describe(&meta.operator)
        );
        checkpoint.state = Default::default();
    } else if meta.operator.grouping != running.grouping {
        return Err(StateError::OtherGrouping {
            id: meta.id,
            location: location.to_string(),
            grouping: meta.operator.grouping.clone(),
            operator: describe(&running),
            running: running.grouping,
        });
    } else if !checkpoint.state.is_empty()
        && let Err(e) = Runner::new(loaded.clone(), "the restore check", checkpoint.state.clone())
    {
        return Err(StateError::Refused {
            operator: describe(&running),
            id: meta.id,
            location: location.to_string(),
            written_by: describe(&meta.operator),
            reason: e.to_string(),
        });
    }
    Ok(())
}
