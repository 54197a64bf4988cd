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

/// When to colour (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set (to any value).
    #[default]
    Auto,
    /// Always, even when piped (and with `NO_COLOR` set).
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether a stream that is (or is not) a terminal gets colour, with
    /// `NO_COLOR` set or not.
    pub fn decide(self, terminal: bool, no_color: bool) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => terminal && !no_color,
        }
    }
}

/// What a piece of text means, shown as a colour on a terminal (and as
/// nothing else: every line reads the same without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Something made (`+` in a plan): green.
    Create,
    /// Something changed (`~`): yellow.
    Update,
    /// Something deleted (`-`): bold red.
    Delete,
    /// Drift between the journal and the remote side (`!`): magenta.
    Drift,
    /// Nothing to do: dim.
    Quiet,
    /// A good end (COMPLETE, succeeded): green.
    Good,
    /// A bad end (FAILED, failed): bold red.
    Bad,
    /// Needs a look (ROLLING_BACK, ROLLED_BACK, interrupted): yellow.
    Warn,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Self::Create | Self::Good => "32",
            Self::Update | Self::Warn => "33",
            Self::Delete | Self::Bad => "1;31",
            Self::Drift => "35",
            Self::Quiet => "2",
        }
    }

    /// The style of a run state or outcome word (`COMPLETE`, `failed`...),
    /// if it has one.
    pub fn of_state(word: &str) -> Option<Self> {
        match word {
            "COMPLETE" | "succeeded" | "no_changes" | "DESTROYED" | "destroyed" => Some(Self::Good),
            "FAILED" | "failed" | "needs_attention" => Some(Self::Bad),
            "ROLLING_BACK" | "ROLLED_BACK" | "rolled_back" | "interrupted" | "unfinished" => {
                Some(Self::Warn)
            }
            _ => None,
        }
    }
}

/// Text in pieces, some with a [`Style`]: how Fabrik composes what it
/// colours, so that only its own colour codes reach the terminal (each
/// piece is escaped as any other text when written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Styled {
    parts: Vec<(Option<Style>, String)>,
}

impl Styled {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends plain text.
    pub fn push(&mut self, text: impl Into<String>) -> &mut Self {
        self.parts.push((None, text.into()));
        self
    }

    /// Appends text in `style` (plain when `None`).
    pub fn push_styled(&mut self, style: Option<Style>, text: impl Into<String>) -> &mut Self {
        self.parts.push((style, text.into()));
        self
    }

    /// The text without colour.
    pub fn plain(&self) -> String {
        self.parts.iter().map(|(_, t)| t.as_str()).collect()
    }

    /// The text escaped (line breaks kept), with colour codes around the
    /// styled pieces when `color`.
    fn render(&self, color: bool) -> String {
        let mut out = String::new();
        for (style, text) in &self.parts {
            let text = printable_lines(text);
            match style {
                Some(s) if color && !text.is_empty() => {
                    out.push_str(&format!("\x1b[{}m{text}\x1b[0m", s.code()));
                }
                _ => out.push_str(&text),
            }
        }
        out
    }
}

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
    /// Output to the process's standard streams, coloured as `color` says
    /// (`NO_COLOR`, set to any value, turns `auto` off).
    pub fn stdio(format: OutputFormat, color: ColorChoice) -> Self {
        let stderr_is_terminal = io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some();
        Self {
            format,
            color: color.decide(stderr_is_terminal, no_color),
            stdout_color: color.decide(io::stdout().is_terminal(), no_color),
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

    /// Styled text on stdout, coloured when stdout may be.
    pub fn styled(&mut self, text: &Styled) -> Result<(), Error> {
        let text = text.render(self.stdout_color);
        self.streams()
            .stdout
            .write_all(text.as_bytes())
            .map_err(stdout_err)
    }

    /// Styled text on stderr (as it is, line breaks kept, no newline
    /// added), coloured when stderr may be.
    pub fn diag_styled(&mut self, text: &Styled) {
        let text = text.render(self.color);
        let mut s = self.streams();
        let _ = s
            .stderr
            .write_all(text.as_bytes())
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
    styled_table(header, rows, |_, _| None).plain()
}

/// [`table`] with the cells `style(column, text)` names in a style (the
/// padding stays plain, so columns align with colour too).
pub fn styled_table(
    header: &[&str],
    rows: &[Vec<String>],
    style: impl Fn(usize, &str) -> Option<Style>,
) -> Styled {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = Styled::new();
    let mut render = |cells: Vec<&str>, styled: bool| {
        // The last cell is not padded, and no line ends in spaces.
        let last = cells.iter().rposition(|c| !c.is_empty()).unwrap_or(0);
        for (i, c) in cells.iter().enumerate().take(last + 1) {
            out.push_styled(if styled { style(i, c) } else { None }, *c);
            if i < last {
                let pad = widths.get(i).copied().unwrap_or(0)
                    - c.chars().count().min(widths.get(i).copied().unwrap_or(0));
                out.push(" ".repeat(pad + 2));
            }
        }
        out.push("\n");
    };
    render(header.to_vec(), false);
    for row in rows {
        render(row.iter().map(String::as_str).collect(), true);
    }
    out
}
