//! [`AuditReader`]: iterate rows from a seq across files, filtered by seam, and
//! follow the log as it grows. Works on the files alone (no writer needed), so
//! `warden audit tail` can run in another process.

use std::fs::File;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::file::{file_name, list_files, scan_file};
use super::{AuditError, AuditRow, RowRef, seam_matches};

/// A reader over the log directory.
#[derive(Debug, Clone)]
pub struct AuditReader {
    dir: PathBuf,
}

impl AuditReader {
    /// A reader over `dir`, which must exist.
    pub fn open(dir: &Path) -> Result<Self, AuditError> {
        std::fs::read_dir(dir).map_err(|e| AuditError::io(dir, e))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// Rows with `seq >= since_seq` whose seam passes `seam` (exact, or a
    /// prefix ending in `*`), in order. Corrupt lines come out as errors and
    /// iteration goes on; a torn last line is not visible yet.
    pub fn rows_from(&self, since_seq: u64, seam: Option<&str>) -> RowIter {
        match list_files(&self.dir) {
            Ok(files) => RowIter::new(files, since_seq, seam).in_dir(&self.dir),
            Err(error) => RowIter::failed(error),
        }
    }

    /// Like [`rows_from`](Self::rows_from), but continues from where an
    /// earlier iterator stopped ([`RowIter::position`]) instead of scanning
    /// the file from its start: a long-lived consumer reads each line once.
    pub fn rows_resume(
        &self,
        since_seq: u64,
        seam: Option<&str>,
        at: Option<ReadPosition>,
    ) -> RowIter {
        match list_files(&self.dir) {
            Ok(files) => RowIter::resume(files, since_seq, seam, at.map(|p| (p.path, p.offset)))
                .in_dir(&self.dir),
            Err(error) => RowIter::failed(error),
        }
    }

    /// The seq of the last complete row, if any. Reads the newest file
    /// from its end (shutdown and a fresh cursor ask for it; the file may
    /// be tens of megabytes).
    pub fn last_seq(&self) -> Result<Option<u64>, AuditError> {
        for (_, path) in list_files(&self.dir)?.iter().rev() {
            if let Some(seq) = last_seq_in(path)? {
                return Ok(Some(seq));
            }
        }
        Ok(None)
    }

    /// Calls `on_row` for every row from `since_seq` on (filtered as in
    /// [`rows_from`](Self::rows_from)), then keeps polling every `poll` for
    /// new rows until `shutdown` resolves or `on_row` fails. Corrupt rows are
    /// logged and skipped. Returns the next seq it would have read.
    pub async fn follow<F>(
        &self,
        since_seq: u64,
        seam: Option<&str>,
        poll: Duration,
        shutdown: impl Future<Output = ()>,
        mut on_row: F,
    ) -> Result<u64, AuditError>
    where
        F: FnMut(AuditRow) -> Result<(), AuditError>,
    {
        tokio::pin!(shutdown);
        let mut next_seq = since_seq;
        // Resume where the previous poll stopped instead of rescanning files.
        let mut resume: Option<(PathBuf, u64)> = None;
        loop {
            let mut iter = match list_files(&self.dir) {
                Ok(files) => RowIter::resume(files, next_seq, seam, resume.take()),
                Err(error) => RowIter::failed(error),
            };
            for item in iter.by_ref() {
                match item {
                    Ok(row) => {
                        next_seq = row.seq + 1;
                        on_row(row)?;
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "Skipped a corrupt audit row.");
                    }
                }
            }
            resume = iter.position_raw();
            tokio::select! {
                () = &mut shutdown => return Ok(next_seq),
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// How much of a file's end [`last_seq_in`] reads before it reads the
/// whole file instead.
const TAIL_WINDOW: u64 = 256 * 1024;

/// The seq of the last complete row of `path` that parses, as a scan of
/// the whole file ([`scan_file`]) would find it, from the file's end: the
/// last [`TAIL_WINDOW`] bytes, and the whole file only when no row there
/// parses.
fn last_seq_in(path: &Path) -> Result<Option<u64>, AuditError> {
    let mut file = File::open(path).map_err(|e| AuditError::io(path, e))?;
    let len = file.metadata().map_err(|e| AuditError::io(path, e))?.len();
    let start = len.saturating_sub(TAIL_WINDOW);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut tail))
        .map_err(|e| AuditError::io(path, e))?;
    // Complete lines only; the first one may start before the window.
    let end = tail
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |at| at + 1);
    let mut lines: Vec<&[u8]> = tail[..end].split_inclusive(|b| *b == b'\n').collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    for line in lines.iter().rev() {
        if let Ok(row) = serde_json::from_slice::<AuditRow>(&line[..line.len() - 1]) {
            return Ok(Some(row.seq));
        }
    }
    if start == 0 {
        return Ok(None);
    }
    Ok(scan_file(path)?.last_seq)
}

/// How often an iterator kept at the end of the log lists the directory
/// again (see [`RowIter::found_next_file`]).
const RELIST_EVERY: Duration = Duration::from_secs(1);

/// A place in the log files, opaque to callers; see [`RowIter::position`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPosition {
    path: PathBuf,
    offset: u64,
}

/// Iterator over rows across files; see [`AuditReader::rows_from`].
#[derive(Debug)]
pub struct RowIter {
    files: Vec<(u64, PathBuf)>,
    index: usize,
    reader: Option<BufReader<File>>,
    /// Offset in `files[index]` just past the last complete line consumed.
    offset: u64,
    since: u64,
    seam: Option<String>,
    error: Option<AuditError>,
    line: Vec<u8>,
    /// The seq of the last line parsed: the next file, once the newest one
    /// is rotated, is named after the seq that follows it.
    last_seq: Option<u64>,
    /// When `files` was last listed from the directory.
    listed_at: Instant,
    /// The log directory, to list again when it had no file yet.
    dir: Option<PathBuf>,
}

impl RowIter {
    fn new(files: Vec<(u64, PathBuf)>, since: u64, seam: Option<&str>) -> Self {
        // Skip files that end before `since`: the next file starts at or below it.
        let index = files
            .iter()
            .rposition(|(first, _)| *first <= since)
            .unwrap_or(0);
        Self {
            files,
            index,
            reader: None,
            offset: 0,
            since,
            seam: seam.map(str::to_owned),
            error: None,
            line: Vec::new(),
            last_seq: None,
            listed_at: Instant::now(),
            dir: None,
        }
    }

    fn in_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_owned());
        self
    }

    fn resume(
        files: Vec<(u64, PathBuf)>,
        since: u64,
        seam: Option<&str>,
        at: Option<(PathBuf, u64)>,
    ) -> Self {
        let mut iter = Self::new(files, since, seam);
        if let Some((path, offset)) = at
            && let Some(index) = iter.files.iter().position(|(_, p)| *p == path)
        {
            iter.index = index;
            iter.offset = offset;
        }
        iter
    }

    fn failed(error: AuditError) -> Self {
        let mut iter = Self::new(Vec::new(), 0, None);
        iter.error = Some(error);
        iter
    }

    /// The file and offset to resume from.
    fn position_raw(&self) -> Option<(PathBuf, u64)> {
        self.files
            .get(self.index)
            .map(|(_, path)| (path.clone(), self.offset))
    }

    /// Where this iterator stopped, for [`AuditReader::rows_resume`]: just
    /// past the last line it consumed (rows filtered out count as consumed).
    pub fn position(&self) -> Option<ReadPosition> {
        self.position_raw()
            .map(|(path, offset)| ReadPosition { path, offset })
    }

    /// The next complete line, moving to the next file at the end of one.
    ///
    /// At the end of the newest file the open file is kept, so an iterator
    /// that is kept and asked again later (a consumer following the log)
    /// reads on from there without listing the directory, opening and
    /// seeking once per pass.
    fn next_line(&mut self) -> Option<Result<(PathBuf, u64), AuditError>> {
        if self.files.is_empty() && self.error.is_none() {
            // Made before the log had a file: kept by a consumer, it must
            // see the first one once the writer makes it.
            self.list_empty_dir();
        }
        loop {
            let (_, path) = self.files.get(self.index)?;
            let path = path.clone();
            if self.reader.is_none() {
                let opened = File::open(&path).and_then(|mut f| {
                    f.seek(SeekFrom::Start(self.offset))?;
                    Ok(f)
                });
                match opened {
                    Ok(f) => self.reader = Some(BufReader::new(f)),
                    Err(e) => {
                        self.index = self.files.len();
                        return Some(Err(AuditError::io(path, e)));
                    }
                }
            }
            let reader = self.reader.as_mut()?;
            self.line.clear();
            let n = match reader.read_until(b'\n', &mut self.line) {
                Ok(n) => n,
                Err(e) => {
                    self.index = self.files.len();
                    return Some(Err(AuditError::io(path, e)));
                }
            };
            if n > 0 && self.line.last() == Some(&b'\n') {
                let start = self.offset;
                self.offset += n as u64;
                return Some(Ok((path, start)));
            }
            if self.index + 1 >= self.files.len() {
                // End of file, or a torn line still being written (or
                // written by a failed attempt the writer will truncate and
                // write again): go back to the start of the fragment, which
                // is not consumed. Only the newest file can grow, so stay
                // on it, unless it was rotated meanwhile.
                if n > 0 && reader.seek(SeekFrom::Start(self.offset)).is_err() {
                    self.reader = None;
                }
                if !self.found_next_file(&path) {
                    return None;
                }
            }
            self.index += 1;
            self.offset = 0;
            self.reader = None;
        }
    }

    /// Whether a file after `current` (the last one listed) exists now; if
    /// so it is added to `files`. The writer names a rotated file after the
    /// seq of its first row, so the one to look for follows the last seq
    /// read; the directory is listed again at most once a second, in case a
    /// file is ever named otherwise (or no row was read yet).
    fn list_empty_dir(&mut self) {
        let Some(dir) = &self.dir else {
            return;
        };
        if self.listed_at.elapsed() < RELIST_EVERY {
            return;
        }
        self.listed_at = Instant::now();
        if let Ok(files) = list_files(dir) {
            self.files = files;
            self.index = 0;
            self.offset = 0;
        }
    }

    fn found_next_file(&mut self, current: &Path) -> bool {
        let Some(dir) = current.parent() else {
            return false;
        };
        let current_first = self.files.get(self.index).map_or(0, |(first, _)| *first);
        if let Some(seq) = self.last_seq.and_then(|seq| seq.checked_add(1))
            // Files only ever follow in seq order: a row out of order in a
            // damaged file must not send the reader back to a file it read.
            && seq > current_first
        {
            let next = dir.join(file_name(seq));
            if next != current && next.is_file() {
                self.files.push((seq, next));
                return true;
            }
        }
        if self.listed_at.elapsed() < RELIST_EVERY {
            return false;
        }
        self.listed_at = Instant::now();
        let Ok(files) = list_files(dir) else {
            return false;
        };
        let Some(at) = files.iter().position(|(_, p)| p == current) else {
            return false;
        };
        if at + 1 >= files.len() {
            return false;
        }
        self.files = files;
        self.index = at;
        true
    }
}

/// A row read into a [`RowRef`], its line, and where the line was.
type RefLine<'a> = (RowRef<'a>, &'a [u8], LineAt);

/// Where a line was read, for [`AuditError::CorruptRow`].
struct LineAt {
    path: PathBuf,
    offset: u64,
}

impl LineAt {
    fn corrupt(self, reason: String) -> AuditError {
        AuditError::CorruptRow {
            path: self.path,
            offset: self.offset,
            reason,
        }
    }
}

impl RowIter {
    /// For the cursor consumers, which read every row of the log but act on
    /// a few seams: each line is read once into a [`RowRef`] (strings borrowed, details left encoded), and
    /// only a row whose seam passes `wanted` is handed to `pick`, which
    /// decodes what it needs straight from the line. The wake consumer, the
    /// incident commander and the escalation intake read the log this way.
    pub fn next_head<T>(
        &mut self,
        wanted: impl Fn(&str) -> bool,
        pick: impl FnOnce(&RowRef<'_>) -> Option<T>,
    ) -> Option<Result<(u64, Option<T>), AuditError>> {
        let (row, body, at) = loop {
            match self.next_ref()? {
                Ok(Some(found)) => break found,
                Ok(None) => {}
                Err(error) => return Some(Err(error)),
            }
        };
        if !wanted(&row.seam) {
            return Some(Ok((row.seq, None)));
        }
        // Reading the details as raw JSON checks their syntax, not what
        // the ordinary parse also refuses (a number out of range, a lone
        // surrogate, nesting past its limit): a row acted on must be one
        // every other reader sees too.
        if let Err(error) = serde_json::from_slice::<StrictDetails>(body) {
            return Some(Err(at.corrupt(error.to_string())));
        }
        Some(Ok((row.seq, pick(&row))))
    }

    /// The next row that passes the iterator's filter and `keep`, which sees
    /// the row borrowed from its line ([`RowRef`]): only a kept row is
    /// parsed whole. For a reader after a few rows in a long stretch of
    /// log, such as incident evidence picking one story's rows, which would
    /// otherwise build a details tree for every row it skips.
    pub fn next_where(
        &mut self,
        keep: impl Fn(&RowRef<'_>) -> bool,
    ) -> Option<Result<AuditRow, AuditError>> {
        loop {
            let (row, body, at) = match self.next_ref()? {
                Ok(Some(found)) => found,
                Ok(None) => continue,
                Err(error) => return Some(Err(error)),
            };
            if keep(&row) {
                return Some(
                    serde_json::from_slice::<AuditRow>(body).map_err(|e| at.corrupt(e.to_string())),
                );
            }
        }
    }

    /// The next line read once into a [`RowRef`], with the line and where
    /// it is (for errors); `Ok(None)` for a row outside the iterator's
    /// filter. One line per call: the callers loop, so no borrow of the
    /// line outlives the call that skips it.
    fn next_ref(&mut self) -> Option<Result<Option<RefLine<'_>>, AuditError>> {
        if let Some(error) = self.error.take() {
            return Some(Err(error));
        }
        let (path, offset) = match self.next_line()? {
            Ok(at) => at,
            Err(error) => return Some(Err(error)),
        };
        let at = LineAt { path, offset };
        // No UTF-8 check of the whole line first: the ordinary parse checks
        // only the fields it reads (and the raw details), and so do the
        // callers' parses.
        let body = &self.line[..self.line.len() - 1];
        let row = match serde_json::from_slice::<RowRef<'_>>(body) {
            Ok(row) => row,
            Err(error) => return Some(Err(at.corrupt(error.to_string()))),
        };
        self.last_seq = Some(row.seq);
        let in_filter = row.seq >= self.since
            && self
                .seam
                .as_deref()
                .is_none_or(|filter| seam_matches(filter, &row.seam));
        Some(Ok(in_filter.then_some((row, body, at))))
    }

    fn wanted(&mut self, row: &AuditRow) -> bool {
        self.last_seq = Some(row.seq);
        row.seq >= self.since
            && self
                .seam
                .as_deref()
                .is_none_or(|filter| seam_matches(filter, &row.seam))
    }
}

/// A row's details parsed as strictly as into a `serde_json::Value` (the
/// other fields are checked by the [`RowRef`] parse, unknown ones ignored
/// as by the ordinary parse): what [`RowIter::next_head`] checks a row it
/// hands on with.
#[derive(serde::Deserialize)]
struct StrictDetails {
    #[serde(rename = "details")]
    _details: Strict,
}

/// Any JSON, parsed strictly, kept nowhere.
struct Strict;

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Strict;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
                Ok(Strict)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
                Ok(Strict)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
                Ok(Strict)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
                Ok(Strict)
            }
            fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
                Ok(Strict)
            }
            fn visit_unit<E>(self) -> Result<Strict, E> {
                Ok(Strict)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Strict, A::Error> {
                while seq.next_element::<Strict>()?.is_some() {}
                Ok(Strict)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Strict, A::Error> {
                while map.next_key::<Strict>()?.is_some() {
                    map.next_value::<Strict>()?;
                }
                Ok(Strict)
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

impl Iterator for RowIter {
    type Item = Result<AuditRow, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.error.take() {
            return Some(Err(error));
        }
        loop {
            let (path, offset) = match self.next_line()? {
                Ok(at) => at,
                Err(error) => return Some(Err(error)),
            };
            let body = &self.line[..self.line.len() - 1];
            let row = match serde_json::from_slice::<AuditRow>(body) {
                Ok(row) => row,
                Err(e) => {
                    return Some(Err(AuditError::CorruptRow {
                        path,
                        offset,
                        reason: e.to_string(),
                    }));
                }
            };
            if !self.wanted(&row) {
                continue;
            }
            return Some(Ok(row));
        }
    }
}

#[cfg(test)]
mod tests;
