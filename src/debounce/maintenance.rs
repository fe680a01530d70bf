//! Maintenance windows: parsing a `[[maintenance]]` entry into a [`Window`]
//! and asking whether a window covering a component is active at an instant.
//!
//! A window is either one-off (`start` + `end`, RFC 3339) or recurring
//! (`weekdays` + `from` + `to`, local `HH:MM` in an IANA `timezone`, default
//! UTC). A recurring window starts on each listed weekday; `to` earlier than
//! `from` means it ends the next day. Start is inclusive, end exclusive.
//! Local times are resolved with jiff's compatible rule: a time skipped by a
//! DST gap moves forward by the gap, a repeated time takes its first instance.

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;

use crate::settings::MaintenanceSettings;

#[cfg(test)]
mod tests;

/// A validated maintenance window.
#[derive(Debug, Clone)]
pub struct Window {
    /// Shown in audit rows of suppressed wakes.
    name: String,
    /// Components covered; empty covers every component.
    components: Vec<String>,
    /// When it is active.
    schedule: Schedule,
}

/// When a window is active.
#[derive(Debug, Clone)]
enum Schedule {
    /// Once, from `start` (inclusive) to `end` (exclusive).
    OneOff { start: Timestamp, end: Timestamp },
    /// Every listed weekday (Monday first), from `from` local time to `to`.
    Recurring {
        weekdays: [bool; 7],
        from: Time,
        to: Time,
        timezone: TimeZone,
    },
}

/// Problems as (key, message), the key relative to the window's table.
type Problems = Vec<(String, String)>;

impl Window {
    /// Parses and validates a window; every problem is reported, each with its key.
    pub fn parse(settings: &MaintenanceSettings) -> Result<Window, Vec<(String, String)>> {
        let MaintenanceSettings {
            name,
            components,
            start,
            end,
            weekdays,
            from,
            to,
            timezone,
        } = settings;
        let mut problems = Problems::new();
        let one_off = start.is_some() || end.is_some();
        let recurring =
            !weekdays.is_empty() || from.is_some() || to.is_some() || timezone.is_some();
        let schedule = match (one_off, recurring) {
            (true, true) => {
                for (key, set) in [
                    ("weekdays", !weekdays.is_empty()),
                    ("from", from.is_some()),
                    ("to", to.is_some()),
                    ("timezone", timezone.is_some()),
                ] {
                    if set {
                        problems.push(problem(
                            key,
                            "cannot be combined with start/end (a window is either one-off or recurring)",
                        ));
                    }
                }
                None
            }
            (true, false) => one_off_schedule(start.as_deref(), end.as_deref(), &mut problems),
            (false, true) => recurring_schedule(
                weekdays,
                from.as_deref(),
                to.as_deref(),
                timezone.as_deref(),
                &mut problems,
            ),
            (false, false) => {
                problems.push(problem(
                    "start",
                    "required: set start and end, or weekdays, from and to",
                ));
                None
            }
        };
        match schedule {
            Some(schedule) if problems.is_empty() => Ok(Window {
                name: name.clone(),
                components: components.clone(),
                schedule,
            }),
            _ => Err(problems),
        }
    }

    /// The window's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the window covers `component`; an empty list covers all.
    pub fn covers(&self, component: &str) -> bool {
        self.components.is_empty() || self.components.iter().any(|c| c == component)
    }

    /// Whether the window is active at `at` (start inclusive, end exclusive).
    pub fn active_at(&self, at: Timestamp) -> bool {
        match &self.schedule {
            Schedule::OneOff { start, end } => *start <= at && at < *end,
            Schedule::Recurring {
                weekdays,
                from,
                to,
                timezone,
            } => {
                let today = at.to_zoned(timezone.clone()).date();
                // A window that started yesterday may still run (overnight).
                [Some(today), today.yesterday().ok()]
                    .into_iter()
                    .flatten()
                    .filter(|day| weekdays[weekday_index(day.weekday())])
                    .any(|day| {
                        occurrence(day, *from, *to, timezone)
                            .is_some_and(|(start, end)| start <= at && at < end)
                    })
            }
        }
    }
}

/// Problems with a window's definition, as (key, message); empty when valid.
pub fn check(settings: &MaintenanceSettings) -> Vec<(String, String)> {
    Window::parse(settings).err().unwrap_or_default()
}

/// The name of the first window in `windows` that covers `component` and is
/// active at `at`.
pub fn active<'a>(windows: &'a [Window], component: &str, at: Timestamp) -> Option<&'a str> {
    windows
        .iter()
        .find(|window| window.covers(component) && window.active_at(at))
        .map(Window::name)
}

fn problem(key: &str, message: impl Into<String>) -> (String, String) {
    (key.to_owned(), message.into())
}

fn one_off_schedule(
    start: Option<&str>,
    end: Option<&str>,
    problems: &mut Problems,
) -> Option<Schedule> {
    let start = timestamp("start", start, "end", problems);
    let end = timestamp("end", end, "start", problems);
    let (start, end) = (start?, end?);
    if end <= start {
        problems.push(problem("end", "must be after start"));
        return None;
    }
    Some(Schedule::OneOff { start, end })
}

fn timestamp(
    key: &str,
    value: Option<&str>,
    other: &str,
    problems: &mut Problems,
) -> Option<Timestamp> {
    let Some(value) = value else {
        problems.push(problem(key, format!("required together with {other}")));
        return None;
    };
    match value.parse::<Timestamp>() {
        Ok(at) => Some(at),
        Err(error) => {
            problems.push(problem(
                key,
                format!("invalid RFC 3339 timestamp \"{value}\": {error}"),
            ));
            None
        }
    }
}

fn recurring_schedule(
    weekdays: &[String],
    from: Option<&str>,
    to: Option<&str>,
    timezone: Option<&str>,
    problems: &mut Problems,
) -> Option<Schedule> {
    let mut days = [false; 7];
    if weekdays.is_empty() {
        problems.push(problem("weekdays", "required for a recurring window"));
    }
    for (i, day) in weekdays.iter().enumerate() {
        match parse_weekday(day) {
            Some(weekday) => days[weekday_index(weekday)] = true,
            None => problems.push((
                format!("weekdays[{i}]"),
                format!("unknown weekday \"{day}\" (expected mon .. sun)"),
            )),
        }
    }
    let from = local_time("from", from, problems);
    let to = local_time("to", to, problems);
    let timezone = match timezone {
        None => Some(TimeZone::UTC),
        Some(name) => match TimeZone::get(name) {
            Ok(timezone) => Some(timezone),
            Err(_) => {
                problems.push(problem("timezone", format!("unknown time zone \"{name}\"")));
                None
            }
        },
    };
    let (from, to, timezone) = (from?, to?, timezone?);
    if from == to {
        problems.push(problem("to", "must differ from from"));
        return None;
    }
    Some(Schedule::Recurring {
        weekdays: days,
        from,
        to,
        timezone,
    })
}

fn parse_weekday(day: &str) -> Option<Weekday> {
    let weekday = match day.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => return None,
    };
    Some(weekday)
}

/// 0 for Monday .. 6 for Sunday.
fn weekday_index(weekday: Weekday) -> usize {
    usize::try_from(weekday.to_monday_zero_offset()).unwrap_or(0)
}

/// Parses a strict `HH:MM` (two digits each, 00:00 to 23:59).
fn local_time(key: &str, value: Option<&str>, problems: &mut Problems) -> Option<Time> {
    let Some(value) = value else {
        problems.push(problem(key, "required for a recurring window"));
        return None;
    };
    let parsed = value
        .split_once(':')
        .filter(|(h, m)| {
            h.len() == 2 && m.len() == 2 && h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())
        })
        .and_then(|(h, m)| Some((h.parse::<i8>().ok()?, m.parse::<i8>().ok()?)))
        .and_then(|(h, m)| Time::new(h, m, 0, 0).ok());
    if parsed.is_none() {
        problems.push(problem(
            key,
            format!("must be a time of day as HH:MM, got \"{value}\""),
        ));
    }
    parsed
}

/// The instants of the occurrence that starts on local `day`.
fn occurrence(
    day: Date,
    from: Time,
    to: Time,
    timezone: &TimeZone,
) -> Option<(Timestamp, Timestamp)> {
    let end_day = if to < from { day.tomorrow().ok()? } else { day };
    let start = day.to_datetime(from).to_zoned(timezone.clone()).ok()?;
    let end = end_day.to_datetime(to).to_zoned(timezone.clone()).ok()?;
    Some((start.timestamp(), end.timestamp()))
}
