//! `warden audit tail [--follow] [--seam S] [--since SEQ] [--json]`: the
//! command's logic, separate from clap so it can be tested with a buffer.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::{AuditError, AuditReader, AuditRow, seam_matches};

/// How often `--follow` looks for new rows.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Options of `warden audit tail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailOptions {
    /// Keep printing new rows until shutdown.
    pub follow: bool,
    /// Only rows whose seam equals this, or starts with it minus a trailing `*`.
    pub seam: Option<String>,
    /// Start at this seq (inclusive); without it, print the last `last` rows.
    pub since: Option<u64>,
    /// Print raw JSONL rows instead of the human format.
    pub json: bool,
    /// How many rows to show when `since` is not given.
    pub last: usize,
}

impl Default for TailOptions {
    fn default() -> Self {
        Self {
            follow: false,
            seam: None,
            since: None,
            json: false,
            last: 20,
        }
    }
}

/// Prints rows of the log in `audit_dir` to `out`, then with `follow` keeps
/// printing new ones until `shutdown` resolves. Human format, one line per row:
/// `#<seq> <ts> <seam> [component] [caller_session_id] <details-json>`, where
/// the bracketed parts are printed only when present.
pub async fn tail_command(
    audit_dir: &Path,
    opts: TailOptions,
    out: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()>,
) -> Result<(), AuditError> {
    let reader = AuditReader::open(audit_dir)?;
    let seam = opts.seam.as_deref();
    let mut next_seq = opts.since.unwrap_or(1);
    let mut shown = VecDeque::new();
    // Unfiltered, so `next_seq` ends after the last row whatever its seam.
    for item in reader.rows_from(next_seq, None) {
        match item {
            Ok(row) => {
                next_seq = row.seq + 1;
                if seam.is_some_and(|filter| !seam_matches(filter, &row.seam)) {
                    continue;
                }
                if opts.since.is_some() {
                    print_row(out, &row, opts.json)?;
                } else {
                    // Keep only the last `last` rows to print.
                    if shown.len() == opts.last {
                        shown.pop_front();
                    }
                    if opts.last > 0 {
                        shown.push_back(row);
                    }
                }
            }
            Err(error) => tracing::error!(error = %error, "Skipped a corrupt audit row."),
        }
    }
    for row in &shown {
        print_row(out, row, opts.json)?;
    }
    out.flush().map_err(AuditError::Output)?;
    if !opts.follow {
        return Ok(());
    }
    reader
        .follow(next_seq, seam, FOLLOW_POLL, shutdown, |row| {
            print_row(out, &row, opts.json)?;
            out.flush().map_err(AuditError::Output)
        })
        .await
        .map(|_| ())
}

fn print_row(out: &mut (dyn Write + Send), row: &AuditRow, json: bool) -> Result<(), AuditError> {
    let mut line = if json {
        serde_json::to_string(row).map_err(|e| AuditError::Output(e.into()))?
    } else {
        let mut line = format!("#{} {} {}", row.seq, row.ts, row.seam);
        for part in [&row.component, &row.caller_session_id]
            .into_iter()
            .flatten()
        {
            line.push(' ');
            line.push_str(part);
        }
        line.push(' ');
        line.push_str(&row.details.to_string());
        line
    };
    line.push('\n');
    out.write_all(line.as_bytes()).map_err(AuditError::Output)
}

#[cfg(test)]
mod tests;
