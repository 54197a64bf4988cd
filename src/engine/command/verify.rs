//! The spec's checks after a deployment (HTTP, TLS, DNS), each polled with
//! backoff until the verification timeout, each result journaled with its
//! evidence. While a check waits, the progress line says what for, what it
//! got, and how much of the timeout has passed.

use std::time::{Duration, Instant};

use crate::engine::{Ctx, EngineError, note, record, scrub};
use crate::event::{Event, VerificationFailed, VerificationPassed};
use crate::text::{count, span};
use crate::verify::HttpEvidence;

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

/// The clock of the checks: they share the spec's timeout; each check
/// polls with backoff, fast first (`Pace::verify_first`), then half as long
/// again each time up to `Pace::verify_max`, and is tried once more when
/// the timeout runs out.
struct Patience {
    started: Instant,
    timeout: Duration,
    first: Duration,
    max: Duration,
    /// The next wait of the check being polled.
    wait: Duration,
}

impl Patience {
    fn new(ctx: &Ctx<'_>, timeout: Duration) -> Self {
        let pace = &ctx.remote.pace;
        Self {
            started: Instant::now(),
            timeout,
            first: pace.verify_first,
            max: pace.verify_max.max(pace.verify_first),
            wait: pace.verify_first,
        }
    }

    /// A new check starts polling fast again.
    fn next_check(&mut self) {
        self.wait = self.first;
    }

    /// After a failed attempt: says on the progress line what the check
    /// waits for (`what`) and what it got (`got`), and waits before the
    /// next attempt. False when the timeout has run out: the check has
    /// failed.
    async fn wait(&mut self, ctx: &Ctx<'_>, what: &str, got: &str) -> Result<bool, EngineError> {
        let elapsed = self.started.elapsed();
        let Some(left) = self.timeout.checked_sub(elapsed).filter(|l| !l.is_zero()) else {
            return Ok(false);
        };
        note(
            ctx.journal,
            &format!(
                "waiting for {what} ({got}), {} of {}",
                span(elapsed),
                span(self.timeout)
            ),
        );
        // In slices, so that Ctrl-C is seen within a tenth of a second.
        let until = Instant::now() + self.wait.min(left);
        while let Some(rest) = until.checked_duration_since(Instant::now()) {
            ctx.check_interrupt()?;
            if rest.is_zero() {
                break;
            }
            tokio::time::sleep(rest.min(Duration::from_millis(100))).await;
        }
        ctx.check_interrupt()?;
        self.wait = (self.wait * 3 / 2).min(self.max);
        Ok(true)
    }
}

/// What an HTTP check waits for, for the progress line: `200 from URL`,
/// `"ok" in the body of URL`, or both.
fn http_wanted(c: &crate::spec::model::verify::HttpCheck) -> String {
    match &c.body_contains {
        None => format!("{} from {}", c.status, c.url),
        Some(want) if c.status == 200 => format!("{want:?} in the body of {}", c.url),
        Some(want) => format!("{} with {want:?} in the body from {}", c.status, c.url),
    }
}

/// What an HTTP check got, for the progress line.
fn http_got(
    c: &crate::spec::model::verify::HttpCheck,
    seen: Option<&HttpEvidence>,
    error: &str,
) -> String {
    match seen {
        Some(e) if e.status == c.status => format!("got {} without it", e.status),
        Some(e) => format!("got {}", e.status),
        None => error.to_owned(),
    }
}

/// Runs the spec's checks, each retried until the verification timeout.
pub async fn verify(ctx: &Ctx<'_>, spec: &crate::spec::Spec) -> Result<(), EngineError> {
    let v = &spec.verify;
    let mut patience = Patience::new(ctx, v.timeout.get());
    let probe = &ctx.remote.providers.probe;
    for c in &v.http {
        let name = format!("http {}", c.url);
        patience.next_check();
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
                    let got = http_got(c, ev.as_ref(), &text);
                    if !patience.wait(ctx, &http_wanted(c), &got).await? {
                        let evidence = serde_json::json!({
                            "status": ev.as_ref().map(|e| e.status),
                            "attempts": attempt,
                            "body_start": ev.as_ref().map(|e| scrub(ctx.journal, &e.body_start)),
                        });
                        return Err(failed(ctx, &name, evidence, text)?);
                    }
                }
            }
        }
    }
    for c in &v.tls {
        let name = format!("tls {}", c.host);
        let wanted = format!(
            "a certificate for {} valid {}",
            c.host,
            count(c.min_days as usize, "more day")
        );
        patience.next_check();
        loop {
            ctx.check_interrupt()?;
            let now = jiff::Timestamp::now();
            match probe.tls(&c.host, 443, i64::from(c.min_days), now).await {
                Ok(ev) => {
                    passed(ctx, &name, evidence(&ev))?;
                    break;
                }
                Err((err, ev)) => {
                    // An expiry too close will not improve by waiting.
                    if ev.is_some() || !patience.wait(ctx, &wanted, &err.0).await? {
                        return Err(failed(ctx, &name, evidence(&ev), err.0)?);
                    }
                }
            }
        }
    }
    for c in &v.dns {
        let name = format!("dns {} {}", c.kind.as_str(), c.name);
        let expected = c.expectation(spec.dns.as_ref());
        let wanted = {
            use crate::spec::model::verify::DnsExpectation as E;
            let what = match &expected {
                E::Listed(v) | E::Records(v) => v.join(", "),
                E::CloudflareEdge => "Cloudflare's addresses".to_owned(),
                E::Any => "anything".to_owned(),
            };
            format!("{} {} to answer {what}", c.kind.as_str(), c.name)
        };
        patience.next_check();
        loop {
            ctx.check_interrupt()?;
            match probe.dns(&c.name, c.kind, &expected).await {
                Ok(ev) => {
                    passed(ctx, &name, evidence(&ev))?;
                    break;
                }
                Err((err, ev)) => {
                    if !patience.wait(ctx, &wanted, &err.0).await? {
                        return Err(failed(ctx, &name, evidence(&ev), err.0)?);
                    }
                }
            }
        }
    }
    Ok(())
}
