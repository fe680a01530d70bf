#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use crate::probes::classify::{parse, shared_fields};
use crate::probes::{kind_facts, spec};
use crate::settings::ProbeKind;

/// A key two kinds both claimed would be "not used" by each of them.
#[test]
fn no_key_belongs_to_two_kinds() {
    let mut seen = BTreeSet::new();
    for kind in ProbeKind::ALL {
        for (key, _) in spec(*kind).keys() {
            assert!(seen.insert(*key), "{key} is claimed twice ({kind:?})");
        }
    }
}

/// The condition language reads the shared fields first, so a kind fact
/// with a shared name, or two with one name, would never be read.
#[test]
fn every_kind_fact_has_its_own_name_and_parses() {
    let mut seen: BTreeSet<&str> = shared_fields().iter().copied().collect();
    for fact in kind_facts() {
        assert!(seen.insert(fact.name), "{} is declared twice", fact.name);
        let condition = format!("{} == {}", fact.name, fact.example);
        parse(&condition).unwrap_or_else(|error| panic!("{condition}: {error}"));
    }
}
