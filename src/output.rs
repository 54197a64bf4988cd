//! The one place that writes to the terminal.
//!
//! Data goes to standard output (tables for people, one JSON document or one
//! JSON object per line with `--output json`); diagnostics and progress go
//! to standard error. Colour is used only on a terminal and never when
//! `NO_COLOR` is set; every line reads correctly without it.
//!
//! Text printed for people may quote what came from outside (a provider's
//! answer, a value in the journal, written by any version of Fabrik):
//! every control, bidirectional and zero-width character in it is written
//! as a visible escape ([`crate::text`]), so nothing printed acts on the
//! terminal. Only the sequences Fabrik itself writes (its colour, the
//! line it redraws) are sent as they are.

use std::io::{self, IsTerminal as _, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::error::Error;
use crate::text::{printable_line, printable_lines};

/// What a status line redrawn in place starts with: back to the start of
/// the line, and clear it.
pub const REDRAW: &str = "\r\x1b[2K";

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Human,
    /// Newline-delimited JSON.
    Json,
}

/// Where a command's output goes. Clones share the same streams, so the
/// progress observer of a run and the command that reports its result write
/// in order.
#[derive(Clone)]
pub struct Output {
    format: OutputFormat,
    color: bool,
    stdout_color: bool,
    stderr_is_terminal: bool,
    streams: Arc<Mutex<Streams>>,
}

struct Streams {
    stdout: Box<dyn Write + Send>,
    stderr: Box<dyn Write + Send>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("format", &self.format)
            .field("color", &self.color)
            .finish_non_exhaustive()
    }
}

impl Output {
    /// Output to the process's standard streams.
    pub fn stdio(format: OutputFormat) -> Self {
        let stderr_is_terminal = io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            format,
            color: stderr_is_terminal && !no_color,
            stdout_color: io::stdout().is_terminal() && !no_color,
            stderr_is_terminal,
            streams: Arc::new(Mutex::new(Streams {
                stdout: Box::new(io::stdout()),
                stderr: Box::new(io::stderr()),
            })),
        }
    }

    fn streams(&self) -> MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Output to the given writers (tests).
    pub fn to_writers(
        format: OutputFormat,
        stdout: Box<dyn Write + Send>,
        stderr: Box<dyn Write + Send>,
    ) -> Self {
        Self {
            format,
            color: false,
            stdout_color: false,
            stderr_is_terminal: false,
            streams: Arc::new(Mutex::new(Streams { stdout, stderr })),
        }
    }

    /// Whether `--output json` was asked for.
    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Whether progress may redraw lines (a terminal on stderr).
    pub fn is_live(&self) -> bool {
        self.stderr_is_terminal && !self.is_json()
    }

    /// Whether colour may be used on stderr.
    pub fn color(&self) -> bool {
        self.color
    }

    /// Whether colour may be used on stdout (a terminal, `NO_COLOR`
    /// unset).
    pub fn stdout_color(&self) -> bool {
        self.stdout_color
    }

    /// One JSON value as one line on stdout, flushed.
    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let mut line = serde_json::to_vec(value).map_err(|e| Error::Io {
            action: "cannot encode output for",
            path: PathBuf::from("<stdout>"),
            source: io::Error::other(e),
        })?;
        line.push(b'\n');
        let mut s = self.streams();
        s.stdout.write_all(&line).map_err(stdout_err)?;
        s.stdout.flush().map_err(stdout_err)
    }

    /// A line of data on stdout (escaped, see the module documentation).
    pub fn line(&mut self, text: &str) -> Result<(), Error> {
        let text = printable_lines(text);
        let mut s = self.streams();
        s.stdout
            .write_all(text.as_bytes())
            .and_then(|()| s.stdout.write_all(b"\n"))
            .map_err(stdout_err)
    }

    /// Text on stdout as it is but for the escapes of the module
    /// documentation (tables, rendered views, generated scripts).
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let text = String::from_utf8_lossy(bytes);
        let text = printable_lines(&text);
        self.streams()
            .stdout
            .write_all(text.as_bytes())
            .map_err(stdout_err)
    }

    /// Runs `f` with the stdout writer, for streaming output.
    pub fn with_stdout<T>(&mut self, f: impl FnOnce(&mut dyn Write) -> T) -> T {
        let mut s = self.streams();
        f(&mut s.stdout)
    }

    /// A diagnostic line on stderr (escaped, see the module documentation).
    /// Failing to write a diagnostic is not an error worth stopping for.
    pub fn diag(&mut self, text: &str) {
        self.stderr_line(&printable_lines(text));
    }

    /// A line on stderr exactly as given: only for text Fabrik composed
    /// itself, escaped already.
    fn stderr_line(&mut self, text: &str) {
        let mut s = self.streams();
        let _ = s
            .stderr
            .write_all(text.as_bytes())
            .and_then(|()| s.stderr.write_all(b"\n"))
            .and_then(|()| s.stderr.flush());
    }

    /// Text on stderr without a newline, for a status line redrawn in
    /// place: [`REDRAW`] at its start is sent as it is (the one sequence
    /// progress writes itself), everything else is escaped, on one line.
    pub fn diag_raw(&mut self, text: &str) {
        let (own, rest) = match text.strip_prefix(REDRAW) {
            Some(rest) => (REDRAW, rest),
            None => ("", text),
        };
        let rest = printable_line(rest);
        let mut s = self.streams();
        let _ = s
            .stderr
            .write_all(own.as_bytes())
            .and_then(|()| s.stderr.write_all(rest.as_bytes()))
            .and_then(|()| s.stderr.flush());
    }

    /// Flushes stdout.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.streams().stdout.flush().map_err(stdout_err)
    }

    /// Renders an error on stderr (`error:`, `caused by:`, `hint:` lines), or
    /// as one JSON object on stdout with `--output json`.
    pub fn error(&mut self, err: &Error) {
        if self.is_json() {
            let mut v = serde_json::json!({
                "kind": "error",
                "error": err.one_line(),
                "exit_code": err.exit_code(),
                "hints": err.hints(),
            });
            if let Error::Spec(e) = err
                && let Some(o) = v.as_object_mut()
            {
                o.insert(
                    "diagnostics".to_owned(),
                    serde_json::to_value(e.diagnostics()).unwrap_or_default(),
                );
            }
            let _ = self.json(&v);
        }
        // Rendered escaped; the colour is Fabrik's own.
        let text = printable_lines(&err.render()).into_owned();
        if self.color {
            let text = text.replacen("error:", "\x1b[1;31merror:\x1b[0m", 1);
            self.stderr_line(&text);
        } else {
            self.stderr_line(&text);
        }
    }
}

fn stdout_err(source: io::Error) -> Error {
    Error::Io {
        action: "cannot write to",
        path: PathBuf::from("<stdout>"),
        source,
    }
}

/// Formats rows as aligned columns (two spaces apart), for human tables.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let render = |cells: Vec<&str>, out: &mut String| {
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(c);
            } else {
                let pad = widths.get(i).copied().unwrap_or(0);
                line.push_str(&format!("{c:<pad$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    render(header.to_vec(), &mut out);
    for row in rows {
        render(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}
