//! Running from a config source with a fallback: the boot loop that puts
//! the last-known-good configuration in force when a new one melted the tree
//! down, and keeps it there while the operator's file still holds the
//! rejected text.

use std::future::Future;

use super::{AppError, BootOptions, start_with};
use crate::control::ConfigOrigin;
use crate::escalation::snapshot::{config_digest, rolled_back_from};
use crate::settings::{ConfigSource, Settings};

/// Runs Warden from a config source until `shutdown`, falling back to the
/// last-known-good configuration when a new one melts the tree down (DESIGN
/// §3): the first root meltdown on a configuration that differs from the
/// last-known-good one stops the tree, records the rollback in the state dir
/// (the rejected text is kept there as `snapshots/_warden/rejected.toml`),
/// and boots once more on the last-known-good copy; a meltdown after that
/// stops Warden. The operator's `--config` file is never written: a later
/// start whose file still holds the rejected text boots from the copy too,
/// and says so in `/api/boot-status`; a changed file is tried as usual.
/// Operator tokens always come from the operator's configuration as it is
/// now, whichever text is in force.
pub async fn run_source(
    source: ConfigSource,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AppError> {
    let operator_text = match &source {
        ConfigSource::Embedded => crate::settings::DEFAULT_CONFIG.to_owned(),
        ConfigSource::File(path) => std::fs::read_to_string(path)
            .map_err(|error| AppError::Setup(format!("cannot read {}: {error}", path.display())))?,
        ConfigSource::Text { toml, .. } => toml.clone(),
    };
    let operator_path = source_path(&source);
    // The operator's configuration as it is now: the token sources in force,
    // and the state dir that holds any rollback.
    let current = load_text(&operator_text)?;
    let state_dir = current.service.state_dir.clone();
    let (mut text, mut origin) = match rolled_back_from(&state_dir, &operator_text) {
        Ok(Some((record, good))) => {
            let reason = format!(
                "{operator_path} ({}) melted the supervision tree down and was rolled back at {}; it is left untouched, and Warden boots from the last-known-good copy until it changes",
                record.rejected_digest, record.at
            );
            tracing::warn!(config = %operator_path, "The configuration file still holds a version that was rolled back; booting from the last-known-good copy in the state dir.");
            let origin =
                ConfigOrigin::known_good(&state_dir, &operator_path, &operator_text, &good, reason);
            (good, origin)
        }
        Ok(None) => {
            let origin = ConfigOrigin::operator(&operator_path, &operator_text);
            (operator_text.clone(), origin)
        }
        Err(error) => {
            return Err(AppError::Setup(format!(
                "cannot read the configuration rollback record: {error}"
            )));
        }
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let mut meltdowns = 0;
    loop {
        let settings = with_current_tokens(load_text(&text)?, &current);
        let options = BootOptions {
            config_text: Some(text.clone()),
            meltdowns,
            origin: Some(origin.clone()),
        };
        let mut warden = start_with(settings, options).await?;
        let result = tokio::select! {
            () = &mut shutdown => return warden.shutdown().await,
            result = warden.wait() => result,
        };
        match result {
            Err(AppError::ConfigRollback(good)) => {
                // `supervise` recorded it in the state dir before stopping.
                let at = match rolled_back_from(&state_dir, &text) {
                    Ok(Some((record, _))) => record.at,
                    _ => jiff::Timestamp::now().to_string(),
                };
                let reason = format!(
                    "{operator_path} ({}) melted the supervision tree down and was rolled back at {at}; it is left untouched, and Warden boots from the last-known-good copy until it changes",
                    config_digest(&text)
                );
                origin = ConfigOrigin::known_good(&state_dir, &operator_path, &text, &good, reason);
                tracing::warn!("Restarting on the last-known-good configuration.");
                text = good;
                meltdowns = 1;
            }
            other => return other,
        }
    }
}

/// Where a config source's text lives, for reports.
fn source_path(source: &ConfigSource) -> String {
    match source {
        ConfigSource::Embedded => "embedded".to_owned(),
        ConfigSource::File(path) => path.display().to_string(),
        ConfigSource::Text { name, .. } => name.clone(),
    }
}

fn load_text(text: &str) -> Result<Settings, AppError> {
    let source = ConfigSource::Text {
        name: "config".into(),
        toml: text.to_owned(),
    };
    crate::settings::load(&source).map_err(|error| AppError::Setup(error.lines().join("; ")))
}

/// `settings` with every operator-token source taken from `current` (the
/// operator's configuration as it is now, environment included): a
/// last-known-good text may still name a token the operator has revoked
/// since, and a rollback must not bring it back.
fn with_current_tokens(mut settings: Settings, current: &Settings) -> Settings {
    let (to, from) = (&mut settings.service, &current.service);
    to.operator_token = from.operator_token.clone();
    to.operator_tokens = from.operator_tokens.clone();
    to.operator_token_file = from.operator_token_file.clone();
    to.operator_token_files = from.operator_token_files.clone();
    to.read_token_files = from.read_token_files.clone();
    settings
}
