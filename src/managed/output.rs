//! Output capture: the child's stdout and stderr, line by line, into
//! `<log_dir>/output.log` with a timestamp and a stream tag, rotated at
//! `log_max_bytes` keeping `log_files` old files (`output.log.1` is the newest).
//!
//! One writer task per actor owns the file (so rotation state survives child
//! restarts); each child gets two pump tasks that read its pipes and send lines
//! over a bounded channel. Memory is bounded: a line longer than
//! [`MAX_LINE`] is cut (the rest up to its newline is dropped and the line is
//! marked), and the channel holds at most [`CHANNEL_LINES`] lines, after which
//! the pumps wait and the child blocks on its pipe, as on a slow terminal.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

use crate::tasks::AbortOnDrop;

/// Longest line kept, in bytes.
pub const MAX_LINE: usize = 16 * 1024;

/// Lines in flight between the pumps and the writer.
const CHANNEL_LINES: usize = 1024;

/// Name of the live output file inside the log directory.
pub const OUTPUT_FILE: &str = "output.log";

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn tag(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// One captured line.
#[derive(Debug)]
pub(crate) struct Line {
    stream: Stream,
    text: Vec<u8>,
    truncated: bool,
    at: jiff::Timestamp,
}

/// Sends lines to the writer.
pub(crate) type OutputTx = mpsc::Sender<Line>;

/// The live file and its rotation.
struct Rotating {
    dir: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<File>,
    size: u64,
}

impl Rotating {
    fn open(dir: &Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        crate::files::create_private_dir_all(dir)?;
        let mut rotating = Self {
            dir: dir.to_owned(),
            max_bytes: max_bytes.max(1),
            keep,
            file: None,
            size: 0,
        };
        rotating.reopen()?;
        Ok(rotating)
    }

    fn path(&self, index: u32) -> PathBuf {
        if index == 0 {
            self.dir.join(OUTPUT_FILE)
        } else {
            self.dir.join(format!("{OUTPUT_FILE}.{index}"))
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        let file = crate::files::open_private_append(&self.path(0))?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    /// `output.log.N-1` → `output.log.N` … `output.log` → `output.log.1`;
    /// the oldest beyond `keep` is removed.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            std::fs::remove_file(self.path(0))?;
        } else {
            let _ = std::fs::remove_file(self.path(self.keep));
            for index in (1..self.keep).rev() {
                let from = self.path(index);
                if from.exists() {
                    std::fs::rename(&from, self.path(index + 1))?;
                }
            }
            std::fs::rename(self.path(0), self.path(1))?;
        }
        self.reopen()
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate()?;
        }
        if self.file.is_none() {
            self.reopen()?;
        }
        if let Some(file) = self.file.as_mut() {
            file.write_all(bytes)?;
            self.size = self.size.saturating_add(len);
        }
        Ok(())
    }
}

fn format_line(line: &Line, buf: &mut Vec<u8>) {
    buf.clear();
    let _ = write!(buf, "{:.3} {} ", line.at, line.stream.tag());
    let text = line.text.strip_suffix(b"\r").unwrap_or(&line.text);
    buf.extend_from_slice(text);
    if line.truncated {
        buf.extend_from_slice(b" [truncated]");
    }
    buf.push(b'\n');
}

/// Opens the log and starts its writer. The task ends when every sender is
/// gone; the returned guard aborts it when the actor's state drops.
pub(crate) fn spawn_writer(
    dir: &Path,
    max_bytes: u64,
    keep: u32,
    component: &str,
) -> io::Result<(OutputTx, AbortOnDrop)> {
    let mut file = Rotating::open(dir, max_bytes, keep)?;
    let (tx, mut rx) = mpsc::channel::<Line>(CHANNEL_LINES);
    let component = component.to_owned();
    let task = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(256);
        let mut failing = false;
        while let Some(line) = rx.recv().await {
            // Writes are small appends to a local file: done inline, no
            // blocking pool round trip per line.
            format_line(&line, &mut buf);
            match file.write(&buf) {
                Ok(()) => failing = false,
                Err(error) => {
                    if !failing {
                        tracing::warn!(component = %component, error = %error, "Cannot write the managed process's output; lines are dropped.");
                    }
                    failing = true;
                }
            }
        }
    });
    Ok((tx, AbortOnDrop::new(&task)))
}

/// Reads `pipe` line by line into `tx` until EOF (or the writer is gone).
pub(crate) async fn pump(pipe: impl AsyncRead + Unpin, stream: Stream, tx: OutputTx) {
    let mut reader = BufReader::with_capacity(8 * 1024, pipe);
    let mut text = Vec::new();
    let mut truncated = false;
    loop {
        let buf = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => buf,
        };
        let (chunk, consumed, complete) = match buf.iter().position(|byte| *byte == b'\n') {
            Some(at) => (buf.split_at(at).0, at + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = MAX_LINE.saturating_sub(text.len());
        if chunk.len() > room {
            truncated = true;
        }
        text.extend_from_slice(chunk.split_at(chunk.len().min(room)).0);
        reader.consume(consumed);
        if complete {
            let line = Line {
                stream,
                text: std::mem::take(&mut text),
                truncated,
                at: jiff::Timestamp::now(),
            };
            truncated = false;
            if tx.send(line).await.is_err() {
                return;
            }
        }
    }
    if !text.is_empty() {
        let _ = tx
            .send(Line {
                stream,
                text,
                truncated,
                at: jiff::Timestamp::now(),
            })
            .await;
    }
}
