//! [`Ownership`]: which live node checks which probe. Every node computes
//! the same answer from the same membership list by rendezvous (highest
//! random weight) hashing: a probe belongs to the node whose
//! `sha256(node NUL probe)` is highest. When a node leaves, only its probes
//! move, spread over the rest; when one joins, it takes about `1/n` of every
//! other node's probes and nothing else moves.
//!
//! A pinned probe (a heartbeat, whose pushes land in the API of whichever
//! node receives them) belongs to the active node instead.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use sha2::{Digest, Sha256};

/// The node among `members` that owns `probe`, or `None` when there is no
/// member. Stable across processes, builds and platforms (SHA-256, not
/// `std`'s hasher).
pub fn rendezvous<'a>(probe: &str, members: &'a [String]) -> Option<&'a str> {
    members
        .iter()
        .map(|node| (weight(node, probe), node))
        .max()
        .map(|(_, node)| node.as_str())
}

fn weight(node: &str, probe: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(node.as_bytes());
    hasher.update([0]);
    hasher.update(probe.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[derive(Debug, Default)]
struct Shard {
    members: Vec<String>,
    active: Option<String>,
    /// The probes this node checks; what [`Ownership::owns`] answers from,
    /// so a check costs a set lookup, not a hash per member.
    owned: HashSet<String>,
    /// Probes per live node, computed with the split (hashing every probe
    /// per scrape would cost a hash per probe and member each time).
    counts: BTreeMap<String, usize>,
}

/// The probes this node owns, shared by every probe actor (each asks before
/// every check) and updated by the node's membership task.
#[derive(Debug, Clone)]
pub struct Ownership {
    node: String,
    probes: Arc<Vec<(String, bool)>>,
    shard: Arc<RwLock<Shard>>,
}

/// A split computed by [`Ownership::plan`], not yet applied.
#[derive(Debug)]
pub struct Plan {
    /// What applying it moves.
    pub moved: Moved,
    /// `None`: the members and the active node did not change.
    shard: Option<Shard>,
}

/// What one membership update moved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Moved {
    /// Probes this node checks from now on.
    pub gained: Vec<String>,
    /// Probes this node no longer checks.
    pub lost: Vec<String>,
}

impl Ownership {
    /// `node`'s view of `probes` (name, pinned to the active node). It owns
    /// nothing until the first [`update`](Self::update): a node that has
    /// not read the membership yet cannot know its share.
    pub fn new(node: impl Into<String>, probes: Vec<(String, bool)>) -> Self {
        Self {
            node: node.into(),
            probes: Arc::new(probes),
            shard: Arc::default(),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether this node checks `probe` now.
    pub fn owns(&self, probe: &str) -> bool {
        self.read().owned.contains(probe)
    }

    /// Recomputes ownership for `members` (live node names) and the
    /// `active` node; says which probes moved to or from this node.
    pub fn update(&self, members: Vec<String>, active: Option<String>) -> Moved {
        let plan = self.plan(members, active);
        let moved = plan.moved.clone();
        self.apply(plan);
        moved
    }

    /// What [`update`](Self::update) would change, without changing it:
    /// the caller can prepare for the probes that arrive (rebuild their
    /// state) before they are checked here.
    pub fn plan(&self, mut members: Vec<String>, active: Option<String>) -> Plan {
        members.sort();
        members.dedup();
        let shard = self.read();
        // Read twice a second: an unchanged list costs no hashing.
        if shard.members == members && shard.active == active {
            return Plan {
                moved: Moved::default(),
                shard: None,
            };
        }
        let mut counts: BTreeMap<String, usize> = members.iter().map(|m| (m.clone(), 0)).collect();
        let mut owned = HashSet::new();
        for (probe, pinned) in self.probes.iter() {
            let Some(node) = owner(probe, *pinned, &members, active.as_deref()) else {
                continue;
            };
            *counts.entry(node.to_owned()).or_default() += 1;
            if node == self.node {
                owned.insert(probe.clone());
            }
        }
        let mut moved = Moved {
            gained: owned.difference(&shard.owned).cloned().collect(),
            lost: shard.owned.difference(&owned).cloned().collect(),
        };
        moved.gained.sort();
        moved.lost.sort();
        Plan {
            moved,
            shard: Some(Shard {
                members,
                active,
                owned,
                counts,
            }),
        }
    }

    /// Makes `plan` the current split.
    pub fn apply(&self, plan: Plan) {
        if let Some(shard) = plan.shard {
            *self.shard.write().unwrap_or_else(PoisonError::into_inner) = shard;
        }
    }

    /// How many probes each live node checks, by node (for `/api/cluster`).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.read().counts.clone()
    }

    /// The probes this node checks, sorted.
    pub fn owned(&self) -> Vec<String> {
        let mut owned: Vec<String> = self.read().owned.iter().cloned().collect();
        owned.sort();
        owned
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Shard> {
        self.shard.read().unwrap_or_else(PoisonError::into_inner)
    }
}

fn owner<'a>(
    probe: &str,
    pinned: bool,
    members: &'a [String],
    active: Option<&'a str>,
) -> Option<&'a str> {
    if pinned {
        active.filter(|a| members.iter().any(|m| m == a))
    } else {
        rendezvous(probe, members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn every_probe_has_one_owner_and_the_shares_are_even() {
        let members = nodes(&["node-a", "node-b", "node-c"]);
        let probes: Vec<(String, bool)> =
            (0..3000).map(|i| (format!("probe-{i}"), false)).collect();
        let views: Vec<Ownership> = members
            .iter()
            .map(|m| Ownership::new(m.clone(), probes.clone()))
            .collect();
        for view in &views {
            view.update(members.clone(), Some("node-a".into()));
        }
        for (probe, _) in &probes {
            assert_eq!(views.iter().filter(|v| v.owns(probe)).count(), 1, "{probe}");
        }
        for view in &views {
            let share = view.owned().len();
            assert!((850..=1150).contains(&share), "{}: {share}", view.node());
        }
        assert_eq!(views[0].counts().values().sum::<usize>(), 3000);
    }

    #[test]
    fn a_leaving_node_moves_only_its_own_probes_and_pinned_ones_follow_the_active_node() {
        let probes = vec![
            ("p1".to_owned(), false),
            ("p2".to_owned(), false),
            ("p3".to_owned(), false),
            ("beat".to_owned(), true),
        ];
        let a = Ownership::new("node-a", probes.clone());
        assert!(
            !a.owns("p1"),
            "nothing is owned before the first membership read"
        );
        let all = nodes(&["node-a", "node-b", "node-c"]);
        let first = a.update(all.clone(), Some("node-a".into()));
        assert!(a.owns("beat"));
        assert_eq!(first.lost, Vec::<String>::new());
        let moved = a.update(nodes(&["node-a", "node-c"]), Some("node-c".into()));
        assert!(moved.lost.contains(&"beat".to_owned()));
        assert!(!a.owns("beat"));
        // Whatever node-a gained came from node-b, the one that left.
        for probe in &moved.gained {
            assert_eq!(rendezvous(probe, &all), Some("node-b"));
        }
        assert_eq!(
            a.update(nodes(&["node-c", "node-a"]), Some("node-c".into())),
            Moved::default()
        );
    }

    proptest! {
        #[test]
        fn removing_a_node_never_moves_a_probe_between_the_others(
            probe in "[a-z0-9-]{1,24}",
            count in 2usize..8,
            gone in 0usize..8,
        ) {
            let members: Vec<String> = (0..count).map(|i| format!("n{i}")).collect();
            let gone = gone % count;
            let before = rendezvous(&probe, &members).map(str::to_owned);
            let rest: Vec<String> = members.iter().enumerate().filter(|(i, _)| *i != gone).map(|(_, m)| m.clone()).collect();
            let after = rendezvous(&probe, &rest).map(str::to_owned);
            if before.as_deref() != Some(members[gone].as_str()) {
                prop_assert_eq!(before, after);
            }
        }
    }
}
