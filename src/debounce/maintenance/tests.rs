//! Tests for maintenance windows: parsing, one-off and recurring activity,
//! overnight windows and DST transitions in Europe/Berlin.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn one_off(start: &str, end: &str) -> MaintenanceSettings {
    MaintenanceSettings {
        name: "upgrade".to_owned(),
        start: Some(start.to_owned()),
        end: Some(end.to_owned()),
        ..MaintenanceSettings::default()
    }
}

fn recurring(days: &[&str], from: &str, to: &str, timezone: Option<&str>) -> MaintenanceSettings {
    MaintenanceSettings {
        name: "nightly".to_owned(),
        weekdays: days.iter().map(|d| (*d).to_owned()).collect(),
        from: Some(from.to_owned()),
        to: Some(to.to_owned()),
        timezone: timezone.map(str::to_owned),
        ..MaintenanceSettings::default()
    }
}

fn keys(settings: &MaintenanceSettings) -> Vec<String> {
    check(settings).into_iter().map(|(key, _)| key).collect()
}

#[test]
fn the_time_zone_database_is_available() {
    assert!(TimeZone::get("Europe/Berlin").is_ok());
}

#[test]
fn one_off_start_is_inclusive_and_end_exclusive() {
    let window = Window::parse(&one_off(
        "2026-12-01T02:00:00Z",
        "2026-12-01T04:00:00+01:00",
    ))
    .unwrap();
    assert_eq!(window.name(), "upgrade");
    assert!(!window.active_at(at("2026-12-01T01:59:59Z")));
    assert!(window.active_at(at("2026-12-01T02:00:00Z")));
    assert!(window.active_at(at("2026-12-01T02:59:59Z")));
    assert!(!window.active_at(at("2026-12-01T03:00:00Z")));
}

#[test]
fn one_off_problems_name_their_keys() {
    assert_eq!(
        check(&one_off("2026-12-01T02:00:00Z", "2026-12-01T02:00:00Z")),
        vec![("end".to_owned(), "must be after start".to_owned())]
    );
    assert_eq!(
        keys(&one_off("2026-12-01T02:00:00Z", "2026-11-01T02:00:00Z")),
        ["end"]
    );
    assert_eq!(
        keys(&one_off("yesterday", "2026-12-01T02:00:00Z")),
        ["start"]
    );
    assert_eq!(keys(&one_off("2026-12-01 02:00", "soon")), ["start", "end"]);
    let mut missing = one_off("2026-12-01T02:00:00Z", "");
    missing.end = None;
    assert_eq!(keys(&missing), ["end"]);
}

#[test]
fn a_window_is_either_one_off_or_recurring() {
    let mut mixed = one_off("2026-12-01T02:00:00Z", "2026-12-01T04:00:00Z");
    mixed.weekdays = vec!["mon".to_owned()];
    mixed.timezone = Some("UTC".to_owned());
    assert_eq!(keys(&mixed), ["weekdays", "timezone"]);
    assert_eq!(keys(&MaintenanceSettings::default()), ["start"]);
}

#[test]
fn recurring_problems_name_their_keys() {
    assert!(check(&recurring(&["mon"], "22:00", "02:00", None)).is_empty());
    assert_eq!(
        keys(&recurring(&["mon", "funday"], "22:00", "02:00", None)),
        ["weekdays[1]"]
    );
    assert_eq!(keys(&recurring(&[], "22:00", "02:00", None)), ["weekdays"]);
    assert_eq!(
        keys(&recurring(&["mon"], "9:00", "24:00", None)),
        ["from", "to"]
    );
    assert_eq!(
        keys(&recurring(&["mon"], "09:60", "1000", None)),
        ["from", "to"]
    );
    assert_eq!(keys(&recurring(&["mon"], "09:00", "09:00", None)), ["to"]);
    let mut missing = recurring(&["mon"], "09:00", "", None);
    missing.to = None;
    assert_eq!(keys(&missing), ["to"]);
    assert_eq!(
        check(&recurring(&["mon"], "09:00", "10:00", Some("Mars/Base"))),
        vec![(
            "timezone".to_owned(),
            "unknown time zone \"Mars/Base\"".to_owned()
        )]
    );
}

#[test]
fn weekdays_accept_full_names_in_any_case() {
    let window = Window::parse(&recurring(
        &["MONDAY", "Tue", "sunday"],
        "00:00",
        "23:59",
        None,
    ))
    .unwrap();
    assert!(window.active_at(at("2026-01-05T12:00:00Z")), "monday");
    assert!(window.active_at(at("2026-01-06T12:00:00Z")), "tuesday");
    assert!(!window.active_at(at("2026-01-07T12:00:00Z")), "wednesday");
    assert!(window.active_at(at("2026-01-04T12:00:00Z")), "sunday");
}

#[test]
fn an_overnight_window_ends_the_next_day() {
    // 2026-03-27 is a Friday.
    let window = Window::parse(&recurring(&["fri"], "22:00", "02:00", None)).unwrap();
    assert!(!window.active_at(at("2026-03-27T21:59:59Z")));
    assert!(window.active_at(at("2026-03-27T22:00:00Z")));
    assert!(
        window.active_at(at("2026-03-28T01:00:00Z")),
        "saturday 01:00"
    );
    assert!(!window.active_at(at("2026-03-28T02:00:00Z")));
    assert!(
        !window.active_at(at("2026-03-28T22:30:00Z")),
        "saturday is not listed"
    );
    assert!(
        !window.active_at(at("2026-03-27T01:00:00Z")),
        "thursday night is not listed"
    );
}

#[test]
fn local_times_follow_the_offset_of_the_season() {
    let window = Window::parse(&recurring(
        &["mon"],
        "09:00",
        "17:00",
        Some("Europe/Berlin"),
    ))
    .unwrap();
    // Winter, UTC+1: 2026-01-05 is a Monday.
    assert!(!window.active_at(at("2026-01-05T07:59:59Z")));
    assert!(window.active_at(at("2026-01-05T08:00:00Z")));
    assert!(!window.active_at(at("2026-01-05T16:00:00Z")));
    // Summer, UTC+2: 2026-07-06 is a Monday.
    assert!(window.active_at(at("2026-07-06T07:00:00Z")));
    assert!(window.active_at(at("2026-07-06T14:59:59Z")));
    assert!(!window.active_at(at("2026-07-06T15:00:00Z")));
}

#[test]
fn a_window_across_spring_forward_is_one_hour_shorter() {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST. 01:00 CET = 00:00Z, 04:00 CEST = 02:00Z.
    let window = Window::parse(&recurring(
        &["sun"],
        "01:00",
        "04:00",
        Some("Europe/Berlin"),
    ))
    .unwrap();
    assert!(!window.active_at(at("2026-03-28T23:59:59Z")));
    assert!(window.active_at(at("2026-03-29T00:00:00Z")));
    assert!(window.active_at(at("2026-03-29T01:59:59Z")));
    assert!(!window.active_at(at("2026-03-29T02:00:00Z")));
}

#[test]
fn a_start_in_the_spring_gap_moves_forward() {
    // 02:30 does not exist on 2026-03-29; it resolves to 03:30 CEST = 01:30Z.
    let window = Window::parse(&recurring(
        &["sun"],
        "02:30",
        "04:00",
        Some("Europe/Berlin"),
    ))
    .unwrap();
    assert!(!window.active_at(at("2026-03-29T01:29:59Z")));
    assert!(window.active_at(at("2026-03-29T01:30:00Z")));
    assert!(!window.active_at(at("2026-03-29T02:00:00Z")));
}

#[test]
fn a_window_across_fall_back_is_one_hour_longer() {
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET. 01:00 CEST = 23:00Z the day
    // before, 04:00 CET = 03:00Z.
    let window = Window::parse(&recurring(
        &["sun"],
        "01:00",
        "04:00",
        Some("Europe/Berlin"),
    ))
    .unwrap();
    assert!(!window.active_at(at("2026-10-24T22:59:59Z")));
    assert!(window.active_at(at("2026-10-24T23:00:00Z")));
    assert!(
        window.active_at(at("2026-10-25T01:30:00Z")),
        "the repeated hour"
    );
    assert!(window.active_at(at("2026-10-25T02:59:59Z")));
    assert!(!window.active_at(at("2026-10-25T03:00:00Z")));
}

#[test]
fn active_names_the_first_covering_window() {
    let mut db = one_off("2026-12-01T02:00:00Z", "2026-12-01T04:00:00Z");
    db.name = "db".to_owned();
    db.components = vec!["postgres".to_owned()];
    let all = recurring(&["tue"], "00:00", "12:00", None);
    let windows = vec![Window::parse(&db).unwrap(), Window::parse(&all).unwrap()];
    assert!(windows[0].covers("postgres"));
    assert!(!windows[0].covers("api"));
    assert!(windows[1].covers("api"));
    // 2026-12-01 is a Tuesday: both are active.
    let now = at("2026-12-01T03:00:00Z");
    assert_eq!(active(&windows, "postgres", now), Some("db"));
    assert_eq!(active(&windows, "api", now), Some("nightly"));
    assert_eq!(active(&windows, "api", at("2026-12-01T12:00:00Z")), None);
    assert_eq!(active(&[], "api", now), None);
}
