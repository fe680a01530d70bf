//! Property tests: random sequences of issue rows, ticks, time and operator
//! commands, with the invariants checked after every input.

use proptest::prelude::*;

use super::*;

/// The probes of the generated world, one per component.
const PROBES: [&str; 4] = ["api-http", "db-tcp", "cache-http", "docs-http"];

#[derive(Debug, Clone)]
enum Op {
    /// An issue row of a story (a probe has at most 3 stories).
    Issue {
        seam: &'static str,
        probe: usize,
        story: u64,
        severity: Severity,
    },
    /// The previous issue row again, as the intake replays after a crash.
    Replay,
    /// A tick for every active incident, every probe healthy `run` times.
    Tick {
        run: usize,
    },
    Advance {
        minutes: u32,
    },
    /// Resolve the `pick`-th incident (modulo the count).
    Resolve {
        pick: usize,
        force: bool,
    },
    SetSeverity {
        pick: usize,
        severity: Sev,
    },
    /// An operator's incident on the components in `mask` (bit per probe).
    Open {
        mask: usize,
        severity: Sev,
    },
}

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Critical),
        Just(Severity::Warning),
        Just(Severity::Info)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let seam = prop_oneof![
        4 => Just("probe.wake_requested"),
        1 => Just("probe.wake_suppressed"),
        1 => Just("probe.flapping"),
        3 => Just("probe.resolved"),
    ];
    let issue =
        (seam, 0..PROBES.len(), 0..3u64, severity()).prop_map(|(seam, probe, story, severity)| {
            Op::Issue {
                seam,
                probe,
                story,
                severity,
            }
        });
    prop_oneof![
        8 => issue,
        2 => Just(Op::Replay),
        2 => (0..5usize).prop_map(|run| Op::Tick { run }),
        2 => (0..40u32).prop_map(|minutes| Op::Advance { minutes }),
        1 => (0..4usize, any::<bool>()).prop_map(|(pick, force)| Op::Resolve { pick, force }),
        1 => (0..4usize, 0..5usize)
            .prop_map(|(pick, sev)| Op::SetSeverity { pick, severity: Sev::ALL[sev] }),
        1 => (1..16usize, 0..5usize)
            .prop_map(|(mask, sev)| Op::Open { mask, severity: Sev::ALL[sev] }),
    ]
}

/// What each incident decides, without stamps and counters.
fn decisions(core: &CommanderCore) -> Vec<(String, Sev, IncidentStatus, Vec<BTreeSet<String>>)> {
    core.incidents()
        .map(|i| {
            let sets = vec![
                i.sessions.clone(),
                i.resolved_sessions.clone(),
                i.components.clone(),
                i.probes.clone(),
            ];
            (i.id.clone(), i.severity, i.status, sets)
        })
        .collect()
}

/// A world driven by `ops`, with the open issues (session → component) as
/// the generator meant them.
struct Run {
    world: World,
    open_issues: BTreeMap<String, String>,
    /// The last issue row, while only issue rows and time followed it:
    /// the intake replays rows after its cursor, and the commander stores
    /// its cursor on every tick, so a replay never follows a tick or a
    /// command (which may have resolved or re-rated what the row joined).
    previous: Option<Input>,
    seq: u64,
}

impl Run {
    fn new() -> Self {
        Self {
            world: World::new(),
            open_issues: BTreeMap::new(),
            previous: None,
            seq: 0,
        }
    }

    fn pick(&self, pick: usize) -> Option<String> {
        let ids: Vec<String> = self.world.core.incidents().map(|i| i.id.clone()).collect();
        (!ids.is_empty()).then(|| ids[pick % ids.len()].clone())
    }

    /// Applies `op` and checks what must hold after it.
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let drafts = self.world.drafts.len();
        match op {
            Op::Issue {
                seam,
                probe,
                story,
                severity,
            } => {
                self.seq += 1;
                let probe = PROBES[*probe];
                let session = format!("probe:{probe}:service_unhealthy:{story}");
                match *seam {
                    "probe.wake_requested" => {
                        self.open_issues
                            .insert(session.clone(), component_of(probe));
                    }
                    "probe.resolved" => {
                        self.open_issues.remove(&session);
                    }
                    _ => {}
                }
                let input = issue(seam, self.seq, probe, *severity, &session);
                self.previous = Some(input.clone());
                self.world.step(input);
            }
            Op::Replay => {
                let Some(input) = self.previous.clone() else {
                    return Ok(());
                };
                let before = decisions(&self.world.core);
                let rows = self.world.rows.len();
                self.world.step(input);
                prop_assert_eq!(decisions(&self.world.core), before, "a replay decided anew");
                let new_rows = &self.world.rows[rows..];
                prop_assert!(
                    new_rows
                        .iter()
                        .all(|r| r.seam != "incident.opened" && r.seam != "incident.joined"),
                    "{:?}",
                    new_rows
                );
            }
            Op::Tick { run } => {
                // A replay after a resolution is a new story (see `previous`).
                self.previous = None;
                self.world.tick(*run);
                if *run >= 3 {
                    let left: Vec<&Incident> = self
                        .world
                        .core
                        .incidents()
                        .filter(|i| i.is_active() && !i.probes.is_empty())
                        .collect();
                    prop_assert!(left.is_empty(), "healthy yet active: {:?}", left);
                }
            }
            Op::Advance { minutes } => self.world.advance(*minutes * MIN),
            Op::Resolve { pick, force } => {
                self.previous = None;
                let Some(id) = self.pick(*pick) else {
                    return Ok(());
                };
                let was_resolved = !self.world.incident(&id).is_active();
                let before = decisions(&self.world.core);
                let reply = self.world.resolve(&id, *force, 0);
                if was_resolved {
                    let already = Refusal::Resolved { id, already: true };
                    prop_assert_eq!(&reply, &Reply::Done(Err(already)));
                    prop_assert_eq!(self.world.last.len(), 1);
                    prop_assert_eq!(decisions(&self.world.core), before);
                } else if *force {
                    prop_assert_eq!(reply, Reply::Done(Ok(())));
                }
            }
            Op::SetSeverity { pick, severity } => {
                self.previous = None;
                if let Some(id) = self.pick(*pick) {
                    let reason = "operator".to_owned();
                    let severity = *severity;
                    self.world.step(Input::SetSeverity {
                        id,
                        severity,
                        reason,
                    });
                }
            }
            Op::Open { mask, severity } => {
                self.previous = None;
                let components = (0..PROBES.len())
                    .filter(|bit| mask & (1 << bit) != 0)
                    .map(|bit| component_of(PROBES[bit]))
                    .collect();
                self.world.step(Input::Open(OpenTrigger::Operator {
                    title: "by hand".to_owned(),
                    severity: Some(*severity),
                    components,
                }));
            }
        }
        for draft in &self.world.drafts[drafts..] {
            if let OpenTrigger::Issue {
                caller_session_id: Some(session),
                component,
                ..
            } = &draft.trigger
            {
                prop_assert_eq!(self.open_issues.get(session), Some(component));
            }
        }
        self.check()
    }

    /// What holds after every input.
    fn check(&self) -> Result<(), TestCaseError> {
        let world = &self.world;
        // The store, the files and the freeze set say what the core decided.
        for incident in world.core.incidents() {
            prop_assert_eq!(world.store.get(&incident.id), Some(incident));
            let saved = world.disk.get(&incident.id).cloned();
            let saved = saved.map(|s| Incident {
                updated_at: incident.updated_at.clone(),
                ..s
            });
            prop_assert_eq!(saved.as_ref(), Some(incident));
        }
        prop_assert_eq!(&world.freeze, world.core.frozen());

        let active: Vec<&Incident> = world.core.incidents().filter(|i| i.is_active()).collect();
        let mut sessions = BTreeSet::new();
        for incident in &active {
            for session in &incident.sessions {
                prop_assert!(
                    sessions.insert(session),
                    "two active incidents hold {}",
                    session
                );
            }
            if !incident.sessions.is_empty()
                && incident.sessions.is_subset(&incident.resolved_sessions)
            {
                prop_assert_ne!(incident.status, IncidentStatus::Open);
            }
        }
        let freeze_at = world.core.config.settings.freeze_automation_at;
        let frozen: BTreeSet<&String> = active
            .iter()
            .filter(|i| i.status == IncidentStatus::Open && freezes(i.severity, freeze_at))
            .flat_map(|i| &i.components)
            .collect();
        prop_assert_eq!(frozen, world.freeze.keys().collect::<BTreeSet<_>>());
        for (component, owner) in &world.freeze {
            let owner = world.core.incident(owner);
            prop_assert!(owner.is_some_and(|o| o.components.contains(component)
                && o.status == IncidentStatus::Open
                && freezes(o.severity, freeze_at)));
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every invariant after every input: mirrors, one active incident per
    /// session, mitigation once every issue resolved, the freeze set exactly
    /// the components of open freezing incidents, healthy ticks resolving,
    /// idempotent resolution, harmless replays, and incidents opened only
    /// for components with an open issue.
    #[test]
    fn invariants_hold_after_every_input(ops in prop::collection::vec(op(), 1..60)) {
        let mut run = Run::new();
        for op in &ops {
            run.apply(op)?;
        }
    }

    /// The same inputs at the same times give the same effects.
    #[test]
    fn steps_are_deterministic(ops in prop::collection::vec(op(), 1..40)) {
        let (mut a, mut b) = (Run::new(), Run::new());
        for op in &ops {
            a.apply(op)?;
            b.apply(op)?;
            prop_assert_eq!(&a.world.last, &b.world.last);
        }
        prop_assert_eq!(&a.world.rows, &b.world.rows);
        prop_assert_eq!(&a.world.notices, &b.world.notices);
    }
}
