//! The spec's checks after a deployment (HTTP, TLS, DNS), each retried
//! until the verification timeout, each result journaled with its
//! evidence.

use std::time::Instant;

use crate::engine::{Ctx, EngineError, note, record, scrub};
use crate::event::{Event, VerificationFailed, VerificationPassed};

/// Journals a passed check.
fn passed(ctx: &Ctx<'_>, check: &str, evidence: serde_json::Value) -> Result<(), EngineError> {
    record(
        ctx.journal,
        Event::VerificationPassed(VerificationPassed {
            check: check.to_owned(),
            evidence,
        }),
    )?;
    Ok(())
}

/// Journals a failed check and returns the error that fails the run.
fn failed(
    ctx: &Ctx<'_>,
    check: &str,
    evidence: serde_json::Value,
    error: String,
) -> Result<EngineError, EngineError> {
    record(
        ctx.journal,
        Event::VerificationFailed(VerificationFailed {
            check: check.to_owned(),
            evidence,
            error: error.clone(),
        }),
    )?;
    Ok(EngineError::Verification(error))
}

fn evidence<T: serde::Serialize>(ev: &T) -> serde_json::Value {
    serde_json::to_value(ev).unwrap_or_default()
}

/// Runs the spec's checks, retrying each until the verification timeout.
pub async fn verify(ctx: &Ctx<'_>, spec: &crate::spec::Spec) -> Result<(), EngineError> {
    let v = &spec.verify;
    let deadline = Instant::now() + v.timeout.get();
    let interval = ctx.remote.pace.verify_interval;
    let max_attempts =
        (v.timeout.get().as_millis() / interval.as_millis().max(1)).max(1) as u64 + 1;
    let probe = &ctx.remote.providers.probe;
    for c in &v.http {
        let name = format!("http {}", c.url);
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            ctx.check_interrupt()?;
            match probe
                .http(&c.url, c.status, c.body_contains.as_deref())
                .await
            {
                Ok(ev) => {
                    let mut evidence = serde_json::json!({
                        "status": ev.status,
                        "attempts": attempt,
                        "elapsed_ms": ev.elapsed_ms,
                    });
                    for (key, list) in [
                        ("addresses", &ev.addresses),
                        ("unreachable", &ev.unreachable),
                    ] {
                        if !list.is_empty() {
                            evidence[key] = serde_json::json!(list);
                        }
                    }
                    passed(ctx, &name, evidence)?;
                    break;
                }
                Err((err, ev)) => {
                    let text = scrub(ctx.journal, &err.0);
                    if Instant::now() + interval > deadline {
                        let evidence = serde_json::json!({
                            "status": ev.as_ref().map(|e| e.status),
                            "attempts": attempt,
                            "body_start": ev.as_ref().map(|e| scrub(ctx.journal, &e.body_start)),
                        });
                        return Err(failed(ctx, &name, evidence, text)?);
                    }
                    let seen = ev.map_or_else(|| text.clone(), |e| e.status.to_string());
                    note(
                        ctx.journal,
                        &format!("{} → {seen}, attempt {attempt} of {max_attempts}", c.url),
                    );
                    tokio::time::sleep(interval).await;
                }
            }
        }
    }
    for c in &v.tls {
        let name = format!("tls {}", c.host);
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            let now = jiff::Timestamp::now();
            match probe.tls(&c.host, 443, i64::from(c.min_days), now).await {
                Ok(ev) => {
                    passed(ctx, &name, evidence(&ev))?;
                    break;
                }
                Err((err, ev)) => {
                    // An expiry too close will not improve by waiting.
                    if ev.is_some() || Instant::now() + interval > deadline {
                        return Err(failed(ctx, &name, evidence(&ev), err.0)?);
                    }
                    note(
                        ctx.journal,
                        &format!("{name}: {}, attempt {attempt}", err.0),
                    );
                    tokio::time::sleep(interval).await;
                }
            }
        }
    }
    for c in &v.dns {
        let name = format!("dns {} {}", c.kind.as_str(), c.name);
        let expected = c.expectation(spec.dns.as_ref());
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            match probe.dns(&c.name, c.kind, &expected).await {
                Ok(ev) => {
                    passed(ctx, &name, evidence(&ev))?;
                    break;
                }
                Err((err, ev)) => {
                    if Instant::now() + interval > deadline {
                        return Err(failed(ctx, &name, evidence(&ev), err.0)?);
                    }
                    note(
                        ctx.journal,
                        &format!("{name}: {}, attempt {attempt}", err.0),
                    );
                    tokio::time::sleep(interval).await;
                }
            }
        }
    }
    Ok(())
}
