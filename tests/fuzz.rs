//! Property-based fuzzing of the three parsers fed by untrusted input: the
//! condition language, the config loader and the audit-log reader. These run
//! a bounded number of random cases on every `cargo test`, and
//! `PROPTEST_CASES=100000 cargo test --test fuzz --release` runs them longer;
//! the coverage-guided libFuzzer targets in `fuzz/` go deeper (see
//! docs/chaos.md). A failing case from either must become a named
//! regression test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Write;

use proptest::prelude::*;
use warden::audit::AuditReader;
use warden::settings::{ConfigSource, load_with_env};

fn toml_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("[service]".to_owned()),
        Just("[[probes]]".to_owned()),
        Just("[[components]]".to_owned()),
        Just("[debounce]".to_owned()),
        "[a-z_]{1,12} = \"[ -~]{0,20}\"",
        "[a-z_]{1,12} = -?[0-9]{1,6}",
        "[a-z_.]{1,20} = \\[[0-9, \"a-z]{0,20}\\]",
        "(name|kind|url|interval|timeout|address) = \"[a-z0-9:/.]{0,16}\"",
        "[ -~]{0,40}",
    ];
    proptest::collection::vec(line, 0..20).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text, valid or not: the loader returns settings or problems, never panics.
    #[test]
    fn the_config_loader_never_panics(toml in toml_like()) {
        let source = ConfigSource::Text { name: "fuzz".into(), toml };
        match load_with_env(&source, Some(HashMap::new())) {
            Ok(settings) => prop_assert!(!settings.service.state_dir.as_os_str().is_empty()),
            Err(error) => prop_assert!(!error.lines().is_empty()),
        }
    }

    /// Any expression: parse or a clear error, never a panic; and whatever
    /// parses evaluates against empty facts without panicking.
    #[test]
    fn the_condition_parser_never_panics(text in "[ -~]{0,60}") {
        if let Ok(condition) = warden::probes::classify::parse(&text) {
            let _ = condition.eval(&warden::probes::Facts::default());
        }
    }

    /// Garbled, torn and binary lines in a log file: the reader reports them
    /// as errors and still yields every intact row, in order.
    #[test]
    fn the_audit_reader_survives_garbage(
        garbage in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..8),
        rows in 1u64..20,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(warden::audit::file_name(1));
        let mut file = std::fs::File::create(&path).unwrap();
        let mut garbage = garbage.into_iter();
        for seq in 1..=rows {
            let row = serde_json::json!({
                "seq": seq, "ts": "2026-12-01T00:00:00.000Z", "seam": "fuzz.row",
                "caller_session_id": null, "trace_id": null, "component": null, "details": {}
            });
            writeln!(file, "{row}").unwrap();
            if let Some(mut junk) = garbage.next() {
                junk.retain(|b| *b != b'\n');
                file.write_all(&junk).unwrap();
                file.write_all(b"\n").unwrap();
            }
        }
        drop(file);
        let reader = AuditReader::open(dir.path()).unwrap();
        let seqs: Vec<u64> = reader.rows_from(1, None).filter_map(Result::ok).map(|r| r.seq).collect();
        // Junk that happens to parse as a row is allowed through; every real row must be there.
        for seq in 1..=rows {
            prop_assert!(seqs.contains(&seq), "row {} lost: {:?}", seq, seqs);
        }
    }
}

#[test]
fn a_config_file_that_is_not_utf8_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, [0xff, 0xfe, b'a', b'=', b'1']).unwrap();
    let error = warden::settings::load(&ConfigSource::File(path)).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("bad.toml"), "{text}");
}
