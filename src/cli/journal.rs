//! `fabrik journal export`.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::{Cli, ExportFormat, deployment_arg, open_existing};
use crate::error::Error;
use crate::event::format_timestamp;
use crate::export::{self, ExportError, ExportHeader};
use crate::id::RunId;
use crate::output::Output;
use crate::store::Scan;

/// Writes the journal (or a filtered part) with its hash chain. With
/// `--output json`, standard output holds one JSON document per line: the
/// events as NDJSON, or, for an export to a file, what was written.
pub fn export(
    cli: &Cli,
    deployment: Option<&str>,
    run: Option<&str>,
    format: Option<ExportFormat>,
    file: Option<&Path>,
    out: &mut Output,
) -> Result<i32, Error> {
    if out.is_json() && file.is_none() && format == Some(ExportFormat::Json) {
        return Err(Error::Usage {
            message: "--format json writes one document over many lines, but --output json prints one JSON document per line".to_owned(),
            hint: Some("leave out --format (with --output json the export is NDJSON), or write the document to a file with -o FILE".to_owned()),
        });
    }
    let format = format.unwrap_or(if out.is_json() {
        ExportFormat::Ndjson
    } else {
        ExportFormat::Json
    });
    let deployment = deployment.map(deployment_arg).transpose()?;
    let store = open_existing(cli)?;
    // An export of nothing that exists is a mistake to say, not an empty
    // file to hand on.
    if let Some(d) = &deployment
        && store.deployment(d)?.is_none()
    {
        return Err(super::common::engine(
            crate::engine::LookupError::NoDeployment(d.clone()).into(),
        ));
    }
    // A run by its id or the unique start of it (as tables show it).
    let run = match run {
        Some(text) => Some(
            crate::engine::command::run_by_id(store.as_ref(), text, deployment.as_ref())
                .map_err(super::common::engine)?
                .map(|r| r.run)
                .ok_or_else(|| match text.parse::<RunId>() {
                    Ok(id) => crate::engine::LookupError::NoRun(id),
                    Err(_) => crate::engine::LookupError::NoRunPrefix(text.to_owned()),
                })
                .map_err(|e| super::common::engine(e.into()))?,
        ),
        None => None,
    };
    let scan = Scan {
        deployment,
        run,
        until_seq: None,
    };
    let header = ExportHeader {
        format: export::FORMAT.to_owned(),
        format_version: export::FORMAT_VERSION,
        fabrik_version: env!("CARGO_PKG_VERSION").to_owned(),
        exported_at: format_timestamp(jiff::Timestamp::now()),
        deployment: scan.deployment.as_ref().map(|d| d.to_string()),
        run: scan.run.as_ref().map(|r| r.to_string()),
        complete: scan.deployment.is_none() && scan.run.is_none(),
    };
    let write = |w: &mut dyn Write| match format {
        ExportFormat::Json => export::write_json(store.as_ref(), &scan, &header, w),
        ExportFormat::Ndjson => export::write_ndjson(store.as_ref(), &scan, &header, w),
    };
    let result = match file {
        Some(path) => {
            let tmp = path.with_extension("partial");
            let f = create_private(&tmp).map_err(|source| Error::Io {
                action: "cannot write",
                path: tmp.clone(),
                source,
            })?;
            let mut w = BufWriter::new(f);
            let r = write(&mut w);
            let r = r.and_then(|t| {
                w.into_inner()
                    .map_err(|e| ExportError::Write(e.into_error()))
                    .and_then(|f| f.sync_all().map_err(ExportError::Write))
                    .map(|()| t)
            });
            match r {
                Ok(t) => {
                    fs::rename(&tmp, path).map_err(|source| Error::Io {
                        action: "cannot write",
                        path: path.to_owned(),
                        source,
                    })?;
                    if out.is_json() {
                        out.json(&serde_json::json!({
                            "kind": "export",
                            "path": path,
                            "events": t.count,
                            "last_hash": t.last_hash,
                        }))?;
                    } else {
                        out.diag(&format!(
                            "exported {} to {}",
                            crate::text::count(t.count, "event"),
                            path.display()
                        ));
                    }
                    Ok(t)
                }
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    Err(e)
                }
            }
        }
        None => out.with_stdout(|stdout| {
            let mut w = BufWriter::new(stdout);
            let r = write(&mut w);
            let _ = w.flush();
            r
        }),
    };
    result.map(|_| 0).map_err(|e| match e {
        ExportError::Store(s) => Error::Store(s),
        // Its reader had enough (`| head`): kept as is, for a quiet end.
        ExportError::Write(source) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            Error::Io {
                action: "cannot export to",
                path: "<stdout>".into(),
                source,
            }
        }
        other => Error::Io {
            action: "cannot export to",
            path: file.map_or_else(|| "<stdout>".into(), Path::to_path_buf),
            source: std::io::Error::other(crate::error::chain_text(&other)),
        },
    })
}

/// Creates a file readable only by its owner: exports hold the whole history.
fn create_private(path: &Path) -> std::io::Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o.open(path)
}
