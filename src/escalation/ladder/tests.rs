#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

use proptest::prelude::*;

use crate::settings::{FixActionSettings, FixKind, TierKind, TierSettings};

fn tier(name: &str, attempts: u32, enabled: bool) -> TierSettings {
    TierSettings {
        name: name.to_owned(),
        kind: Some(TierKind::Webhook),
        url: Some("http://127.0.0.1:9/".into()),
        attempts: Some(attempts),
        enabled: Some(enabled),
        ..TierSettings::default()
    }
}

fn component(
    fix_enabled: bool,
    fix_attempts: u32,
    tiers: Vec<TierSettings>,
    threshold: u32,
) -> ComponentSettings {
    let mut component = ComponentSettings {
        name: "site".to_owned(),
        tiers,
        final_tier_threshold: threshold,
        ..ComponentSettings::default()
    };
    component.fix.enabled = fix_enabled;
    component.fix.attempts = fix_attempts;
    component.fix.action = FixActionSettings {
        kind: Some(FixKind::Command),
        command: vec!["true".to_owned()],
        ..FixActionSettings::default()
    };
    component
}

/// Steps until `Exhausted`, as short labels.
fn run(ladder: &mut EscalationLadder) -> Vec<String> {
    let mut steps = Vec::new();
    loop {
        match ladder.next() {
            Step::Fix { attempt, skipped } => {
                steps.push(format!("fix{attempt}{}", if skipped { "s" } else { "" }));
            }
            Step::Tier {
                name,
                attempt,
                final_tier,
                ..
            } => steps.push(format!(
                "{name}{attempt}{}",
                if final_tier { "!" } else { "" }
            )),
            Step::Exhausted => return steps,
        }
        assert!(steps.len() < 10_000, "runaway ladder");
    }
}

#[test]
fn the_documented_table() {
    let c = component(
        true,
        2,
        vec![tier("agent", 2, true), tier("pager", 1, true)],
        9,
    );
    let mut ladder = EscalationLadder::new(&c);
    assert_eq!(
        run(&mut ladder),
        [
            "fix1", "fix2", "agent1", "agent2", "agent3", "agent4", "agent5", "agent6", "agent7",
            "pager1!"
        ]
    );
    assert_eq!(ladder.attempts(), 10);
    assert_eq!(ladder.max_steps(), 10);
    assert_eq!(ladder.next(), Step::Exhausted);
}

#[test]
fn the_documented_example_is_exhausted_without_its_only_tier() {
    // One tier: it is the final tier, and nothing can bring the count to 9.
    let mut c = component(false, 2, vec![tier("tier1-agent", 2, true)], 9);
    assert_eq!(run(&mut EscalationLadder::new(&c)), ["fix1s", "fix2s"]);
    c.final_tier_threshold = 2;
    assert_eq!(
        run(&mut EscalationLadder::new(&c)),
        ["fix1s", "fix2s", "tier1-agent1!", "tier1-agent2!"]
    );
    c.tiers[0].enabled = Some(false);
    assert_eq!(run(&mut EscalationLadder::new(&c)), ["fix1s", "fix2s"]);
}

#[test]
fn threshold_zero_never_engages_the_final_tier_nor_cycles() {
    let c = component(
        true,
        1,
        vec![
            tier("a", 2, true),
            tier("off", 5, false),
            tier("b", 1, true),
            tier("final", 1, true),
        ],
        0,
    );
    assert_eq!(
        run(&mut EscalationLadder::new(&c)),
        ["fix1", "a1", "a2", "b1"]
    );
}

#[test]
fn the_first_pass_is_complete_even_past_the_threshold() {
    let c = component(true, 1, vec![tier("a", 3, true), tier("final", 2, true)], 2);
    assert_eq!(
        run(&mut EscalationLadder::new(&c)),
        ["fix1", "a1", "a2", "a3", "final1!", "final2!"]
    );
}

#[test]
fn passes_stop_mid_tier_at_the_threshold() {
    let c = component(
        true,
        1,
        vec![
            tier("a", 1, true),
            tier("b", 2, true),
            tier("final", 1, true),
        ],
        6,
    );
    assert_eq!(
        run(&mut EscalationLadder::new(&c)),
        ["fix1", "a1", "b1", "b2", "a2", "b3", "final1!"]
    );
}

#[test]
fn warns_once_per_cycle_and_reset_starts_over() {
    let mut c = component(true, 1, vec![tier("a", 1, true), tier("final", 1, true)], 3);
    c.warning_threshold = 2;
    let mut ladder = EscalationLadder::new(&c);
    ladder.next();
    assert!(!ladder.should_warn());
    ladder.next();
    assert!(ladder.should_warn());
    assert!(!ladder.should_warn());
    let first = run(&mut ladder);
    assert!(!ladder.should_warn());
    ladder.reset();
    assert!(!ladder.is_exhausted());
    assert_eq!(ladder.attempts(), 0);
    let again = run(&mut ladder);
    assert_eq!(again.len(), first.len() + 2);
    assert_eq!(again[0], "fix1");
    assert!(ladder.should_warn());

    c.warning_threshold = 0;
    let mut ladder = EscalationLadder::new(&c);
    run(&mut ladder);
    assert!(!ladder.should_warn());
}

#[test]
fn no_fix_attempts_and_no_tiers_is_exhausted_at_once() {
    let c = component(true, 0, Vec::new(), 9);
    let mut ladder = EscalationLadder::new(&c);
    assert_eq!(ladder.next(), Step::Exhausted);
    assert!(ladder.is_exhausted());
}

fn arb_component() -> impl Strategy<Value = ComponentSettings> {
    (
        any::<bool>(),
        0_u32..4,
        prop::collection::vec((0_u32..4, any::<bool>()), 0..5),
        0_u32..30,
    )
        .prop_map(|(fix_enabled, fix_attempts, tiers, threshold)| {
            let tiers = tiers
                .into_iter()
                .enumerate()
                .map(|(i, (attempts, enabled))| tier(&format!("t{i}"), attempts, enabled))
                .collect();
            component(fix_enabled, fix_attempts, tiers, threshold)
        })
}

proptest! {
    #[test]
    fn ladder_invariants(c in arb_component(), extra in 1_usize..10) {
        let mut ladder = EscalationLadder::new(&c);
        let last = c.tiers.len().checked_sub(1);
        let mut steps = 0_u32;
        let mut attempts_before_final = None;
        loop {
            match ladder.next() {
                Step::Exhausted => break,
                Step::Fix { skipped, .. } => prop_assert_eq!(skipped, !c.fix.enabled),
                Step::Tier { index, final_tier, .. } => {
                    prop_assert_eq!(final_tier, Some(index) == last);
                    prop_assert!(c.tiers[index].is_enabled());
                    if final_tier {
                        prop_assert!(c.final_tier_threshold > 0);
                        attempts_before_final.get_or_insert(steps);
                    }
                }
            }
            steps += 1;
            prop_assert!(steps <= ladder.max_steps(), "{} > {}", steps, ladder.max_steps());
        }
        if let Some(before) = attempts_before_final {
            prop_assert!(before >= c.final_tier_threshold);
        }
        prop_assert_eq!(steps, ladder.attempts());
        for _ in 0..extra {
            prop_assert_eq!(ladder.next(), Step::Exhausted);
        }
        // A reset replays the same cycle.
        ladder.reset();
        let mut replay = 0_u32;
        while ladder.next() != Step::Exhausted {
            replay += 1;
        }
        prop_assert_eq!(replay, steps);
    }
}
