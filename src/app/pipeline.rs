//! The detection pipeline's actor arguments, each built from its settings
//! section: probes (one actor per probe) feed the debouncer, whose issue
//! rows the wake consumer and the incident commander read.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::handles::Handles;
use crate::debounce::{DebounceConfig, DebounceStore, DebouncerArgs, ProbeRules};
use crate::incidents::CommanderArgs;
use crate::investigate::Investigator;
use crate::notify::Notifiers;
use crate::probes::{CheckContext, ProbeActorArgs};
use crate::settings::{IncidentSettings, ProbeSettings, Settings, WakeSettings};
use crate::wake::WakeConsumerArgs;

/// How often the debouncer evaluates time-driven rules (reminders, settling).
const DEBOUNCE_TICK: Duration = Duration::from_secs(1);

/// The debouncer's view of the settings.
pub(super) fn debounce_config(settings: &Settings) -> DebounceConfig {
    let rules = settings
        .probes
        .iter()
        .map(|probe| {
            let (unhealthy, degraded) = crate::probes::default_categories(probe.kind);
            let fix = settings
                .components
                .iter()
                .find(|c| c.name == probe.component_name())
                .map(|c| &c.fix);
            let rules = ProbeRules {
                component: probe.component_name().to_owned(),
                category: probe
                    .category
                    .clone()
                    .unwrap_or_else(|| unhealthy.to_owned()),
                degraded_category: probe
                    .degraded_category
                    .clone()
                    .unwrap_or_else(|| degraded.to_owned()),
                severity: probe.severity,
                settings: settings.debounce.with(&probe.debounce),
                envelope_status: fix.map_or("absent", crate::settings::FixSettings::status),
                envelope_fix: fix.and_then(crate::settings::FixSettings::describe),
            };
            (probe.name.clone(), rules)
        })
        .collect();
    let depends_on = settings
        .components
        .iter()
        .map(|component| (component.name.clone(), component.depends_on.clone()))
        .collect();
    // check-config already rejected windows that do not parse.
    let windows = settings
        .maintenance
        .iter()
        .filter_map(|window| crate::debounce::maintenance::Window::parse(window).ok())
        .collect();
    DebounceConfig::new(rules, depends_on, windows)
}

/// Seeds the debounce store with the issues that were open when Warden last
/// stopped, so an outage spanning a restart is not woken twice.
pub(super) fn restore_open_issues(
    dir: &Path,
    config: &DebounceConfig,
    store: &DebounceStore,
) -> usize {
    match crate::debounce::open_issues(dir) {
        Ok(open) => {
            let mut restored = 0;
            for (probe, at_boot) in open {
                if let Some(rules) = config.rules.get(&probe) {
                    crate::debounce::restore_entry(
                        store,
                        &probe,
                        rules,
                        at_boot.issue,
                        at_boot.session,
                        at_boot.trace,
                    );
                    restored += 1;
                }
            }
            restored
        }
        Err(error) => {
            tracing::error!(error = %error, "Could not rebuild open issues from the audit log; they may be woken again.");
            0
        }
    }
}

/// The debouncer's arguments: the rules live in [`Handles::config`], the
/// state in the shared store, so a restarted debouncer resumes where it was.
pub(super) fn debouncer(h: &Handles) -> DebouncerArgs {
    DebouncerArgs {
        config: h.config.clone(),
        store: h.store.clone(),
        queue: h.queue.clone(),
        latest: h.latest.clone(),
        audit: h.audit.clone(),
        tick: DEBOUNCE_TICK,
        metrics: h.metrics.clone(),
    }
}

impl ProbeSettings {
    /// This probe's actor arguments.
    pub(super) fn build(&self, h: &Handles, ctx: &CheckContext) -> ProbeActorArgs {
        ProbeActorArgs {
            probe: Arc::new(self.clone()),
            defaults: h.settings.probe_defaults.clone(),
            ctx: ctx.clone(),
            latest: h.latest.clone(),
            history: h.history.clone(),
            history_len: h.settings.wake.history,
            metrics: h.metrics.clone(),
            queue: h.queue.clone(),
            debouncer: h.names.of("debouncer"),
            owner: h.ownership.clone(),
        }
    }
}

impl WakeSettings {
    /// The wake consumer's arguments.
    pub(super) fn build(
        &self,
        h: &Handles,
        investigator: Investigator,
        notifiers: Notifiers,
    ) -> WakeConsumerArgs {
        WakeConsumerArgs {
            audit: h.audit.clone(),
            audit_dir: h.audit_dir.clone(),
            cursor_dir: h.settings.service.state_dir.join("cursors"),
            investigator,
            notifiers,
            history: h.history.clone(),
            settings: self.clone(),
            runbook: h.settings.investigator.runbook_url.clone(),
            status: h.wake.clone(),
            metrics: h.metrics.clone(),
        }
    }
}

impl IncidentSettings {
    /// The incident commander's arguments.
    pub(super) fn build(&self, h: &Handles, notifiers: Notifiers) -> CommanderArgs {
        let settings = &h.settings;
        CommanderArgs {
            settings: self.clone(),
            state_dir: settings.service.state_dir.clone(),
            audit: h.audit.clone(),
            audit_dir: h.audit_dir.clone(),
            outbox: crate::notify::Outbox::new(notifiers, h.audit.clone(), h.audit_dir.clone()),
            latest: h.latest.clone(),
            history: h.history.clone(),
            criticality: settings
                .components
                .iter()
                .map(|c| (c.name.clone(), c.criticality))
                .collect(),
            depends_on: settings
                .components
                .iter()
                .map(|c| (c.name.clone(), c.depends_on.clone()))
                .collect(),
            store: h.incidents.clone(),
            cursor_dir: settings.service.state_dir.join("cursors"),
            freeze: h.freeze.clone(),
            // Secrets serialise as "***": the evidence never holds one. Rendered
            // when an incident asks for it, not kept as a JSON tree of every probe.
            effective_config: crate::incidents::EffectiveConfig::of(settings.clone()),
            tick: Duration::from_secs(5),
        }
    }
}
