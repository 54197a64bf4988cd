//! The physical floor of reading and hashing a journal: a raw SELECT of the
//! `events` rows and blake3 over the same canonical bytes Fabrik hashes,
//! with nothing else (no decoding, no fold, no projection check). The
//! benchmark script times `fabrik replay --verify` against this.
//!
//! ```text
//! cargo run --release --example journal_floor -- /tmp/big.db
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: journal_floor STATE_DB");
        return ExitCode::from(2);
    };
    let conn = match rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let start = Instant::now();
    let result = (|| -> rusqlite::Result<(u64, u8)> {
        let mut s = conn.prepare(
            "SELECT seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash FROM events ORDER BY seq",
        )?;
        let mut rows = s.query([])?;
        let mut buf = Vec::with_capacity(512);
        let mut n = 0u64;
        let mut acc = 0u8;
        while let Some(r) = rows.next()? {
            buf.clear();
            let _ = write!(
                buf,
                "fabrik-event-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
                r.get_ref(0)?.as_i64()?,
                r.get_ref(1)?.as_str()?,
                r.get_ref(2)?.as_i64()?,
                r.get_ref(3)?.as_str_or_null()?.unwrap_or(""),
                r.get_ref(4)?.as_str()?,
                r.get_ref(5)?.as_str()?,
                r.get_ref(6)?.as_i64()?
            );
            buf.extend_from_slice(r.get_ref(7)?.as_bytes()?);
            let mut h = blake3::Hasher::new();
            h.update(r.get_ref(8)?.as_blob()?);
            h.update(&buf);
            acc ^= h.finalize().as_bytes()[0];
            n += 1;
        }
        Ok((n, acc))
    })();
    match result {
        Ok((n, acc)) => {
            println!(
                "{n} events read and hashed in {:.3} s (checksum byte {acc})",
                start.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
