//! Tests for the debounce state machine: one unit test per rule, then
//! property tests over random observation sequences.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::*;

const CAT: &str = "service_unhealthy";
const DEG: &str = "service_degraded";
const MIN: Duration = Duration::from_secs(60);

fn settings() -> DebounceSettings {
    DebounceSettings {
        failure_threshold: 3,
        recovery_threshold: 2,
        window: 10 * MIN,
        bypass_critical: false,
        remind_after: 30 * MIN,
        remind_max: 4 * 60 * MIN,
        flap_threshold: 5,
        flap_window: 10 * MIN,
    }
}

fn maintenance(name: &str) -> Context {
    Context {
        maintenance: Some(name.to_owned()),
        ..Context::default()
    }
}

fn dependency(name: &str) -> Context {
    Context {
        dependency_down: Some(name.to_owned()),
        ..Context::default()
    }
}

/// A probe plus a clock that only moves when told to.
struct Harness {
    debounce: ProbeDebounce,
    now: Instant,
    severity: Severity,
}

impl Harness {
    fn new(settings: DebounceSettings) -> Self {
        Self {
            debounce: ProbeDebounce::new(settings),
            now: Instant::now(),
            severity: Severity::Critical,
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    fn step(&mut self, status: Health, stage: Option<&str>, ctx: Context) -> Vec<Effect> {
        let input = Input::Observed {
            status,
            severity_if_unhealthy: self.severity,
            category: CAT.to_owned(),
            degraded_category: DEG.to_owned(),
            stage: stage.map(str::to_owned),
            ctx,
        };
        self.debounce.step(input, self.now)
    }

    fn fail(&mut self) -> Vec<Effect> {
        self.step(Health::Unhealthy, None, Context::default())
    }

    fn ok(&mut self) -> Vec<Effect> {
        self.step(Health::Healthy, None, Context::default())
    }

    /// `n` observations of `status`; the effects of all of them.
    fn run(&mut self, status: Health, n: u32, ctx: &Context) -> Vec<Effect> {
        (0..n)
            .flat_map(|_| self.step(status, None, ctx.clone()))
            .collect()
    }

    fn tick(&mut self, ctx: Context) -> Vec<Effect> {
        self.debounce.step(Input::Tick { ctx }, self.now)
    }
}

fn wake(kind: WakeKind, category: &str, severity: Severity, failures: u32) -> Effect {
    Effect::Wake {
        kind,
        category: category.to_owned(),
        severity,
        consecutive_failures: failures,
        stage: None,
        reminder: 0,
    }
}

fn fired(failures: u32) -> Effect {
    wake(WakeKind::Fired, CAT, Severity::Critical, failures)
}

fn suppressed(kind: WakeKind, reason: Suppression, count: u64) -> Effect {
    Effect::Suppressed {
        kind,
        category: CAT.to_owned(),
        severity: Severity::Critical,
        reason,
        suppressed_count: count,
    }
}

fn reminder(n: u32, failures: u32) -> Effect {
    Effect::Wake {
        kind: WakeKind::Reminder,
        category: CAT.to_owned(),
        severity: Severity::Critical,
        consecutive_failures: failures,
        stage: None,
        reminder: n,
    }
}

#[test]
fn fires_when_failures_reach_the_threshold() {
    let mut h = Harness::new(settings());
    assert!(h.fail().is_empty());
    assert!(h.fail().is_empty());
    assert_eq!(h.fail(), vec![fired(3)]);
    let issue = h.debounce.open_issue().unwrap();
    assert!(issue.woken);
    assert_eq!(issue.category, CAT);
    assert_eq!(issue.opened_at, h.now);
    assert!(h.fail().is_empty(), "one wake per issue");
}

#[test]
fn a_healthy_observation_resets_the_failure_count() {
    let mut h = Harness::new(settings());
    h.fail();
    h.fail();
    assert!(h.ok().is_empty());
    assert!(h.fail().is_empty());
    assert!(h.fail().is_empty());
    assert_eq!(h.fail(), vec![fired(3)]);
}

#[test]
fn degraded_uses_the_degraded_category_and_at_most_warning() {
    let mut h = Harness::new(settings());
    let effects = h.run(Health::Degraded, 3, &Context::default());
    assert_eq!(
        effects,
        vec![wake(WakeKind::Fired, DEG, Severity::Warning, 3)]
    );

    let mut h = Harness::new(settings());
    h.severity = Severity::Info;
    let effects = h.run(Health::Degraded, 3, &Context::default());
    assert_eq!(effects, vec![wake(WakeKind::Fired, DEG, Severity::Info, 3)]);
}

#[test]
fn resolves_after_the_recovery_threshold() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &Context::default());
    h.advance(5 * MIN);
    assert!(h.ok().is_empty());
    assert!(h.fail().is_empty(), "a failure resets the healthy count");
    assert!(h.ok().is_empty());
    assert_eq!(
        h.ok(),
        vec![Effect::Resolved {
            category: CAT.to_owned(),
            severity: Severity::Critical,
            open_for: 5 * MIN,
            woken: true,
        }]
    );
    assert!(h.debounce.open_issue().is_none());
    assert!(h.ok().is_empty(), "resolved once");
}

#[test]
fn resolved_is_emitted_for_an_issue_never_woken() {
    let mut h = Harness::new(settings());
    let ctx = maintenance("db upgrade");
    h.run(Health::Unhealthy, 3, &ctx);
    let effects = h.run(Health::Healthy, 2, &ctx);
    assert_eq!(
        effects,
        vec![Effect::Resolved {
            category: CAT.to_owned(),
            severity: Severity::Critical,
            open_for: Duration::ZERO,
            woken: false,
        }]
    );
}

#[test]
fn maintenance_is_checked_before_dependency() {
    let mut h = Harness::new(settings());
    let ctx = Context {
        dependency_down: Some("db".to_owned()),
        maintenance: Some("upgrade".to_owned()),
    };
    assert_eq!(
        h.run(Health::Unhealthy, 3, &ctx),
        vec![suppressed(
            WakeKind::Fired,
            Suppression::Maintenance("upgrade".to_owned()),
            1
        )]
    );
    let issue = h.debounce.open_issue().unwrap();
    assert!(!issue.woken);
    assert_eq!(issue.suppressed_count, 1);
}

#[test]
fn a_dependant_resumes_when_its_dependency_recovers() {
    let mut h = Harness::new(settings());
    let ctx = dependency("db");
    assert_eq!(
        h.run(Health::Unhealthy, 3, &ctx),
        vec![suppressed(
            WakeKind::Fired,
            Suppression::Dependency("db".to_owned()),
            1
        )]
    );
    h.advance(MIN);
    assert!(
        h.run(Health::Unhealthy, 5, &ctx).is_empty(),
        "no row per observation"
    );
    assert!(h.tick(ctx.clone()).is_empty());
    assert_eq!(
        h.tick(Context::default()),
        vec![wake(WakeKind::Resumed, CAT, Severity::Critical, 8)]
    );
    assert!(h.debounce.open_issue().unwrap().woken);
    assert!(h.fail().is_empty());
}

#[test]
fn a_changed_reason_is_recorded_once() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &maintenance("upgrade"));
    assert_eq!(
        h.step(Health::Unhealthy, None, dependency("db")),
        vec![suppressed(
            WakeKind::Fired,
            Suppression::Dependency("db".to_owned()),
            2
        )]
    );
    assert!(h.tick(dependency("db")).is_empty());
    assert_eq!(
        h.tick(dependency("cache")),
        vec![suppressed(
            WakeKind::Fired,
            Suppression::Dependency("cache".to_owned()),
            3
        )]
    );
}

#[test]
fn maintenance_that_ends_during_recovery_does_not_resume() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &maintenance("upgrade"));
    assert!(
        h.step(Health::Healthy, None, maintenance("upgrade"))
            .is_empty()
    );
    assert!(h.tick(Context::default()).is_empty());
    assert_eq!(h.ok().len(), 1, "resolves unwoken");
}

#[test]
fn maintenance_suppressed_issue_wakes_when_the_window_ends() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &maintenance("upgrade"));
    h.advance(30 * MIN);
    assert_eq!(
        h.fail(),
        vec![wake(WakeKind::Resumed, CAT, Severity::Critical, 4)]
    );
}

#[test]
fn a_relapse_within_the_window_is_suppressed_then_resumes() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &Context::default());
    h.run(Health::Healthy, 2, &Context::default());
    h.advance(4 * MIN);
    let effects = h.run(Health::Unhealthy, 3, &Context::default());
    assert_eq!(
        effects,
        vec![suppressed(
            WakeKind::Fired,
            Suppression::Window { remaining: 6 * MIN },
            1
        )]
    );
    h.advance(5 * MIN);
    assert!(h.tick(Context::default()).is_empty());
    assert!(h.fail().is_empty(), "same reason, no new row");
    h.advance(MIN);
    assert_eq!(
        h.tick(Context::default()),
        vec![wake(WakeKind::Resumed, CAT, Severity::Critical, 4)]
    );
}

#[test]
fn the_window_is_per_category() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &Context::default());
    h.run(Health::Healthy, 2, &Context::default());
    let effects = h.run(Health::Degraded, 3, &Context::default());
    assert_eq!(
        effects,
        vec![wake(WakeKind::Fired, DEG, Severity::Warning, 3)]
    );
}

#[test]
fn the_window_ends_after_exactly_window() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &Context::default());
    h.run(Health::Healthy, 2, &Context::default());
    h.advance(10 * MIN);
    assert_eq!(
        h.run(Health::Unhealthy, 3, &Context::default()),
        vec![fired(3)]
    );
}

#[test]
fn bypass_critical_lets_only_critical_through_the_window() {
    let mut s = settings();
    s.bypass_critical = true;
    s.flap_threshold = 100;
    let mut h = Harness::new(s);
    h.run(Health::Unhealthy, 3, &Context::default());
    h.run(Health::Healthy, 2, &Context::default());
    assert_eq!(
        h.run(Health::Unhealthy, 3, &Context::default()),
        vec![fired(3)]
    );

    h.run(Health::Healthy, 2, &Context::default());
    h.severity = Severity::Warning;
    h.run(Health::Unhealthy, 3, &Context::default());
    h.run(Health::Healthy, 2, &Context::default());
    let effects = h.run(Health::Unhealthy, 3, &Context::default());
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Suppressed {
                reason: Suppression::Window { .. },
                ..
            }]
        ),
        "{effects:?}"
    );
}

#[test]
fn reminders_double_up_to_remind_max() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &Context::default());
    // Due at +30m, then gaps of 60m, 120m, 240m (the cap), 240m.
    let dues = [30, 60, 120, 240, 240];
    for (n, gap) in (1..).zip(dues) {
        h.advance((gap - 1) * MIN);
        assert!(h.tick(Context::default()).is_empty(), "reminder {n} early");
        h.advance(MIN);
        assert_eq!(h.tick(Context::default()), vec![reminder(n, 3)]);
    }
}

#[test]
fn reminders_are_checked_on_observations_too() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &Context::default());
    h.advance(30 * MIN);
    assert_eq!(h.fail(), vec![reminder(1, 4)]);
}

#[test]
fn no_reminder_while_recovering() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &Context::default());
    h.advance(30 * MIN);
    assert!(h.ok().is_empty());
    assert!(h.tick(Context::default()).is_empty());
}

#[test]
fn a_suppressed_reminder_moves_the_schedule_on() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &Context::default());
    h.advance(30 * MIN);
    assert_eq!(
        h.tick(maintenance("upgrade")),
        vec![suppressed(
            WakeKind::Reminder,
            Suppression::Maintenance("upgrade".to_owned()),
            1
        )]
    );
    h.advance(MIN);
    assert!(h.tick(Context::default()).is_empty(), "no burst afterwards");
    h.advance(59 * MIN);
    assert_eq!(h.tick(Context::default()), vec![reminder(2, 3)]);
}

#[test]
fn missed_ticks_do_not_burst() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &Context::default());
    h.advance(24 * 60 * MIN);
    assert_eq!(h.tick(Context::default()), vec![reminder(1, 3)]);
    assert!(h.tick(Context::default()).is_empty());
}

#[test]
fn a_worse_observation_escalates_through_the_window() {
    let mut h = Harness::new(settings());
    h.run(Health::Degraded, 3, &Context::default());
    assert_eq!(
        h.fail(),
        vec![wake(WakeKind::Escalated, CAT, Severity::Critical, 4)]
    );
    let issue = h.debounce.open_issue().unwrap();
    assert_eq!(
        (issue.category.as_str(), issue.severity),
        (CAT, Severity::Critical)
    );
    assert!(h.fail().is_empty(), "escalates once");
}

#[test]
fn unhealthy_at_the_same_severity_as_a_degraded_issue_escalates() {
    let mut h = Harness::new(settings());
    h.severity = Severity::Warning;
    h.run(Health::Degraded, 3, &Context::default());
    assert_eq!(
        h.fail(),
        vec![wake(WakeKind::Escalated, CAT, Severity::Warning, 4)]
    );
}

#[test]
fn an_escalation_is_still_suppressed_by_maintenance() {
    let mut h = Harness::new(settings());
    h.run(Health::Degraded, 3, &Context::default());
    let effects = h.step(Health::Unhealthy, None, maintenance("upgrade"));
    assert_eq!(
        effects,
        vec![suppressed(
            WakeKind::Escalated,
            Suppression::Maintenance("upgrade".to_owned()),
            1
        )]
    );
    assert!(h.debounce.open_issue().unwrap().woken, "stays woken");
}

#[test]
fn degraded_does_not_downgrade_an_unhealthy_issue() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &Context::default());
    assert!(h.run(Health::Degraded, 3, &Context::default()).is_empty());
    let issue = h.debounce.open_issue().unwrap();
    assert_eq!(
        (issue.category.as_str(), issue.severity),
        (CAT, Severity::Critical)
    );
    assert!(h.ok().is_empty());
    assert_eq!(h.ok().len(), 1);
}

#[test]
fn each_stage_alerts_once() {
    let mut h = Harness::new(settings());
    let ctx = Context::default();
    h.step(Health::Unhealthy, Some("30d"), ctx.clone());
    h.step(Health::Unhealthy, Some("30d"), ctx.clone());
    let mut first = fired(3);
    if let Effect::Wake { stage, .. } = &mut first {
        *stage = Some("30d".to_owned());
    }
    assert_eq!(
        h.step(Health::Unhealthy, Some("30d"), ctx.clone()),
        vec![first]
    );
    assert!(
        h.step(Health::Unhealthy, Some("30d"), ctx.clone())
            .is_empty()
    );
    let effects = h.step(Health::Unhealthy, Some("14d"), ctx.clone());
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Wake { kind: WakeKind::Escalated, stage: Some(stage), .. }] if stage == "14d"
        ),
        "{effects:?}"
    );
    assert!(
        h.step(Health::Unhealthy, Some("14d"), ctx.clone())
            .is_empty()
    );
    assert!(
        h.step(Health::Unhealthy, Some("30d"), ctx.clone())
            .is_empty()
    );
    assert_eq!(h.step(Health::Unhealthy, Some("7d"), ctx.clone()).len(), 1);
    assert_eq!(
        h.debounce.open_issue().unwrap().stage.as_deref(),
        Some("7d")
    );
}

#[test]
fn a_suppressed_stage_does_not_alert_again() {
    let mut h = Harness::new(settings());
    h.run(Health::Unhealthy, 3, &Context::default());
    let effects = h.step(Health::Unhealthy, Some("7d"), maintenance("upgrade"));
    assert!(matches!(
        effects.as_slice(),
        [Effect::Suppressed {
            kind: WakeKind::Escalated,
            ..
        }]
    ));
    assert!(
        h.step(Health::Unhealthy, Some("7d"), Context::default())
            .is_empty()
    );
}

/// Alternates healthy and failing `n` times, one minute apart.
fn flap(h: &mut Harness, n: usize, ctx: &Context) -> Vec<Effect> {
    let mut effects = Vec::new();
    for i in 0..n {
        h.advance(MIN);
        let status = if i % 2 == 0 {
            Health::Unhealthy
        } else {
            Health::Healthy
        };
        effects.extend(h.step(status, None, ctx.clone()));
    }
    effects
}

#[test]
fn flapping_wakes_once_then_settles() {
    let mut h = Harness::new(settings());
    h.ok();
    // Six transitions exceed the threshold of five.
    let effects = flap(&mut h, 6, &Context::default());
    assert_eq!(
        effects,
        vec![wake(WakeKind::Flapping, CAT, Severity::Critical, 0)]
    );
    assert!(
        flap(&mut h, 4, &Context::default()).is_empty(),
        "one flapping wake"
    );
    // Transitions age out of the ten-minute window; at two or fewer it settles.
    h.advance(7 * MIN);
    assert!(h.tick(Context::default()).is_empty());
    h.advance(MIN);
    assert_eq!(
        h.tick(Context::default()),
        vec![Effect::FlappingSettled {
            category: CAT.to_owned()
        }]
    );
}

#[test]
fn flapping_suppresses_new_issues_and_resumes_after_settling() {
    let mut s = settings();
    s.failure_threshold = 1;
    s.recovery_threshold = 1;
    let mut h = Harness::new(s);
    h.ok();
    let effects = flap(&mut h, 6, &Context::default());
    // Three issues fired or were window-suppressed; the sixth transition flaps.
    assert!(effects.contains(&wake(WakeKind::Flapping, CAT, Severity::Critical, 0)));
    h.advance(10 * MIN);
    h.advance(MIN);
    let effects = h.step(Health::Unhealthy, None, Context::default());
    assert!(
        matches!(
            effects.as_slice(),
            [
                Effect::FlappingSettled { .. },
                Effect::Wake {
                    kind: WakeKind::Fired,
                    ..
                }
            ]
        ),
        "{effects:?}"
    );

    // While flapping, a new issue is suppressed with reason Flapping.
    let mut h = Harness::new(settings());
    h.ok();
    flap(&mut h, 6, &Context::default());
    h.advance(MIN);
    let effects = h.run(Health::Unhealthy, 3, &Context::default());
    assert_eq!(
        effects,
        vec![suppressed(WakeKind::Fired, Suppression::Flapping, 1)]
    );
    h.advance(9 * MIN);
    let effects = h.tick(Context::default());
    assert_eq!(
        effects,
        vec![
            Effect::FlappingSettled {
                category: CAT.to_owned()
            },
            wake(WakeKind::Resumed, CAT, Severity::Critical, 3),
        ]
    );
}

#[test]
fn flapping_under_maintenance_is_suppressed() {
    let mut h = Harness::new(settings());
    h.ok();
    let effects = flap(&mut h, 6, &maintenance("upgrade"));
    assert_eq!(
        effects,
        vec![Effect::Suppressed {
            kind: WakeKind::Flapping,
            category: CAT.to_owned(),
            severity: Severity::Critical,
            reason: Suppression::Maintenance("upgrade".to_owned()),
            suppressed_count: 1,
        }]
    );
}

#[test]
fn no_reminders_while_flapping() {
    let mut s = settings();
    s.flap_window = 60 * MIN;
    let mut h = Harness::new(s);
    h.run(Health::Unhealthy, 3, &Context::default());
    // Six one-minute transitions; the issue never reaches recovery.
    let mut flapped = Vec::new();
    for _ in 0..3 {
        h.advance(MIN);
        flapped.extend(h.ok());
        h.advance(MIN);
        flapped.extend(h.fail());
    }
    assert!(flapped.iter().any(|e| matches!(
        e,
        Effect::Wake {
            kind: WakeKind::Flapping,
            ..
        }
    )));
    h.advance(24 * MIN);
    // The reminder is due at +30m, but the transitions are still in the window.
    assert!(h.tick(Context::default()).is_empty());
    h.advance(60 * MIN);
    let effects = h.tick(Context::default());
    assert!(
        matches!(
            effects.as_slice(),
            [
                Effect::FlappingSettled { .. },
                Effect::Wake {
                    kind: WakeKind::Reminder,
                    reminder: 1,
                    ..
                }
            ]
        ),
        "{effects:?}"
    );
}

#[test]
fn restore_does_not_fire_again_and_resolves_after_recovery() {
    let mut h = Harness::new(settings());
    h.debounce.restore(
        RestoredIssue {
            category: CAT.to_owned(),
            severity: Severity::Critical,
            stage: Some("7d".to_owned()),
            woken: true,
        },
        h.now,
    );
    assert!(
        h.step(Health::Unhealthy, Some("7d"), Context::default())
            .is_empty()
    );
    h.advance(30 * MIN);
    let effects = h.tick(Context::default());
    assert!(matches!(
        effects.as_slice(),
        [Effect::Wake {
            kind: WakeKind::Reminder,
            reminder: 1,
            ..
        }]
    ));
    assert!(h.ok().is_empty());
    assert_eq!(
        h.ok(),
        vec![Effect::Resolved {
            category: CAT.to_owned(),
            severity: Severity::Critical,
            open_for: 30 * MIN,
            woken: true,
        }]
    );
}

#[test]
fn a_restored_wake_starts_the_window() {
    let mut h = Harness::new(settings());
    h.debounce.restore(
        RestoredIssue {
            category: CAT.to_owned(),
            severity: Severity::Critical,
            stage: None,
            woken: true,
        },
        h.now,
    );
    h.run(Health::Healthy, 2, &Context::default());
    let effects = h.run(Health::Unhealthy, 3, &Context::default());
    assert!(matches!(
        effects.as_slice(),
        [Effect::Suppressed {
            reason: Suppression::Window { .. },
            ..
        }]
    ));
}

#[test]
fn a_restored_unwoken_issue_resumes_when_nothing_holds_it() {
    let mut h = Harness::new(settings());
    h.debounce.restore(
        RestoredIssue {
            category: CAT.to_owned(),
            severity: Severity::Critical,
            stage: None,
            woken: false,
        },
        h.now,
    );
    assert_eq!(
        h.tick(maintenance("upgrade")),
        vec![suppressed(
            WakeKind::Fired,
            Suppression::Maintenance("upgrade".to_owned()),
            1
        )]
    );
    assert_eq!(
        h.tick(Context::default()),
        vec![wake(WakeKind::Resumed, CAT, Severity::Critical, 3)]
    );
}

#[test]
fn new_settings_apply_from_the_next_step() {
    let mut h = Harness::new(settings());
    h.fail();
    let mut s = settings();
    s.failure_threshold = 2;
    h.debounce.set_settings(s);
    assert_eq!(h.fail(), vec![fired(2)]);
}

#[test]
fn ticks_are_not_observations() {
    let mut h = Harness::new(settings());
    h.fail();
    h.fail();
    for _ in 0..5 {
        assert!(h.tick(Context::default()).is_empty());
    }
    assert_eq!(h.fail(), vec![fired(3)]);
    for _ in 0..5 {
        h.tick(Context::default());
    }
    assert!(h.debounce.open_issue().is_some());
}

// ---------------------------------------------------------------- properties

#[derive(Debug, Clone)]
enum Step {
    Observe {
        status: Health,
        severity: Severity,
        stage: Option<u8>,
        ctx: u8,
    },
    Tick {
        ctx: u8,
    },
}

fn context(code: u8) -> Context {
    match code {
        1 => maintenance("upgrade"),
        2 => dependency("db"),
        3 => Context {
            dependency_down: Some("db".to_owned()),
            maintenance: Some("upgrade".to_owned()),
        },
        _ => Context::default(),
    }
}

fn health() -> impl Strategy<Value = Health> {
    prop_oneof![
        3 => Just(Health::Unhealthy),
        1 => Just(Health::Degraded),
        3 => Just(Health::Healthy),
    ]
}

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Info),
        Just(Severity::Warning),
        Just(Severity::Critical)
    ]
}

fn steps(quiet: bool) -> impl Strategy<Value = (Step, u64)> {
    let ctx = if quiet { 0..1u8 } else { 0..6u8 };
    let step = prop_oneof![
        4 => (health(), severity(), proptest::option::of(0..4u8), ctx.clone()).prop_map(
            |(status, severity, stage, ctx)| Step::Observe { status, severity, stage, ctx }
        ),
        1 => ctx.prop_map(|ctx| Step::Tick { ctx }),
    ];
    (step, 0..600u64)
}

fn input(step: &Step) -> Input {
    match step {
        Step::Observe {
            status,
            severity,
            stage,
            ctx,
        } => Input::Observed {
            status: *status,
            severity_if_unhealthy: *severity,
            category: CAT.to_owned(),
            degraded_category: DEG.to_owned(),
            stage: stage.map(|s| format!("{s}d")),
            ctx: context(*ctx),
        },
        Step::Tick { ctx } => Input::Tick { ctx: context(*ctx) },
    }
}

fn random_settings() -> impl Strategy<Value = DebounceSettings> {
    (1..5u32, 1..4u32, 0..3u64, any::<bool>(), 0..8u32).prop_map(
        |(failure_threshold, recovery_threshold, window, bypass_critical, flap_threshold)| {
            DebounceSettings {
                failure_threshold,
                recovery_threshold,
                window: 5 * MIN * u32::try_from(window).unwrap(),
                bypass_critical,
                remind_after: 10 * MIN,
                remind_max: 60 * MIN,
                flap_threshold,
                flap_window: 10 * MIN,
            }
        },
    )
}

proptest! {
    #[test]
    fn issue_lifecycle_invariants(
        settings in random_settings(),
        sequence in proptest::collection::vec(steps(false), 1..300),
    ) {
        let mut debounce = ProbeDebounce::new(settings);
        let mut now = Instant::now();
        let mut fired_this_issue = 0;
        let mut fired_since_resolved: Vec<String> = Vec::new();
        for (step, gap) in &sequence {
            now += Duration::from_secs(*gap);
            let was_open = debounce.open_issue().is_some();
            let effects = debounce.step(input(step), now);
            prop_assert!(effects.len() <= 3, "{effects:?}");
            if !was_open && debounce.open_issue().is_some() {
                fired_this_issue = 0;
            }
            for effect in &effects {
                match effect {
                    Effect::Wake { kind: WakeKind::Fired, category, .. } => {
                        fired_this_issue += 1;
                        prop_assert!(fired_this_issue <= 1, "two Fired in one issue");
                        prop_assert!(
                            !fired_since_resolved.contains(category),
                            "two Fired for {category} without a Resolved"
                        );
                        fired_since_resolved.push(category.clone());
                    }
                    Effect::Resolved { .. } => {
                        prop_assert!(was_open, "Resolved without an open issue");
                        fired_since_resolved.clear();
                    }
                    Effect::Suppressed { suppressed_count, .. } => {
                        prop_assert!(*suppressed_count >= 1);
                    }
                    _ => {}
                }
            }
            if let Some(issue) = debounce.open_issue() {
                prop_assert!(issue.opened_at <= now);
            }
        }
    }

    #[test]
    fn a_run_of_failures_from_closed_fires_or_is_window_suppressed(
        mut settings in random_settings(),
        prefix in proptest::collection::vec(steps(true), 0..100),
        gap in 0..900u64,
    ) {
        settings.flap_threshold = 10_000;
        let threshold = settings.failure_threshold;
        let mut debounce = ProbeDebounce::new(settings.clone());
        let mut now = Instant::now();
        for (step, gap) in &prefix {
            now += Duration::from_secs(*gap);
            debounce.step(input(step), now);
        }
        // Close whatever is open, then fail from a clean count.
        for _ in 0..settings.recovery_threshold {
            now += Duration::from_secs(gap);
            debounce.step(input(&Step::Observe {
                status: Health::Healthy, severity: Severity::Critical, stage: None, ctx: 0,
            }), now);
        }
        prop_assert!(debounce.open_issue().is_none());
        let mut opened = 0;
        for _ in 0..threshold {
            now += Duration::from_secs(gap);
            let effects = debounce.step(input(&Step::Observe {
                status: Health::Unhealthy, severity: Severity::Critical, stage: None, ctx: 0,
            }), now);
            opened += effects.iter().filter(|e| matches!(e,
                Effect::Wake { kind: WakeKind::Fired, .. }
                | Effect::Suppressed { kind: WakeKind::Fired, reason: Suppression::Window { .. }, .. }
            )).count();
            let other = effects.iter().any(|e| matches!(e,
                Effect::Suppressed { kind: WakeKind::Fired, reason, .. }
                    if !matches!(reason, Suppression::Window { .. })
            ));
            prop_assert!(!other, "suppressed for another reason: {:?}", effects);
        }
        prop_assert_eq!(opened, 1);
    }

    #[test]
    fn memory_stays_bounded(
        settings in random_settings(),
        sequence in proptest::collection::vec(steps(false), 64),
        categories in proptest::collection::vec(0..50u8, 64),
    ) {
        let mut debounce = ProbeDebounce::new(settings.clone());
        let mut now = Instant::now();
        let cap = settings.flap_threshold as usize + 1;
        for i in 0..10_000usize {
            let (step, gap) = &sequence[i % sequence.len()];
            now += Duration::from_secs(*gap);
            let mut input = input(step);
            if let Input::Observed { category, stage, .. } = &mut input {
                // Categories and stages vary, as after many settings reloads.
                *category = format!("c{}", categories[i % categories.len()]);
                *stage = Some(format!("s{i}"));
            }
            debounce.step(input, now);
            let (transitions, wakes, stages) = debounce.footprint();
            prop_assert!(transitions <= cap);
            prop_assert!(wakes <= MAX_CATEGORIES);
            prop_assert!(stages <= MAX_STAGES);
        }
    }
}
