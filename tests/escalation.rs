//! Escalation end to end, in-process, with real managed processes
//! (`warden demo-target`) and loopback tier webhooks and notifiers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::instance::{WAIT, rows, start, wait_rows};

use std::path::Path;
use std::time::Duration;

use support::receiver::Receiver;

/// A managed demo-target component `site` on `port`, started in `mode`, with
/// an http probe that fails after two bad checks.
fn site(dir: &Path, port: u16, mode: &str, extra: &str) -> String {
    let state = dir.join("site.mode");
    std::fs::write(&state, mode).unwrap();
    let bin = env!("CARGO_BIN_EXE_warden");
    format!(
        "[debounce]\nfailure_threshold = 2\n\n[[probes]]\nname = \"site\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/health\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\n\n\
         [[components]]\nname = \"site\"\nprobes = [\"site\"]\nrun = [\"{bin}\", \"demo-target\", \"--listen\", \"127.0.0.1:{port}\", \"--state-file\", \"{}\"]\nstop_timeout = \"2s\"\n{extra}\n",
        state.display()
    )
}

fn seams_of(dir: &Path, prefix: &str) -> Vec<String> {
    rows(dir, prefix).into_iter().map(|r| r.seam).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enabled_fix_runs_is_verified_and_the_issue_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let extra = format!(
        "[components.fix]\nenabled = true\naction = {{ kind = \"http\", url = \"http://127.0.0.1:{port}/control/recover\" }}\nverify_timeout = \"5s\"\n"
    );
    let warden = start(dir.path(), &site(dir.path(), port, "failing", &extra)).await;
    let fixes = wait_rows(dir.path(), "escalation.fix_attempted", 1).await;
    assert_eq!(fixes[0].details["outcome"], "succeeded", "{:#?}", fixes[0]);
    assert_eq!(fixes[0].details["action"], "http");
    let wake = &rows(dir.path(), "probe.wake_requested")[0];
    assert_eq!(
        fixes[0].caller_session_id, wake.caller_session_id,
        "the fix joins the issue's story"
    );
    let ended = wait_rows(dir.path(), "escalation.cycle_ended", 1).await;
    assert_eq!(ended[0].details["outcome"], "healed");
    assert_eq!(ended[0].details["healed_by"], "fix");
    wait_rows(dir.path(), "probe.resolved", 1).await;
    assert!(rows(dir.path(), "escalation.tier_called").is_empty());
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_that_does_not_heal_walks_the_tiers_in_order_then_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let (t1, t2, last, ops) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    t1.reply(serde_json::json!({ "status": "rejected", "notes": "not mine" }));
    // Claims a fix that never happened: it must not be believed.
    t2.reply(serde_json::json!({ "status": "fixed", "notes": "restarted it, trust me" }));
    let config = dir.path().join("site.conf");
    let original: Vec<u8> = (0..=255u8)
        .chain(b"setting = good\n".iter().copied())
        .collect();
    std::fs::write(&config, &original).unwrap();
    let extra = format!(
        "final_tier_threshold = 0\nrollback = {{ snapshot = [\"{}\"] }}\n\n[components.fix]\nenabled = false\nverify_timeout = \"1s\"\n\n\
         [[components.tiers]]\nname = \"t1\"\nkind = \"webhook\"\nurl = \"{}\"\nenabled = true\n\n\
         [[components.tiers]]\nname = \"t2\"\nkind = \"webhook\"\nurl = \"{}\"\nenabled = true\n\n\
         [[components.tiers]]\nname = \"final\"\nkind = \"webhook\"\nurl = \"{}\"\nenabled = true\n\n\
         [[notifiers]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        config.display(),
        t1.url,
        t2.url,
        last.url,
        ops.url
    );
    let warden = start(dir.path(), &site(dir.path(), port, "failing", &extra)).await;
    // The snapshot was taken at boot; a bad change lands afterwards.
    wait_rows(dir.path(), "escalation.snapshot_taken", 1).await;
    std::fs::write(&config, b"setting = broken\n").unwrap();

    let rolled = wait_rows(dir.path(), "escalation.rolled_back", 1).await;
    let skipped = rows(dir.path(), "escalation.fix_attempted");
    assert_eq!(skipped[0].details["outcome"], "skipped");
    assert!(
        skipped[0].details["reason"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    let tiers: Vec<String> = rows(dir.path(), "escalation.tier_called")
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r.details["tier"].as_str().unwrap(),
                r.details["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(tiers, ["t1:rejected", "t2:fixed"]);
    assert!(
        last.received().is_empty(),
        "final_tier_threshold = 0 never calls the final tier"
    );
    // Each call carries everything before it.
    let t2_history = &t2.received()[0].body["history"]["entries"];
    let summaries: Vec<&str> = t2_history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries.iter().any(|s| s.contains("skipped")),
        "{summaries:?}"
    );
    assert!(
        summaries.iter().any(|s| s.contains("t1 answered rejected")),
        "{summaries:?}"
    );
    assert!(t2.received()[0].headers.contains_key("idempotency-key"));

    // Rolled back byte for byte, and every notifier was told.
    assert_eq!(std::fs::read(&config).unwrap(), original);
    assert!(
        rolled[0].details["restored"]["restored"]
            .as_array()
            .is_some_and(|a| a.len() == 1),
        "{:#?}",
        rolled[0]
    );
    assert!(
        support::eventually(WAIT, || {
            let got = ops.received().iter().any(|r| {
                r.body["title"]
                    .as_str()
                    .unwrap_or("")
                    .contains("rolled back to last-known-good")
            });
            async move { got }
        })
        .await
    );
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_freezes_every_action_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let extra = format!(
        "[components.fix]\nenabled = true\naction = {{ kind = \"http\", url = \"http://127.0.0.1:{port}/control/recover\" }}\nverify_timeout = \"5s\"\n"
    );
    let warden = start(dir.path(), &site(dir.path(), port, "failing", &extra)).await;
    warden.state.pause("operator");
    let skipped = wait_rows(dir.path(), "escalation.step_skipped", 1).await;
    assert!(
        skipped[0].details["reason"]
            .as_str()
            .unwrap()
            .contains("Paused"),
        "{:#?}",
        skipped[0]
    );
    // Twenty more failing checks while paused: still no action.
    let before = rows(dir.path(), "probe.wake_requested").len();
    assert!(before >= 1);
    tokio::time::sleep(Duration::from_secs(2)).await; // a fixed observation window for "nothing happens"
    assert!(
        rows(dir.path(), "escalation.fix_attempted").is_empty(),
        "a fix ran while paused"
    );
    assert_eq!(
        rows(dir.path(), "escalation.step_skipped").len(),
        1,
        "the pause is recorded once"
    );

    warden.state.clear("operator");
    let fixes = wait_rows(dir.path(), "escalation.fix_attempted", 1).await;
    assert_eq!(fixes[0].details["outcome"], "succeeded");
    wait_rows(dir.path(), "probe.resolved", 1).await;
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_is_restarted_and_a_crash_loop_escalates() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    // The component without its probe: only the process itself is watched.
    let config = site(
        dir.path(),
        port,
        "ok",
        "[components.restart]\nmax_restarts = 2\nperiod = \"30s\"\nbackoff_min = \"20ms\"\nbackoff_max = \"100ms\"\n",
    );
    let config =
        config[config.find("[[components]]").unwrap()..].replace("probes = [\"site\"]\n", "");
    let warden = start(dir.path(), &config).await;
    let started = wait_rows(dir.path(), "managed.started", 1).await;
    let pid = started[0].details["pid"].as_u64().unwrap();
    // kill -9: noticed at once, restarted, audited.
    let status = std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exited = wait_rows(dir.path(), "managed.exited", 1).await;
    assert_eq!(exited[0].details["signal"], 9, "{:#?}", exited[0]);
    let started = wait_rows(dir.path(), "managed.started", 2).await;
    assert_ne!(started[1].details["pid"], started[0].details["pid"]);

    // Now it exits at once on every start: the restart ladder runs out and the
    // component escalates (no envelope, no tiers, no snapshot: the ladder is
    // exhausted at once, and nothing is rolled back or restarted).
    std::fs::write(dir.path().join("site.mode"), "exit").unwrap();
    let new_pid = started[1].details["pid"].as_u64().unwrap();
    std::process::Command::new("kill")
        .arg("-9")
        .arg(new_pid.to_string())
        .status()
        .unwrap();
    let fatal = wait_rows(dir.path(), "managed.fatal", 1).await;
    // No probe watches this component, so only the FATAL can start the cycle.
    let escalated = wait_rows(dir.path(), "escalation.exhausted", 1).await;
    assert!(escalated[0].seq > fatal[0].seq);
    assert_eq!(
        escalated[0].details["rolled_back"], false,
        "{:#?}",
        escalated[0]
    );
    assert!(rows(dir.path(), "escalation.rolled_back").is_empty());
    assert!(
        escalated[0]
            .caller_session_id
            .as_deref()
            .unwrap_or("")
            .starts_with("component:site:fatal"),
        "{:#?}",
        escalated[0]
    );
    let seams = seams_of(dir.path(), "managed.*");
    assert!(
        seams
            .iter()
            .filter(|s| *s == "managed.restart_scheduled")
            .count()
            >= 2,
        "{seams:?}"
    );
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_woken_while_the_coordinator_was_down_is_taken_up_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let target = support::targets::Switchable::start(200).await;
    let fix = Receiver::start().await;
    let config = format!(
        "{}[debounce]\nfailure_threshold = 2\n\n[[probes]]\nname = \"site\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\n\n\
         [[components]]\nname = \"site\"\nprobes = [\"site\"]\n\n[components.fix]\nenabled = true\naction = {{ kind = \"http\", url = \"{}\" }}\nverify_timeout = \"1s\"\n",
        support::instance::SLOW_SECOND_RESTART,
        target.url,
        fix.url
    );
    let warden = start(dir.path(), &config).await;
    support::instance::kill_into_backoff(&warden, dir.path(), "coordinator.site").await;
    target.set(503);
    wait_rows(dir.path(), "probe.wake_requested", 1).await;
    assert!(
        rows(dir.path(), "supervision.restarted").len() < 2,
        "the coordinator came back before the issue: the test proves nothing"
    );
    let fixes = wait_rows(dir.path(), "escalation.fix_attempted", 1).await;
    let wake = &rows(dir.path(), "probe.wake_requested")[0];
    assert_eq!(fixes[0].caller_session_id, wake.caller_session_id);
    warden.shutdown().await.unwrap();
}

/// `site` with the fix off, one webhook tier `agent` called up to three
/// times, and a final tier that is never engaged; `patch` is the component's
/// `[components.patch]` body.
fn patching_site(dir: &Path, port: u16, agent: &str, patch: &str) -> String {
    let extra = format!(
        "final_tier_threshold = 0\n{patch}\n\n[components.fix]\nenabled = false\nverify_timeout = \"300ms\"\n\n\
         [[components.tiers]]\nname = \"agent\"\nkind = \"webhook\"\nurl = \"{agent}\"\nenabled = true\nattempts = 3\n\n\
         [[components.tiers]]\nname = \"final\"\nkind = \"webhook\"\nurl = \"{agent}\"\nenabled = true\n"
    );
    site(dir, port, "failing", &extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_patch_is_applied_once_per_cycle_and_no_content_reaches_the_log_or_api() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let allowed = dir.path().join("etc/site");
    std::fs::create_dir_all(&allowed).unwrap();
    let conf = allowed.join("app.conf");
    std::fs::write(&conf, "password = old-secret-value-42\n").unwrap();
    let agent = Receiver::start().await;
    let patch = serde_json::json!({ "files": [{ "path": conf, "content": "password = new-secret-value-43\n" }] });
    agent.reply(serde_json::json!({ "status": "fixed", "notes": "patched", "patch": patch }));
    let config = patching_site(
        dir.path(),
        port,
        &agent.url,
        &format!("patch = {{ paths = [\"{}/*.conf\"] }}", allowed.display()),
    );
    let warden = start(dir.path(), &config).await;
    wait_rows(dir.path(), "escalation.exhausted", 1).await;
    assert_eq!(agent.received().len(), 3, "the tier answered three times");

    let applied = rows(dir.path(), "escalation.patch_applied");
    assert_eq!(applied.len(), 1, "{applied:#?}");
    let files = &applied[0].details["files"];
    assert_eq!(files[0]["path"], conf.display().to_string());
    assert_eq!(
        files[0]["before"]["size"],
        "password = old-secret-value-42\n".len()
    );
    assert!(files[0]["after"]["sha256"].is_string(), "{files}");
    let again = rows(dir.path(), "escalation.patch_rejected");
    assert_eq!(again.len(), 2, "{again:#?}");
    assert!(
        again[0].details["reason"]
            .as_str()
            .unwrap()
            .contains("already applied"),
        "{:#?}",
        again[0]
    );
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "password = new-secret-value-43\n"
    );

    // Neither the old nor the new content is in the log or an API answer.
    let body = reqwest::get(format!(
        "http://{}/api/audit?seam=escalation.*&limit=1000",
        warden.addr
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(body.contains("escalation.patch_applied"), "{body}");
    let mut logs = String::new();
    for entry in std::fs::read_dir(dir.path().join("var/audit")).unwrap() {
        logs.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.unwrap().path()).unwrap(),
        ));
    }
    logs.push_str(&std::fs::read_to_string(dir.path().join("var/patch_history.jsonl")).unwrap());
    for secret in ["old-secret-value-42", "new-secret-value-43"] {
        assert!(!body.contains(secret), "{secret} served by /api/audit");
        assert!(
            !logs.contains(secret),
            "{secret} in the audit log or history"
        );
    }
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_patch_outside_the_allow_list_or_through_a_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let allowed = dir.path().join("etc/site");
    let private = dir.path().join("root");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&private).unwrap();
    let victim = private.join("shadow");
    std::fs::write(&victim, "root-only").unwrap();
    std::os::unix::fs::symlink(&victim, allowed.join("link.conf")).unwrap();
    let agent = Receiver::start().await;
    let patches = [
        (victim.clone(), "matches none"),
        (allowed.join("link.conf"), "symbolic link"),
        (allowed.join("big.conf"), "over patch.max_bytes"),
    ];
    let config = patching_site(
        dir.path(),
        port,
        &agent.url,
        &format!(
            "patch = {{ paths = [\"{}/*.conf\"], max_bytes = \"64B\" }}",
            allowed.display()
        ),
    );
    let answer = |(path, _): &(std::path::PathBuf, &str)| {
        let content = if path.ends_with("big.conf") {
            "x".repeat(65)
        } else {
            "pwned".to_owned()
        };
        serde_json::json!({ "status": "fixed", "patch": { "files": [{ "path": path, "content": content }] } })
    };
    agent.replies(patches.iter().map(answer).collect());
    let warden = start(dir.path(), &config).await;
    let rejected = wait_rows(dir.path(), "escalation.patch_rejected", 3).await;
    for (row, (path, why)) in rejected.iter().zip(&patches) {
        let reason = row.details["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{path:?}: {reason}");
        assert_eq!(row.details["files"][0]["path"], path.display().to_string());
        assert!(!serde_json::to_string(row).unwrap().contains("pwned"));
    }
    assert!(rows(dir.path(), "escalation.patch_applied").is_empty());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root-only");
    assert!(!allowed.join("big.conf").exists());
    warden.shutdown().await.unwrap();
}

/// A component `site` whose http probe `site-http` does not name its
/// component, and reports an integrity category (SEV0 when it fires).
fn site_with_unowned_probe(dir: &Path, port: u16, extra: &str) -> String {
    let state = dir.join("site.mode");
    std::fs::write(&state, "failing").unwrap();
    let bin = env!("CARGO_BIN_EXE_warden");
    format!(
        "[debounce]\nfailure_threshold = 2\n\n[[probes]]\nname = \"site-http\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/health\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\ncategory = \"integrity_check_failed\"\nseverity = \"critical\"\n\n\
         [[components]]\nname = \"site\"\nprobes = [\"site-http\"]\nrun = [\"{bin}\", \"demo-target\", \"--listen\", \"127.0.0.1:{port}\", \"--state-file\", \"{}\"]\nstop_timeout = \"2s\"\n{extra}\n",
        state.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sev0_on_a_listed_probe_freezes_its_component_before_the_pending_fix() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let extra = format!(
        "[components.fix]\nenabled = true\naction = {{ kind = \"http\", url = \"http://127.0.0.1:{port}/control/recover?token=s3cret\" }}\nverify_timeout = \"2s\"\n"
    );
    let warden = start(
        dir.path(),
        &site_with_unowned_probe(dir.path(), port, &extra),
    )
    .await;

    // The probe's issue is filed under the component that lists it ...
    let wake = wait_rows(dir.path(), "probe.wake_requested", 1).await;
    assert_eq!(wake[0].details["component"], "site", "{:#?}", wake[0]);
    assert_eq!(wake[0].component.as_deref(), Some("site"));
    // ... and the wake row says what the envelope will do, without the URL's path or query.
    assert_eq!(wake[0].details["envelope_status"], "enabled");
    assert_eq!(
        wake[0].details["envelope_fix"],
        format!("send POST to http://127.0.0.1:{port}")
    );
    let done = wait_rows(dir.path(), "probe.investigation_completed", 1).await;
    let summary = done[0].details["summary"].as_str().unwrap();
    assert!(
        summary.contains("The fix envelope will send POST to")
            && !summary.contains("no fix envelope"),
        "{summary}"
    );

    // ... so the SEV0 incident covers the component and freezes it, and
    // the fix that was waiting for the evidence never starts.
    let opened = wait_rows(dir.path(), "incident.opened", 1).await;
    assert_eq!(opened[0].details["severity"], "SEV0", "{:#?}", opened[0]);
    let frozen = wait_rows(dir.path(), "incident.automation_frozen", 1).await;
    assert_eq!(frozen[0].details["components"], serde_json::json!(["site"]));
    let held = wait_rows(dir.path(), "escalation.step_skipped", 1).await;
    assert!(
        held[0].details["reason"]
            .as_str()
            .unwrap()
            .contains("frozen"),
        "{:#?}",
        held[0]
    );
    let after_freeze: Vec<String> = rows(dir.path(), "escalation.*")
        .into_iter()
        .filter(|r| r.seq > frozen[0].seq)
        .filter(|r| {
            r.seam == "escalation.action_started"
                || (r.seam == "escalation.fix_attempted"
                    && r.details["started_seq"]
                        .as_u64()
                        .is_none_or(|s| s > frozen[0].seq))
        })
        .map(|r| format!("{} {} {}", r.seq, r.seam, r.details))
        .collect();
    assert!(
        after_freeze.is_empty(),
        "automation started after the freeze row (seq {}): {after_freeze:#?}",
        frozen[0].seq
    );
    // One story: the incident joined the issue's session.
    assert_eq!(opened[0].caller_session_id, wake[0].caller_session_id);
    warden.shutdown().await.unwrap();
}
