//! Which leases a worker takes and which it gives up, decided from one consistent read of the
//! table and the group's live workers. Every worker runs the same rule on its own:
//!
//! - a lease can be held once it is not finished and each of its parents is finished (or gone
//!   from the table): a child shard waits for its parents, whoever read them;
//! - with `L` such leases and `W` live workers, a worker takes free leases (no owner, or an
//!   owner no longer in the group) up to floor(L / W), and up to ceil(L / W) only from the
//!   free leases that those holding fewer than floor do not need (so that three joiners of a
//!   group do not leave the last of them short, and a lease given up for them goes to them and
//!   not back);
//! - a worker holding more than ceil(L / W) gives the extra up, but only while some live worker
//!   holds fewer than floor(L / W): that is the hysteresis. If the extra is not enough for
//!   those short of floor (four leases over three workers held two, two and none: nobody is
//!   over the ceiling of two), workers holding exactly the ceiling give up one each, as many as
//!   are still missing beyond the free leases, chosen by name so every worker picks the same
//!   ones (the KCL steals one from a worker at its target in the same case). A group where
//!   everyone holds floor or ceil (or where no one is short) moves nothing, and an idle shard's
//!   lease stays where it is. After a join or a loss it settles with every worker holding at
//!   least floor(L / W) and at most ceil(L / W) + 1.
//!
//! Nobody takes a lease a live worker holds: leases move from the living only when their
//! owner gives them up (after a final checkpoint), so a rebalance produces no duplicate.

use std::collections::{BTreeMap, BTreeSet};

use super::Lease;

/// What one worker should do now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Leases to take (free, or held by a worker that left the group), best first.
    pub take: Vec<Lease>,
    /// Shards of its own to give up.
    pub shed: Vec<String>,
    /// It holds fewer than floor(L / W) and the free leases do not bring it there: it waits
    /// for others to give leases up, which they decide only when they next read the table.
    pub short: bool,
}

/// Whether `lease` may be held: not finished, and every parent finished or gone.
pub fn leasable(lease: &Lease, by_shard: &BTreeMap<&str, &Lease>) -> bool {
    !lease.finished && lease.parents.iter().all(|p| by_shard.get(p.as_str()).is_none_or(|p| p.finished))
}

/// The plan of worker `me` over `leases`, with `live` the group's members (`me` among them).
pub fn plan(leases: &[Lease], live: &BTreeSet<String>, me: &str) -> Plan {
    let by_shard: BTreeMap<&str, &Lease> = leases.iter().map(|l| (l.shard.as_str(), l)).collect();
    let active: Vec<&Lease> = leases.iter().filter(|l| leasable(l, &by_shard)).collect();
    let workers = live.len().max(1);
    let high = active.len().div_ceil(workers);
    let low = active.len() / workers;
    let mut held: BTreeMap<&str, usize> = live.iter().map(|w| (w.as_str(), 0)).collect();
    for lease in &active {
        if let Some(count) = lease.owner.as_deref().and_then(|o| held.get_mut(o)) {
            *count += 1;
        }
    }
    let mine = held.get(me).copied().unwrap_or(0);
    let free: Vec<&Lease> =
        active.iter().copied().filter(|l| l.owner.as_ref().is_none_or(|o| !live.contains(o))).collect();
    // How many leases the workers short of floor miss beyond the free ones, and how much of
    // that the workers over the ceiling cover by giving their extra up.
    let missing: usize = held.values().map(|&h| low.saturating_sub(h)).sum();
    let uncovered = missing.saturating_sub(free.len());
    let extra: usize = held.values().map(|&h| h.saturating_sub(high)).sum();
    // A worker short of floor takes what it misses, and one more only from what the short
    // do not need; a worker at floor or more takes only from that too, so that a lease given
    // up for one of them does not go back.
    let surplus = free.len().saturating_sub(missing);
    let wanted = if mine < low {
        low - mine + (high - low).min(surplus)
    } else {
        high.saturating_sub(mine).min(surplus)
    };
    let mut plan = Plan::default();
    if wanted > 0 {
        let mut free = free;
        // Workers try different free leases first, so that they seldom race for the same one.
        free.sort_by_key(|l| xxhash_rust::xxh3::xxh3_64(format!("{me}/{}", l.shard).as_bytes()));
        plan.take = free.into_iter().take(wanted).cloned().collect();
        plan.short = mine + plan.take.len() < low;
    } else if uncovered > 0 {
        let give = if mine > high {
            mine - high
        } else if mine == high && high > low {
            // The first `uncovered - extra` workers at the ceiling, by name, give one each.
            let at_ceiling = held.iter().filter(|&(_, &h)| h == high).map(|(w, _)| *w);
            usize::from(at_ceiling.take(uncovered.saturating_sub(extra)).any(|w| w == me))
        } else {
            0
        };
        let mut own: Vec<&Lease> =
            active.iter().copied().filter(|l| l.owner.as_deref() == Some(me)).collect();
        own.sort_by(|a, b| b.shard.cmp(&a.shard));
        plan.shed = own.into_iter().take(give).map(|l| l.shard.clone()).collect();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_kinesis::HashRange;

    fn lease(shard: usize, owner: Option<&str>) -> Lease {
        Lease {
            shard: format!("shard-{shard:04}"),
            owner: owner.map(str::to_string),
            counter: 0,
            finished: false,
            parents: vec![],
            hash_range: HashRange::ALL,
            checkpoint: None,
            position: None,
            checkpoint_at: None,
            event_time_ms: None,
        }
    }

    fn workers(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Run every worker's plan in turn (takes and sheds applied at once) until nobody moves.
    fn settle(leases: &mut [Lease], live: &BTreeSet<String>) -> usize {
        for round in 0..100 {
            let mut moved = false;
            for me in live {
                let plan = plan(leases, live, me);
                for shard in &plan.shed {
                    leases.iter_mut().filter(|l| &l.shard == shard).for_each(|l| l.owner = None);
                    moved = true;
                }
                for taken in &plan.take {
                    leases
                        .iter_mut()
                        .filter(|l| l.shard == taken.shard)
                        .for_each(|l| l.owner = Some(me.clone()));
                    moved = true;
                }
            }
            if !moved {
                return round;
            }
        }
        panic!("no settling in 100 rounds");
    }

    fn counts(leases: &[Lease], live: &BTreeSet<String>) -> Vec<usize> {
        live.iter().map(|w| leases.iter().filter(|l| l.owner.as_ref() == Some(w)).count()).collect()
    }

    #[test]
    fn free_leases_are_shared_out_evenly_and_then_nothing_moves() {
        let mut leases: Vec<Lease> = (0..8).map(|i| lease(i, None)).collect();
        let live = workers(&["a", "b", "c"]);
        settle(&mut leases, &live);
        let mut held = counts(&leases, &live);
        held.sort();
        assert_eq!(held, [2, 3, 3]);
        assert!(leases.iter().all(|l| l.owner.is_some()));
        assert_eq!(settle(&mut leases, &live), 0, "a balanced group moves nothing");
    }

    #[test]
    fn a_worker_that_joins_gets_a_share_from_the_overloaded_ones() {
        let mut leases: Vec<Lease> = (0..8).map(|i| lease(i, Some(if i < 4 { "a" } else { "b" }))).collect();
        let live = workers(&["a", "b", "c"]);
        settle(&mut leases, &live);
        let held = counts(&leases, &live);
        assert!(held.iter().all(|&h| (2..=3).contains(&h)), "{held:?}");
    }

    #[test]
    fn within_one_of_the_ceiling_is_balanced_enough_no_lease_moves() {
        // 4, 2, 2 of 8 over 3: ceil is 3, nobody is under floor 2, so nothing moves.
        let mut leases: Vec<Lease> =
            (0..8).map(|i| lease(i, Some(["a", "a", "a", "a", "b", "b", "c", "c"][i]))).collect();
        let live = workers(&["a", "b", "c"]);
        assert_eq!(settle(&mut leases, &live), 0);
    }

    #[test]
    fn no_worker_is_left_idle_when_the_others_hold_the_ceiling() {
        // 2, 2, 0 of 4 over 3: nobody is over the ceiling of 2, yet c holds nothing.
        let before: Vec<Lease> = (0..4).map(|i| lease(i, Some(["a", "a", "b", "b"][i]))).collect();
        let mut leases = before.clone();
        let live = workers(&["a", "b", "c"]);
        settle(&mut leases, &live);
        assert_eq!(counts(&leases, &live), [1, 2, 1]);
        let moved = before.iter().zip(&leases).filter(|(b, a)| b.owner != a.owner).count();
        assert_eq!(moved, 1, "one lease given up, by one worker, and taken by the idle one");
        assert_eq!(settle(&mut leases, &live), 0, "then nothing moves");
        // The lease a gave up is c's: a, at floor, does not take it back.
        let given_up: Vec<Lease> =
            (0..4).map(|i| lease(i, [Some("a"), None, Some("b"), Some("b")][i])).collect();
        assert_eq!(plan(&given_up, &live, "a"), Plan::default());
        assert_eq!(plan(&given_up, &live, "c").take.len(), 1);
        // Before a gave it up, c is short with nothing to take: it says so (the loop then asks
        // the others to look again).
        let idle: Vec<Lease> = (0..4).map(|i| lease(i, Some(["a", "a", "b", "b"][i]))).collect();
        assert!(plan(&idle, &live, "c").short);
        assert!(!plan(&idle, &live, "a").short);
    }

    #[test]
    fn joiners_taking_in_turn_each_reach_floor_without_leaving_the_last_short() {
        // 40 over six: three workers at 7 (the ceiling) after giving their extra up, 19 free,
        // three joiners (floor 6). Taking up to the ceiling, the first two took 7 each and
        // left the third 5, short until someone at the ceiling gave one up.
        let owners = |i: usize| match i {
            0..7 => Some("w5"),
            7..14 => Some("w6"),
            14..21 => Some("w7"),
            _ => None,
        };
        let mut leases: Vec<Lease> = (0..40).map(|i| lease(i, owners(i))).collect();
        let live = workers(&["j0", "j1", "j2", "w5", "w6", "w7"]);
        for joiner in ["j0", "j1", "j2"] {
            let plan = plan(&leases, &live, joiner);
            assert!(!plan.short, "{joiner} reaches floor from the free leases");
            for taken in &plan.take {
                leases
                    .iter_mut()
                    .filter(|l| l.shard == taken.shard)
                    .for_each(|l| l.owner = Some(joiner.into()));
            }
        }
        assert_eq!(counts(&leases, &live), [7, 6, 6, 7, 7, 7]);
    }

    #[test]
    fn a_worker_joining_twenty_gets_its_floor_and_only_its_share_moves() {
        let names: Vec<String> = (0..20).map(|i| format!("w{i:02}")).collect();
        let before: Vec<Lease> = (0..1000).map(|i| lease(i, Some(&names[i / 50]))).collect();
        let mut leases = before.clone();
        let live: BTreeSet<String> = names.iter().cloned().chain(["new".to_string()]).collect();
        settle(&mut leases, &live);
        let held = counts(&leases, &live);
        // floor(1000 / 21) = 47, ceil = 48.
        assert!(held.iter().all(|&h| (47..=48).contains(&h)), "{held:?}");
        let joined = leases.iter().filter(|l| l.owner.as_deref() == Some("new")).count();
        let moved = before.iter().zip(&leases).filter(|(b, a)| b.owner != a.owner).count();
        assert_eq!(moved, joined, "no lease moves between the workers that were there");
    }

    #[test]
    fn the_leases_of_a_worker_that_left_are_taken_up_to_the_new_ceiling() {
        let owners = ["a", "a", "a", "b", "b", "b", "c", "c"];
        let mut leases: Vec<Lease> = (0..8).map(|i| lease(i, Some(owners[i]))).collect();
        let live = workers(&["a", "b"]);
        settle(&mut leases, &live);
        assert_eq!(counts(&leases, &live), [4, 4]);
        assert!(leases.iter().all(|l| l.owner.as_deref() != Some("c")));
    }

    #[test]
    fn a_child_waits_for_every_parent_to_finish() {
        let mut parent_a = lease(0, Some("a"));
        let parent_b = lease(1, None);
        let mut child = lease(2, None);
        child.parents = vec![parent_a.shard.clone(), parent_b.shard.clone()];
        let live = workers(&["a"]);
        let taken = |leases: &[Lease]| {
            plan(leases, &live, "a").take.iter().map(|l| l.shard.clone()).collect::<Vec<_>>()
        };
        let mut finished_b = parent_b.clone();
        finished_b.finished = true;
        assert_eq!(taken(&[parent_a.clone(), finished_b.clone(), child.clone()]), Vec::<String>::new());
        parent_a.finished = true;
        parent_a.owner = None;
        assert_eq!(taken(&[parent_a, finished_b, child.clone()]), [child.shard.clone()]);
        // A parent gone from the table (past retention) does not hold the child back.
        assert_eq!(taken(&[child.clone()]), [child.shard]);
    }

    #[test]
    fn at_scale_twenty_workers_settle_between_floor_and_ceiling_plus_one() {
        let mut leases: Vec<Lease> = (0..1000).map(|i| lease(i, None)).collect();
        let names: Vec<String> = (0..20).map(|i| format!("w{i:02}")).collect();
        let live: BTreeSet<String> = names.iter().cloned().collect();
        settle(&mut leases, &live);
        assert!(counts(&leases, &live).iter().all(|&h| h == 50));
        // Five leave, three join.
        let live: BTreeSet<String> =
            names[5..].iter().cloned().chain(["x", "y", "z"].map(String::from)).collect();
        settle(&mut leases, &live);
        let held = counts(&leases, &live);
        let (floor, ceiling) = (1000 / live.len(), 1000usize.div_ceil(live.len()));
        assert!(held.iter().all(|&h| (floor..=ceiling + 1).contains(&h)), "{held:?}");
        assert_eq!(held.iter().sum::<usize>(), 1000);
    }
}
