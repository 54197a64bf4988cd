//! The export format: the journal with its hash chain, as one JSON document
//! or as NDJSON, written and read as streams (memory does not grow with the
//! journal's size).
//!
//! The schema is `schema/journal-export.schema.json`; the canonical encoding
//! an auditor recomputes is described in [`crate::event`].

use std::io::{self, BufRead, Read as _, Write};
use std::ops::ControlFlow;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::event::canonical_json;
use crate::id::Digest;
use crate::store::{EventStore, Scan, StoreError, StoredEvent};

/// The `format` field of every export.
pub const FORMAT: &str = "fabrik-journal";
/// The export format's version.
pub const FORMAT_VERSION: u32 = 1;
/// Longest NDJSON line accepted when reading (a hostile file cannot make
/// the reader buffer more than this).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// What an export holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportHeader {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for this Fabrik.
    pub format_version: u32,
    /// The Fabrik that wrote it.
    pub fabrik_version: String,
    /// When it was written.
    pub exported_at: String,
    /// Only this deployment's events, if set.
    #[serde(default)]
    pub deployment: Option<String>,
    /// Only this run's events, if set.
    #[serde(default)]
    pub run: Option<String>,
    /// True when every event of the journal is included, so the chain can be
    /// checked link by link from the genesis hash.
    pub complete: bool,
}

/// What an export ended with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportTrailer {
    /// Number of events.
    pub count: u64,
    /// Hash of the last event.
    pub last_hash: Option<Digest>,
}

/// One event in an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportEvent {
    seq: u64,
    deployment: String,
    stream_version: u64,
    run: Option<String>,
    at: String,
    #[serde(rename = "type")]
    type_name: String,
    version: u32,
    payload: serde_json::Value,
    prev_hash: Digest,
    hash: Digest,
}

impl ExportEvent {
    fn into_stored(self) -> StoredEvent {
        StoredEvent {
            seq: self.seq,
            deployment: self.deployment,
            stream_version: self.stream_version,
            run: self.run,
            at: self.at,
            type_name: self.type_name,
            version: self.version,
            payload: canonical_json(&self.payload),
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// Errors reading or writing an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading from the store failed.
    #[error("reading the journal")]
    Store(#[from] StoreError),
    /// Writing failed.
    #[error("writing the export")]
    Write(#[source] io::Error),
    /// Reading failed.
    #[error("reading the export")]
    Read(#[source] io::Error),
    /// The file is not a Fabrik export.
    #[error("line {line}: {message}")]
    Invalid {
        /// 1-based line (0 when unknown).
        line: u64,
        /// What is wrong.
        message: String,
    },
}

fn write_event(w: &mut dyn Write, e: &StoredEvent) -> io::Result<()> {
    let s = |v: &str| serde_json::Value::String(v.to_owned()).to_string();
    write!(
        w,
        "{{\"seq\":{},\"deployment\":{},\"stream_version\":{},\"run\":{},\"at\":{},\"type\":{},\"version\":{},\"payload\":{},\"prev_hash\":\"{}\",\"hash\":\"{}\"}}",
        e.seq,
        s(&e.deployment),
        e.stream_version,
        e.run.as_deref().map_or_else(|| "null".to_owned(), s),
        s(&e.at),
        s(&e.type_name),
        e.version,
        e.payload,
        e.prev_hash,
        e.hash
    )
}

/// Writes the events `scan` selects as NDJSON: a header line, one line per
/// event, a trailer line.
pub fn write_ndjson(
    store: &dyn EventStore,
    scan: &Scan,
    header: &ExportHeader,
    w: &mut dyn Write,
) -> Result<ExportTrailer, ExportError> {
    serde_json::to_writer(&mut *w, header).map_err(|e| ExportError::Write(io::Error::other(e)))?;
    w.write_all(b"\n").map_err(ExportError::Write)?;
    let mut count = 0;
    let mut last = None;
    let mut failed = None;
    store.scan(scan, &mut |e| {
        let r = write_event(w, &e).and_then(|()| w.write_all(b"\n"));
        if let Err(err) = r {
            failed = Some(err);
            return ControlFlow::Break(());
        }
        count += 1;
        last = Some(e.hash);
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failed {
        return Err(ExportError::Write(e));
    }
    let trailer = ExportTrailer {
        count,
        last_hash: last,
    };
    serde_json::to_writer(&mut *w, &serde_json::json!({ "end": &trailer }))
        .map_err(|e| ExportError::Write(io::Error::other(e)))?;
    w.write_all(b"\n").map_err(ExportError::Write)?;
    w.flush().map_err(ExportError::Write)?;
    Ok(trailer)
}

/// Writes the events `scan` selects as one JSON document:
/// `{header fields…, "events": [...], "count": N, "last_hash": "…"}`.
pub fn write_json(
    store: &dyn EventStore,
    scan: &Scan,
    header: &ExportHeader,
    w: &mut dyn Write,
) -> Result<ExportTrailer, ExportError> {
    let head =
        serde_json::to_string(header).map_err(|e| ExportError::Write(io::Error::other(e)))?;
    // `head` is `{...}`: reopen it to append the events.
    let head = head.strip_suffix('}').unwrap_or(&head);
    write!(w, "{head},\"events\":[").map_err(ExportError::Write)?;
    let mut count = 0u64;
    let mut last = None;
    let mut failed = None;
    store.scan(scan, &mut |e| {
        let sep: &[u8] = if count == 0 { b"\n" } else { b",\n" };
        let r = w.write_all(sep).and_then(|()| write_event(w, &e));
        if let Err(err) = r {
            failed = Some(err);
            return ControlFlow::Break(());
        }
        count += 1;
        last = Some(e.hash);
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failed {
        return Err(ExportError::Write(e));
    }
    let last_text = last.map_or_else(|| "null".to_owned(), |h| format!("\"{h}\""));
    write!(w, "\n],\"count\":{count},\"last_hash\":{last_text}}}\n").map_err(ExportError::Write)?;
    w.flush().map_err(ExportError::Write)?;
    Ok(ExportTrailer {
        count,
        last_hash: last,
    })
}

/// Reads an export (either format, detected from its first line), calling
/// `visit` for each event in file order. Returns the header and trailer.
pub fn read(
    mut r: impl BufRead,
    visit: &mut dyn FnMut(StoredEvent) -> Result<(), ExportError>,
) -> Result<(ExportHeader, ExportTrailer), ExportError> {
    let first = read_line(&mut r, 1)?.ok_or_else(|| ExportError::Invalid {
        line: 1,
        message: "empty file: not a fabrik journal export".to_owned(),
    })?;
    // NDJSON: the first line is a complete header object.
    if let Ok(header) = serde_json::from_str::<ExportHeader>(&first) {
        check_header(&header, 1)?;
        return read_ndjson(r, header, visit);
    }
    // Otherwise: one JSON document, streamed.
    let chained = io::Cursor::new(first.into_bytes()).chain(r);
    read_document(chained, visit)
}

fn check_header(h: &ExportHeader, line: u64) -> Result<(), ExportError> {
    if h.format != FORMAT {
        return Err(ExportError::Invalid {
            line,
            message: format!("format is {:?}, expected {FORMAT:?}", h.format),
        });
    }
    if h.format_version != FORMAT_VERSION {
        return Err(ExportError::Invalid {
            line,
            message: format!(
                "format version {} is not supported (this fabrik reads version {FORMAT_VERSION})",
                h.format_version
            ),
        });
    }
    Ok(())
}

fn read_line(r: &mut impl BufRead, line: u64) -> Result<Option<String>, ExportError> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .map_err(ExportError::Read)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE {
        return Err(ExportError::Invalid {
            line,
            message: format!("line longer than {MAX_LINE} bytes"),
        });
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| ExportError::Invalid {
            line,
            message: "not valid UTF-8".to_owned(),
        })
}

fn read_ndjson(
    mut r: impl BufRead,
    header: ExportHeader,
    visit: &mut dyn FnMut(StoredEvent) -> Result<(), ExportError>,
) -> Result<(ExportHeader, ExportTrailer), ExportError> {
    #[derive(Deserialize)]
    struct End {
        end: ExportTrailer,
    }
    let mut line_no = 1u64;
    let mut count = 0u64;
    loop {
        line_no += 1;
        let Some(line) = read_line(&mut r, line_no)? else {
            return Err(ExportError::Invalid {
                line: line_no,
                message: "the export ends without its trailer line (truncated?)".to_owned(),
            });
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with("{\"end\"") {
            let end: End = serde_json::from_str(trimmed).map_err(|e| ExportError::Invalid {
                line: line_no,
                message: format!("bad trailer: {e}"),
            })?;
            if end.end.count != count {
                return Err(ExportError::Invalid {
                    line: line_no,
                    message: format!(
                        "trailer counts {} but the file holds {count}",
                        crate::text::count(end.end.count, "event")
                    ),
                });
            }
            return Ok((header, end.end));
        }
        let e: ExportEvent = serde_json::from_str(trimmed).map_err(|e| ExportError::Invalid {
            line: line_no,
            message: format!("bad event: {e}"),
        })?;
        count += 1;
        visit(e.into_stored())?;
    }
}

fn read_document(
    r: impl io::Read,
    visit: &mut dyn FnMut(StoredEvent) -> Result<(), ExportError>,
) -> Result<(ExportHeader, ExportTrailer), ExportError> {
    let mut de = serde_json::Deserializer::from_reader(r);
    let mut failure = None;
    let seed = DocumentSeed {
        visit,
        failure: &mut failure,
    };
    let result = seed.deserialize(&mut de);
    if let Some(f) = failure {
        return Err(f);
    }
    let (header, trailer) = result.map_err(|e| ExportError::Invalid {
        line: e.line() as u64,
        message: e.to_string(),
    })?;
    de.end().map_err(|e| ExportError::Invalid {
        line: e.line() as u64,
        message: format!("trailing data after the document: {e}"),
    })?;
    check_header(&header, 1)?;
    Ok((header, trailer))
}

struct DocumentSeed<'a> {
    visit: &'a mut dyn FnMut(StoredEvent) -> Result<(), ExportError>,
    failure: &'a mut Option<ExportError>,
}

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_> {
    type Value = (ExportHeader, ExportTrailer);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_> {
    type Value = (ExportHeader, ExportTrailer);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a fabrik journal export document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = serde_json::Map::new();
        let mut count_seen = 0u64;
        let mut events_seen = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "events" {
                if events_seen {
                    return Err(de::Error::duplicate_field("events"));
                }
                events_seen = true;
                count_seen = map.next_value_seed(EventsSeed {
                    visit: &mut *self.visit,
                    failure: &mut *self.failure,
                })?;
            } else {
                let v: serde_json::Value = map.next_value()?;
                if fields.insert(key.clone(), v).is_some() {
                    return Err(de::Error::custom(format!("duplicate field `{key}`")));
                }
            }
        }
        if !events_seen {
            return Err(de::Error::missing_field("events"));
        }
        let count = fields.remove("count");
        let last_hash = fields.remove("last_hash");
        let header: ExportHeader =
            serde_json::from_value(serde_json::Value::Object(fields)).map_err(de::Error::custom)?;
        let trailer = ExportTrailer {
            count: count
                .and_then(|c| c.as_u64())
                .ok_or_else(|| de::Error::missing_field("count"))?,
            last_hash: match last_hash {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(serde_json::from_value(v).map_err(de::Error::custom)?),
            },
        };
        if trailer.count != count_seen {
            return Err(de::Error::custom(format!(
                "`count` says {} but the document holds {count_seen}",
                crate::text::count(trailer.count, "event")
            )));
        }
        Ok((header, trailer))
    }
}

struct EventsSeed<'a> {
    visit: &'a mut dyn FnMut(StoredEvent) -> Result<(), ExportError>,
    failure: &'a mut Option<ExportError>,
}

impl<'de> DeserializeSeed<'de> for EventsSeed<'_> {
    type Value = u64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EventsSeed<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = 0;
        while let Some(e) = seq.next_element::<ExportEvent>()? {
            n += 1;
            if let Err(err) = (self.visit)(e.into_stored()) {
                *self.failure = Some(err);
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(n)
    }
}
