#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::Metrics;
use crate::messages::Health;

#[test]
fn counts_show_up_in_the_text_with_bounded_labels() {
    let metrics = Metrics::new();
    metrics.probe_checked("api", Health::Unhealthy, Duration::from_millis(12));
    metrics.probe_checked("api", Health::Unhealthy, Duration::from_millis(30));
    metrics.issue("fired", "");
    metrics.escalation("site", "fix", "skipped");
    let text = metrics.encode();
    assert!(
        text.contains("warden_probe_checks_total{probe=\"api\",status=\"unhealthy\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("warden_probe_latency_seconds_count{probe=\"api\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("warden_issues_total{event=\"fired\",reason=\"\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "warden_escalation_steps_total{component=\"site\",rung=\"fix\",outcome=\"skipped\"} 1"
        ),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn two_instances_do_not_share_counts() {
    let (a, b) = (Metrics::new(), Metrics::new());
    a.issue("fired", "");
    assert!(!b.encode().contains("warden_issues_total{"));
}
