//! The config loader: one TOML file plus `WARDEN__SECTION__KEY` environment
//! overrides, merged, deserialised key by key and validated.
//!
//! Input: the TOML text, optionally followed by a line `--- env` and
//! `KEY=VALUE` lines (the environment the loader sees instead of the
//! process's). The loader must return settings or named problems, never panic.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use warden::settings::{ConfigSource, load_with_env};

fuzz_target!(|data: &[u8]| {
    // The loader reads the file as UTF-8 and refuses anything else up front.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, env) = match text.split_once("\n--- env\n") {
        Some((toml, env)) => (toml, env),
        None => (text, ""),
    };
    let env: HashMap<String, String> = env
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let source = ConfigSource::Text {
        name: "fuzz".into(),
        toml: toml.to_owned(),
    };
    match load_with_env(&source, Some(env)) {
        Ok(settings) => {
            assert!(!settings.service.state_dir.as_os_str().is_empty());
            let _ = format!("{settings:?}");
            let _ = settings.summary();
        }
        Err(error) => {
            assert!(
                !error.lines().is_empty(),
                "an error without a line: {error:?}"
            );
            let _ = error.to_string();
        }
    }
});
