//! Where every shard stands in the pipeline: the lineage it was started with, the position of
//! its last record handed to the instances, whether it was read to its end. Between steps every
//! record handed over has been processed, so this is what a checkpoint records and a restart
//! resumes from.

use std::collections::BTreeMap;

use super::watermark::Watermarks;
use crate::checkpoint::ShardProgress;

/// Every shard seen, by id (those of the checkpoint restored from included).
#[derive(Debug, Default)]
pub struct Progress {
    shards: BTreeMap<String, ShardProgress>,
}

impl Progress {
    /// Go on from the shards of a checkpoint.
    pub fn restored(shards: BTreeMap<String, ShardProgress>) -> Self {
        Self { shards }
    }

    /// `shard` starts being read from `from_ms` (its records from that time on; 0: from its
    /// beginning). A shard already known keeps what it had.
    pub fn started(&mut self, shard: &str, parents: &[String], from_ms: i64) {
        self.shards.entry(shard.to_string()).or_insert_with(|| ShardProgress {
            parents: parents.to_vec(),
            started_at_ms: from_ms,
            ..ShardProgress::default()
        });
    }

    /// Records of `shard` up to `position` were handed to the instances.
    pub fn advanced(&mut self, shard: &str, position: Option<&str>) {
        if let (Some(progress), Some(position)) = (self.shards.get_mut(shard), position) {
            match &mut progress.after {
                Some(after) => position.clone_into(after),
                None => progress.after = Some(position.to_string()),
            }
        }
    }

    /// `shard` was read to its end.
    pub fn ended(&mut self, shard: &str) {
        if let Some(progress) = self.shards.get_mut(shard) {
            progress.finished = true;
        }
    }

    /// Whether `shard` continues `ancestor` (a child, grandchild... after splits and merges).
    pub fn descends_from(&self, shard: &str, ancestor: &str) -> bool {
        let mut next: Vec<&str> = vec![shard];
        let mut steps = 0;
        while let Some(s) = next.pop() {
            steps += 1;
            if steps > 10_000 {
                return false;
            }
            for parent in self.shards.get(s).map(|p| &p.parents[..]).unwrap_or_default() {
                if parent == ancestor {
                    return true;
                }
                next.push(parent);
            }
        }
        false
    }

    /// Every shard now, with its clock from `watermarks`: a checkpoint's shards.
    pub fn cut(&self, watermarks: &Watermarks) -> BTreeMap<String, ShardProgress> {
        self.shards
            .iter()
            .map(|(id, progress)| {
                let event_time_ms = watermarks.clock(id).or(progress.event_time_ms);
                (id.clone(), ShardProgress { event_time_ms, ..progress.clone() })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use weir_kinesis::{Resume, StartPosition};

    use super::*;
    use crate::checkpoint::resume_positions;

    #[test]
    fn a_shard_resumes_after_its_last_record_or_from_its_start_or_not_at_all() {
        let mut progress = Progress::default();
        progress.started("a", &[], 1_000);
        progress.started("b", &[], 2_000);
        progress.started("c", &["a".to_string()], 3_000);
        progress.started("d", &["a".to_string()], 0);
        progress.advanced("a", Some("11"));
        progress.advanced("a", Some("12"));
        progress.ended("a");
        progress.advanced("c", Some("31"));
        let shards = progress.cut(&Watermarks::new());
        assert_eq!(shards["c"].parents, ["a"]);
        let resume = resume_positions(&shards);
        assert_eq!(resume["a"], Resume::Finished);
        assert_eq!(
            resume["b"],
            Resume::From(StartPosition::AtTimestamp(jiff::Timestamp::from_millisecond(2_000).unwrap()))
        );
        assert_eq!(resume["c"], Resume::From(StartPosition::AfterSequenceNumber("31".into())));
        assert_eq!(resume["d"], Resume::From(StartPosition::TrimHorizon), "read from its beginning");
    }
}
