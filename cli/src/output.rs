//! What goes to stdout (records, reports) and the progress shown on stderr.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use llmvault::Record;
use serde::Serialize;

use crate::fail::Fail;
use crate::json::{JsonRecord, role_name};
use crate::time::show;

/// Stdout, buffered, in human or JSON form.
pub struct Out {
    pub json: bool,
    w: io::BufWriter<io::StdoutLock<'static>>,
}

impl Out {
    pub fn new(json: bool) -> Self {
        Self {
            json,
            w: io::BufWriter::new(io::stdout().lock()),
        }
    }

    /// One JSON value on its own line.
    pub fn json_line(&mut self, value: &impl Serialize) -> Result<(), Fail> {
        serde_json::to_writer(&mut self.w, value)
            .map_err(|e| Fail::other(format!("cannot write JSON: {e}")))?;
        self.line("")
    }

    /// A line of text.
    pub fn line(&mut self, text: &str) -> Result<(), Fail> {
        writeln!(self.w, "{text}").map_err(write_failed)
    }

    /// Text as it is, with no newline added (`pii mask` and `restore`
    /// print exactly what they were given, changed).
    pub fn text(&mut self, text: &str) -> Result<(), Fail> {
        self.w.write_all(text.as_bytes()).map_err(write_failed)
    }

    /// A report: `human` as text, or `value` as one JSON line.
    pub fn report(&mut self, human: &str, value: &impl Serialize) -> Result<(), Fail> {
        if self.json {
            self.json_line(value)
        } else {
            self.line(human)
        }
    }

    /// A record in full: a header, then the exchange.
    pub fn record(&mut self, r: &Record) -> Result<(), Fail> {
        if self.json {
            return self.json_line(&JsonRecord::from_record(r));
        }
        let w = &mut self.w;
        (|| {
            writeln!(
                w,
                "record {}  conversation {}  subject {}  model {}",
                r.id(),
                r.conversation(),
                r.subject().map_or("-", |s| s.as_str()),
                or_dash(r.model()),
            )?;
            writeln!(
                w,
                "  created {}  expires {}  training consent: {}",
                show(r.created_at()),
                show(r.expires_at()),
                if r.training_consent() { "yes" } else { "no" },
            )?;
            if !r.tags().is_empty() {
                writeln!(w, "  tags: {}", r.tags().join(", "))?;
            }
            for (k, v) in r.meta_entries() {
                writeln!(w, "  meta: {k} = {v}")?;
            }
            for m in r.prompt().iter().chain(r.response()) {
                writeln!(w, "  [{}] {}", role_name(m.role()), m.content())?;
            }
            writeln!(w)
        })()
        .map_err(write_failed)
    }

    /// A record on one line: id, time, conversation, subject, model, tags,
    /// and the start of the last prompt message.
    pub fn record_line(&mut self, r: &Record) -> Result<(), Fail> {
        if self.json {
            return self.json_line(&JsonRecord::from_record(r));
        }
        let preview = r.prompt().last().map(|m| preview(m.content(), 60));
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.id(),
            show(r.created_at()),
            r.conversation(),
            r.subject().map_or("-", |s| s.as_str()),
            or_dash(r.model()),
            if r.tags().is_empty() {
                "-".to_owned()
            } else {
                r.tags().join(",")
            },
            preview.as_deref().unwrap_or("-"),
        );
        self.line(&line)
    }

    pub fn flush(&mut self) -> Result<(), Fail> {
        self.w.flush().map_err(write_failed)
    }
}

/// A write to stdout failed. A closed pipe (`llmvault list | head`) is
/// not an error worth a message.
pub fn write_failed(e: io::Error) -> Fail {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Fail::quiet()
    } else {
        Fail::other(format!("cannot write output: {e}"))
    }
}

/// A spinner with a count on stderr when it is a terminal; else nothing.
pub fn progress(message: &'static str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_message(message);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {human_pos} {elapsed}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn preview(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}
