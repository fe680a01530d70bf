//! Tests of the commander's core: a simulated actor ([`World`]) that carries
//! out every effect in memory and answers at once, one unit test per
//! transition, then property tests over random issue sequences (`props.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod props;

use std::collections::VecDeque;

use super::*;
use crate::notify::{DeliveryOutcome, NoticeStatus};

const MIN: Duration = Duration::from_secs(60);

/// api (high) depends on db (critical); cache and docs are normal.
pub(super) fn config() -> Config {
    Config {
        settings: IncidentSettings::default(),
        criticality: HashMap::from([
            ("api".to_owned(), Criticality::High),
            ("db".to_owned(), Criticality::Critical),
        ]),
        depends_on: HashMap::from([("api".to_owned(), vec!["db".to_owned()])]),
    }
}

/// `api-http` is on `api`, and so on.
pub(super) fn component_of(probe: &str) -> String {
    probe.split('-').next().unwrap_or(probe).to_owned()
}

/// An issue row of `seam` for `probe` in story `session`.
pub(super) fn issue(seam: &str, seq: u64, probe: &str, severity: Severity, session: &str) -> Input {
    Input::Issue(IssueEvent {
        seq,
        seam: seam.to_owned(),
        caller_session_id: Some(session.to_owned()),
        probe: probe.to_owned(),
        component: component_of(probe),
        category: "service_unhealthy".to_owned(),
        severity,
        traceparent: None,
    })
}

/// A woken issue whose story starts at `seq`.
fn wake(seq: u64, probe: &str, severity: Severity) -> Input {
    let session = session(probe, seq);
    issue("probe.wake_requested", seq, probe, severity, &session)
}

fn session(probe: &str, story: u64) -> String {
    format!("probe:{probe}:service_unhealthy:{story}")
}

/// `probes` as the actor would see them: healthy `run` times in a row.
pub(super) fn observed<'a>(probes: impl IntoIterator<Item = &'a String>, run: usize) -> Probes {
    let latest = if run > 0 {
        Health::Healthy
    } else {
        Health::Unhealthy
    };
    probes
        .into_iter()
        .map(|probe| {
            let now = ProbeNow {
                healthy_run: run,
                latest: Some(latest),
            };
            (probe.clone(), now)
        })
        .collect()
}

/// The actor, in memory: every effect carried out on maps, every answer
/// given at once, and the clock moved only by [`World::advance`].
pub(super) struct World {
    pub core: CommanderCore,
    pub now: Timestamp,
    /// The shared store (`Publish`).
    pub store: BTreeMap<String, Incident>,
    /// `incident.json` (`Save`).
    pub disk: BTreeMap<String, Incident>,
    pub timelines: BTreeMap<String, Vec<TimelineEntry>>,
    /// The shared freeze set.
    pub freeze: BTreeMap<String, String>,
    pub rows: Vec<NewRow>,
    pub notices: Vec<Notice>,
    pub postmortems: Vec<String>,
    pub replies: Vec<Reply>,
    /// Every incident decided on, as it asked for its id.
    pub drafts: Vec<Draft>,
    /// Every effect of the last input, answers' effects included, in order.
    pub last: Vec<Effect>,
    ids: u32,
    seq: u64,
}

impl World {
    pub(super) fn new() -> Self {
        Self {
            core: CommanderCore::new(config(), HashMap::new()),
            now: "2025-01-01T10:00:00Z".parse().unwrap(),
            store: BTreeMap::new(),
            disk: BTreeMap::new(),
            timelines: BTreeMap::new(),
            freeze: BTreeMap::new(),
            rows: Vec::new(),
            notices: Vec::new(),
            postmortems: Vec::new(),
            replies: Vec::new(),
            drafts: Vec::new(),
            last: Vec::new(),
            ids: 0,
            seq: 100,
        }
    }

    pub(super) fn advance(&mut self, by: Duration) {
        self.now = self.now.checked_add(by).unwrap();
    }

    /// Steps `input` and everything its effects answer, as the actor does.
    pub(super) fn step(&mut self, input: Input) -> &[Effect] {
        self.last.clear();
        let mut queue = VecDeque::from(self.checked_step(input));
        while let Some(effect) = queue.pop_front() {
            self.last.push(effect.clone());
            if let Some(answer) = self.execute(effect) {
                let next = self.checked_step(answer);
                for effect in next.into_iter().rev() {
                    queue.push_front(effect);
                }
            }
        }
        &self.last
    }

    fn checked_step(&mut self, input: Input) -> Vec<Effect> {
        let effects = self.core.step(input, self.now);
        // An effect after one that waits for an answer would have been
        // decided on the state before the answer.
        if let Some(at) = effects.iter().position(Effect::awaits_answer) {
            assert_eq!(at + 1, effects.len(), "{effects:#?}");
        }
        effects
    }

    fn execute(&mut self, effect: Effect) -> Option<Input> {
        match effect {
            Effect::ClaimId { date, draft } => {
                self.ids += 1;
                self.drafts.push(draft.clone());
                let id = format!("INC-{date}-{:03}", self.ids);
                return Some(Input::IdClaimed { id, draft });
            }
            Effect::Save(incident) => {
                self.disk.insert(incident.id.clone(), *incident);
            }
            Effect::Publish(incident) => {
                self.store.insert(incident.id.clone(), *incident);
            }
            Effect::Timeline { id, entry } => self.timelines.entry(id).or_default().push(entry),
            Effect::Snapshot(snapshot) => {
                let files = vec![
                    format!("evidence/{}-observations.json", snapshot.label),
                    format!("evidence/{}-audit.json", snapshot.label),
                ];
                let then = snapshot.then;
                return Some(Input::EvidenceWritten { files, then });
            }
            Effect::Freeze { id, components } => {
                for component in components {
                    self.freeze.insert(component, id.clone());
                }
            }
            Effect::Unfreeze { id, components } => {
                for component in components {
                    assert_eq!(self.freeze.remove(&component), Some(id.clone()));
                }
            }
            Effect::Append { row, then } => {
                self.seq += 1;
                self.rows.push(row);
                let seq = Some(self.seq);
                return then.map(|then| Input::Appended { seq, then });
            }
            Effect::Notify { notice, then } => {
                assert_eq!(notice.kind, then.kind());
                assert_eq!(notice.caller_session_id.as_deref(), Some(then.id()));
                self.notices.push(*notice);
                self.seq += 1;
                let seq = Some(self.seq);
                return Some(Input::Requested { seq, then });
            }
            Effect::ReadTimeline(then) => {
                let entries = self.timelines.get(&then.id).cloned().unwrap_or_default();
                return Some(Input::TimelineRead { entries, then });
            }
            Effect::Postmortem(incident) => self.postmortems.push(incident.id.clone()),
            Effect::Reply(reply) => self.replies.push(reply),
            Effect::Log(_) => {}
        }
        None
    }

    /// A tick for every active incident, its probes healthy `run` times.
    pub(super) fn tick(&mut self, run: usize) -> Vec<Effect> {
        let mut all = Vec::new();
        for id in self.core.active() {
            let probes = observed(&self.core.incident(&id).unwrap().probes, run);
            all.extend(self.step(Input::Tick { id, probes }).iter().cloned());
        }
        all
    }

    pub(super) fn resolve(&mut self, id: &str, force: bool, run: usize) -> Reply {
        let probes = self.core.incident(id).map(|i| observed(&i.probes, run));
        let input = Input::Resolve {
            id: id.to_owned(),
            note: "done".to_owned(),
            force,
            probes: probes.unwrap_or_default(),
        };
        self.step(input);
        self.replies.last().cloned().unwrap()
    }

    pub(super) fn incident(&self, id: &str) -> &Incident {
        self.core.incident(id).unwrap()
    }

    pub(super) fn only(&self) -> &Incident {
        let all: Vec<&Incident> = self.core.incidents().collect();
        assert_eq!(all.len(), 1, "{all:#?}");
        all[0]
    }

    pub(super) fn rows(&self, seam: &str) -> Vec<&NewRow> {
        self.rows.iter().filter(|r| r.seam == seam).collect()
    }

    pub(super) fn kinds(&self, id: &str) -> Vec<&str> {
        let entries = self
            .timelines
            .get(id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        entries.iter().map(|e| e.kind.as_str()).collect()
    }

    /// Position of the first effect of the last input matching `pred`.
    fn at(&self, pred: impl Fn(&Effect) -> bool) -> usize {
        self.last.iter().position(pred).unwrap()
    }
}

fn appended(seam: &str) -> impl Fn(&Effect) -> bool + '_ {
    move |e| matches!(e, Effect::Append { row, .. } if row.seam == seam)
}

#[test]
fn a_critical_issue_opens_sev2_and_its_evidence_comes_before_anyone_sees_it() {
    let mut w = World::new();
    w.step(wake(1, "api-http", Severity::Critical));
    let incident = w.only().clone();
    assert_eq!(incident.id, "INC-20250101-001");
    assert_eq!(incident.severity, Sev::Sev2);
    assert_eq!(incident.status, IncidentStatus::Open);
    assert_eq!(incident.evidence.len(), 2);
    assert_eq!(incident.opened_at, "2025-01-01T10:00:00.000Z");
    let opened = w.rows("incident.opened");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].component.as_deref(), Some("api"));
    assert_eq!(opened[0].caller_session_id, Some(session("api-http", 1)));
    assert_eq!(incident.opened_seq, 101);

    let snapshot = w.at(|e| matches!(e, Effect::Snapshot(_)));
    let published = w.at(|e| matches!(e, Effect::Publish(_)));
    let row = w.at(appended("incident.opened"));
    let notice = w.at(|e| matches!(e, Effect::Notify { .. }));
    assert!(w.at(|e| matches!(e, Effect::Save(_))) < snapshot);
    assert!(snapshot < published && published < row && row < notice);
    assert_eq!(
        w.kinds(&incident.id),
        ["wake", "opened", "evidence", "notification"]
    );
    // One conversation with the issue; SEV2 does not freeze at SEV1.
    assert_eq!(w.notices[0].group, Some(session("api-http", 1)));
    assert_eq!(w.notices[0].kind, "incident_opened");
    assert!(w.freeze.is_empty() && w.core.frozen().is_empty());
    assert_eq!(w.store[&incident.id], incident);
}

#[test]
fn a_related_critical_issue_joins_raises_to_sev1_and_freezes_both() {
    let mut w = World::new();
    w.step(wake(1, "api-http", Severity::Critical));
    w.advance(5 * MIN);
    w.step(wake(2, "db-tcp", Severity::Critical));
    let incident = w.only().clone();
    assert_eq!(incident.severity, Sev::Sev1);
    assert_eq!(incident.sessions.len(), 2);
    assert!(incident.components.contains("db") && incident.probes.contains("db-tcp"));
    assert_eq!(incident.evidence.len(), 4, "a new probe adds evidence");
    assert_eq!(w.rows("incident.joined").len(), 1);
    assert_eq!(w.rows("incident.severity_changed").len(), 1);
    let frozen = w.rows("incident.automation_frozen");
    assert_eq!(frozen[0].details()["components"], json!(["api", "db"]));
    assert_eq!(w.freeze.get("db"), Some(&incident.id));
    assert_eq!(&w.freeze, w.core.frozen());
    // The same story waking again is only a timeline entry.
    let rows = w.rows.len();
    w.step(issue(
        "probe.wake_requested",
        3,
        "db-tcp",
        Severity::Critical,
        &session("db-tcp", 2),
    ));
    assert_eq!(w.rows.len(), rows);
    assert_eq!(w.kinds(&incident.id).last(), Some(&"wake"));
}

#[test]
fn an_unrelated_warning_opens_sev3_and_info_or_suppressed_issues_open_nothing() {
    let mut w = World::new();
    w.step(wake(1, "cache-http", Severity::Warning));
    assert_eq!(w.only().severity, Sev::Sev3);
    w.step(wake(2, "docs-http", Severity::Info));
    w.step(issue(
        "probe.wake_suppressed",
        3,
        "docs-http",
        Severity::Critical,
        &session("docs-http", 3),
    ));
    assert_eq!(w.core.incidents().count(), 1);
    // A suppressed issue on a covered component joins.
    w.step(issue(
        "probe.flapping",
        4,
        "cache-tcp",
        Severity::Critical,
        &session("cache-tcp", 4),
    ));
    assert!(w.only().probes.contains("cache-tcp"));
}

#[test]
fn resolution_is_refused_while_impact_is_ongoing_and_is_idempotent() {
    let mut w = World::new();
    w.step(Input::Open(OpenTrigger::LadderExhausted {
        component: "db".to_owned(),
        history: json!({ "rungs": ["restart"] }),
        session: None,
    }));
    let Some(Reply::Opened(id)) = w.replies.last().cloned() else {
        panic!("{:?}", w.replies);
    };
    assert_eq!(w.incident(&id).severity, Sev::Sev1);
    assert_eq!(w.freeze.get("db"), Some(&id));
    w.step(wake(9, "db-tcp", Severity::Critical));
    assert!(w.incident(&id).probes.contains("db-tcp"));

    let refused = w.resolve(&id, false, 2);
    let Reply::Done(Err(Refusal::ImpactOngoing(ongoing))) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!((ongoing.probe.as_str(), ongoing.healthy_run), ("db-tcp", 2));
    assert_eq!(w.last.len(), 1, "a refusal changes nothing");

    assert_eq!(w.resolve(&id, false, 3), Reply::Done(Ok(())));
    let resolved = w.incident(&id).clone();
    assert_eq!(resolved.status, IncidentStatus::Resolved);
    assert_eq!(
        resolved.resolved_at.as_deref(),
        Some("2025-01-01T10:00:00.000Z")
    );
    assert!(w.freeze.is_empty());
    // The packet is written before the row, and again after the notice.
    let packet = w.at(|e| matches!(e, Effect::Postmortem(_)));
    assert!(packet < w.at(appended("incident.resolved")));
    assert_eq!(w.postmortems, [id.clone(), id.clone()]);
    assert_eq!(w.notices.last().unwrap().status, NoticeStatus::Resolved);

    let again = w.resolve(&id, true, 3);
    let already = Refusal::Resolved {
        id: id.clone(),
        already: true,
    };
    assert_eq!(again, Reply::Done(Err(already)));
    assert_eq!(w.last, [Effect::Reply(again)]);
    assert_eq!(w.rows("incident.resolved").len(), 1);
}

#[test]
fn commands_on_unknown_or_resolved_incidents_are_refused() {
    let mut w = World::new();
    let unknown = Reply::Done(Err(Refusal::Unknown("INC-X".to_owned())));
    w.step(Input::Note {
        id: "INC-X".to_owned(),
        text: "hello".to_owned(),
        author: None,
    });
    assert_eq!(w.last, [Effect::Reply(unknown.clone())]);
    assert_eq!(w.resolve("INC-X", true, 0), unknown);

    w.step(Input::Open(OpenTrigger::Operator {
        title: "checkout slow".to_owned(),
        severity: None,
        components: vec!["api".to_owned()],
    }));
    let id = w.only().id.clone();
    assert_eq!(w.only().severity, Sev::Sev3);
    let set = |severity| Input::SetSeverity {
        id: id.clone(),
        severity,
        reason: "why".to_owned(),
    };
    w.step(set(Sev::Sev3));
    assert_eq!(w.last, [Effect::Reply(Reply::Done(Ok(())))]);
    w.step(set(Sev::Sev0));
    assert_eq!(w.freeze.get("api"), Some(&id));
    let history = &w.incident(&id).severity_history;
    assert_eq!(history.last().unwrap().reason, "operator: why");
    // Operator incidents have no probes: impact cannot be judged, so it
    // resolves (a tick never does it for them).
    assert!(w.tick(5).is_empty());
    assert_eq!(w.resolve(&id, false, 0), Reply::Done(Ok(())));
    w.step(set(Sev::Sev1));
    let resolved = Refusal::Resolved { id, already: false };
    assert_eq!(w.last, [Effect::Reply(Reply::Done(Err(resolved)))]);
}

#[test]
fn resolved_issues_mitigate_and_unfreeze_then_a_healthy_tick_resolves() {
    let mut w = World::new();
    w.step(wake(1, "api-http", Severity::Critical));
    w.step(wake(2, "db-tcp", Severity::Critical));
    let id = w.only().id.clone();
    assert_eq!(w.freeze.len(), 2);
    let recovered = |seq, probe| {
        let session = session(probe, seq);
        issue(
            "probe.resolved",
            10 + seq,
            probe,
            Severity::Critical,
            &session,
        )
    };
    w.step(recovered(1, "api-http"));
    assert_eq!(w.only().status, IncidentStatus::Open);
    w.step(recovered(2, "db-tcp"));
    assert_eq!(w.only().status, IncidentStatus::Mitigated);
    assert!(w.freeze.is_empty());
    assert_eq!(w.rows("incident.mitigated").len(), 1);
    assert_eq!(w.rows("incident.automation_unfrozen").len(), 1);
    assert!(w.core.open_critical().values().all(BTreeSet::is_empty));

    // Not healthy long enough: nothing; then healthy: resolved by Warden.
    assert!(w.tick(2).is_empty());
    w.tick(3);
    assert_eq!(w.incident(&id).status, IncidentStatus::Resolved);
    assert_eq!(
        w.rows("incident.resolved")[0].details()["by"],
        json!("warden")
    );
}

#[test]
fn a_new_wake_reopens_a_mitigated_incident() {
    let mut w = World::new();
    w.step(wake(1, "db-tcp", Severity::Critical));
    w.step(Input::SetSeverity {
        id: w.only().id.clone(),
        severity: Sev::Sev1,
        reason: "customers".to_owned(),
    });
    let story = session("db-tcp", 1);
    w.step(issue(
        "probe.resolved",
        2,
        "db-tcp",
        Severity::Critical,
        &story,
    ));
    assert_eq!(w.only().status, IncidentStatus::Mitigated);
    assert!(w.freeze.is_empty());
    w.step(issue(
        "probe.wake_requested",
        3,
        "db-tcp",
        Severity::Critical,
        &story,
    ));
    assert_eq!(w.only().status, IncidentStatus::Open);
    assert!(w.only().resolved_sessions.is_empty());
    assert_eq!(w.freeze.get("db"), Some(&w.only().id));
}

#[test]
fn updates_follow_the_cadence_and_say_what_changed() {
    let mut w = World::new();
    w.step(wake(1, "api-http", Severity::Critical));
    let id = w.only().id.clone();
    w.advance(20 * MIN);
    w.step(Input::Note {
        id: id.clone(),
        text: "checking db".to_owned(),
        author: Some("ops".to_owned()),
    });
    w.advance(9 * MIN);
    assert!(w.tick(0).is_empty(), "SEV2 updates every 30m");
    w.advance(MIN);
    w.tick(0);
    let rows = w.rows("incident.update_sent");
    assert_eq!(rows.len(), 1);
    // The note; entries stamped with the opening are not news.
    assert_eq!(rows[0].details()["changes"], json!(1));
    assert_eq!(
        rows[0].details()["unhealthy"],
        json!(["api-http (unhealthy)"])
    );
    assert!(
        rows[0].details()["notice_seq"].is_u64(),
        "{}",
        rows[0].details()
    );
    let notice = w.notices.last().unwrap();
    assert_eq!(notice.kind, "incident_update");
    assert!(
        notice.summary.contains("note ops: checking db"),
        "{}",
        notice.summary
    );
    assert_eq!(w.incident(&id).last_update_at, "2025-01-01T10:30:00.000Z");
    w.advance(29 * MIN);
    assert!(w.tick(0).is_empty());
    w.advance(MIN);
    w.tick(0);
    assert_eq!(w.rows("incident.update_sent").len(), 2);
    assert_eq!(
        w.rows("incident.update_sent")[1].details()["changes"],
        json!(0)
    );
}

#[test]
fn an_exhausted_ladder_joins_the_incident_that_covers_its_component() {
    let mut w = World::new();
    w.step(wake(1, "api-http", Severity::Critical));
    let id = w.only().id.clone();
    w.step(Input::Open(OpenTrigger::LadderExhausted {
        component: "api".to_owned(),
        history: json!({}),
        session: Some(session("api-http", 1)),
    }));
    assert!(w.drafts.len() == 1, "no new incident");
    assert_eq!(w.replies.last(), Some(&Reply::Opened(id.clone())));
    assert_eq!(w.kinds(&id).last(), Some(&"ladder_exhausted"));
    // api is high, not critical: still SEV2, nothing else happens.
    assert_eq!(w.only().severity, Sev::Sev2);
    w.step(Input::Open(OpenTrigger::LadderExhausted {
        component: "db".to_owned(),
        history: json!({}),
        session: None,
    }));
    // db depends on nothing, but api depends on db: joins while young.
    assert_eq!(w.only().severity, Sev::Sev1);
    assert_eq!(w.freeze.get("api"), Some(&id));
}

#[test]
fn timeline_entries_find_their_incident_by_session_then_component() {
    let mut w = World::new();
    w.step(wake(1, "api-http", Severity::Critical));
    w.step(wake(2, "cache-http", Severity::Warning));
    let entry = |session: Option<String>, component: Option<&str>| Input::Timeline {
        session,
        component: component.map(str::to_owned),
        kind: "fix".to_owned(),
        text: "restarted".to_owned(),
        details: json!({ "outcome": "failed" }),
    };
    w.step(entry(Some(session("cache-http", 2)), Some("api")));
    let cache = w.core.incidents().find(|i| i.components.contains("cache"));
    let cache = cache.unwrap().id.clone();
    assert_eq!(w.kinds(&cache).last(), Some(&"fix"));
    w.step(entry(None, Some("api")));
    let api = w.core.incidents().find(|i| i.components.contains("api"));
    assert_eq!(w.kinds(&api.unwrap().id.clone()).last(), Some(&"fix"));
    w.step(entry(None, Some("nowhere")));
    let dropped = Log::Dropped {
        kind: "fix".to_owned(),
    };
    assert_eq!(w.last, [Effect::Log(dropped)]);
}

#[test]
fn restore_keeps_old_freezes_and_freezes_open_severe_incidents() {
    let mut w = World::new();
    w.step(wake(1, "db-tcp", Severity::Critical));
    w.step(wake(2, "api-http", Severity::Critical));
    let before = w.only().clone();
    assert_eq!(before.severity, Sev::Sev1);
    let mut core = CommanderCore::new(config(), w.core.open_critical());
    core.keep_frozen("db".to_owned(), "INC-OLD".to_owned());
    let opened = "2025-01-01T09:00:00Z".parse().unwrap();
    core.restore(before.clone(), (Some(opened), None), w.now);
    assert_eq!(core.frozen().get("db").map(String::as_str), Some("INC-OLD"));
    assert_eq!(core.frozen().get("api"), Some(&before.id));
    assert_eq!(core.clock_marks(&before.id), Some((opened, w.now)));
    // Without marks it counts from its own opening.
    let mut bare = CommanderCore::new(config(), HashMap::new());
    bare.restore(before.clone(), (None, None), w.now);
    let opened_at = before.opened_at.parse().unwrap();
    assert_eq!(bare.clock_marks(&before.id), Some((opened_at, w.now)));
}

#[test]
fn the_tally_rates_several_important_components_down() {
    let mut w = World::new();
    w.step(wake(1, "api-http", Severity::Critical));
    // Outside the related window: db opens its own, rated by the tally.
    w.advance(31 * MIN);
    w.step(wake(2, "db-tcp", Severity::Critical));
    let db = w.core.incidents().find(|i| i.components.contains("db"));
    assert_eq!(db.unwrap().severity, Sev::Sev1);
    assert_eq!(w.core.incidents().count(), 2);
    let tally = w.core.open_critical();
    assert_eq!(tally["db"], BTreeSet::from([session("db-tcp", 2)]));
}

/// Found by the session property: a story that woke again went to a more
/// severe incident it related to by `depends_on`, so two incidents held it.
#[test]
fn a_story_that_wakes_again_stays_with_its_incident() {
    let mut w = World::new();
    w.step(wake(1, "api-http", Severity::Critical));
    w.advance(31 * MIN);
    w.step(wake(2, "db-tcp", Severity::Critical));
    let story = session("api-http", 1);
    w.step(issue(
        "probe.wake_requested",
        3,
        "api-http",
        Severity::Critical,
        &story,
    ));
    let holders: Vec<&str> = (w.core.incidents())
        .filter(|i| i.sessions.contains(&story))
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(holders, ["INC-20250101-001"]);
}

/// An open incident that freezes a component another one froze first keeps
/// it frozen when the first one stops freezing.
#[test]
fn a_freeze_passes_to_another_open_incident_instead_of_lifting() {
    let mut w = World::new();
    w.step(wake(1, "api-http", Severity::Critical));
    let first = w.only().id.clone();
    let set = |id: &str, severity| Input::SetSeverity {
        id: id.to_owned(),
        severity,
        reason: "test".to_owned(),
    };
    w.step(set(&first, Sev::Sev1));
    w.advance(31 * MIN);
    w.step(wake(2, "db-tcp", Severity::Critical));
    let second = w.core.active().pop().unwrap();
    assert_ne!(first, second);
    w.step(set(&second, Sev::Sev0));
    // A new api story: the SEV0 incident covers db, which api needs.
    w.step(wake(3, "api-http", Severity::Critical));
    assert!(w.incident(&second).components.contains("api"));
    assert_eq!(w.freeze.get("api"), Some(&first));
    let story = session("api-http", 1);
    w.step(issue(
        "probe.resolved",
        4,
        "api-http",
        Severity::Critical,
        &story,
    ));
    assert_eq!(w.incident(&first).status, IncidentStatus::Mitigated);
    assert_eq!(w.freeze.get("api"), Some(&second));
    assert!(w.rows("incident.automation_unfrozen").is_empty());
    let frozen = w.rows("incident.automation_frozen");
    let last = frozen.last().unwrap();
    assert_eq!(
        last.details(),
        json!({ "id": second, "components": ["api"], "v": 1 })
    );
}

#[test]
fn the_deliveries_of_an_incidents_notices_come_back_from_the_log_into_its_timeline_once() {
    let mut w = World::new();
    w.step(wake(1, "api-http", Severity::Critical));
    let id = w.only().id.clone();
    let notice = w.notices[0].clone();
    let delivered = |outcome, error: Option<&str>| crate::events::Delivered {
        error: error.map(str::to_owned),
        outcome,
        ..crate::notify::delivered(
            &notice,
            &crate::notify::Delivery::refused("pager".to_owned(), ""),
        )
    };
    let sent = Input::Delivery {
        seq: 500,
        id: id.clone(),
        delivered: delivered(DeliveryOutcome::Sent, None),
    };
    let failed = Input::Delivery {
        seq: 501,
        id: id.clone(),
        delivered: delivered(DeliveryOutcome::Failed, Some("status 503")),
    };
    w.step(sent);
    assert_eq!(w.incident(&id).notices_sent, 1);
    assert_eq!(w.incident(&id).notices_requested, 1, "the opening notice");
    w.step(failed);
    let entries = &w.timelines[&id];
    let texts: Vec<&str> = entries
        .iter()
        .rev()
        .take(2)
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "incident_opened failed at pager (status 503); offered again",
            "incident_opened sent to pager"
        ]
    );
    // A replayed delivery row (a crash before the cursor moved) changes nothing.
    let before = w.incident(&id).clone();
    let effects = w
        .step(Input::Delivery {
            seq: 500,
            id: id.clone(),
            delivered: delivered(DeliveryOutcome::Sent, None),
        })
        .to_vec();
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(w.incident(&id), &before);
    assert_eq!(w.incident(&id).notices_sent, 1);
}
