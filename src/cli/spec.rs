//! `fabrik validate`, `fabrik schema`, `fabrik init`, and loading a spec for
//! the commands that take one.

use std::path::Path;

use serde_json::json;

use super::Cli;
use crate::error::{Error, exit};
use crate::output::{Output, Style, Styled};
use crate::spec::diagnostic::Part;
use crate::spec::{self, LoadOptions, Loaded, SpecError};

/// Loads and validates a spec; prints its warnings (and, on failure, every
/// error) as `FILE:LINE:COL: message`, each with the line it is on.
pub fn load(path: &Path, environment: Option<&str>, out: &mut Output) -> Result<Loaded, Error> {
    match spec::load(path, &LoadOptions::in_environment(environment)) {
        Ok(loaded) => {
            if !out.is_json() {
                for w in &loaded.warnings {
                    diagnostic(w, out);
                }
            }
            Ok(loaded)
        }
        Err(e @ SpecError::Invalid { .. }) => {
            if !out.is_json() {
                for d in e.diagnostics() {
                    diagnostic(&d, out);
                }
            }
            Err(Error::Spec(Box::new(e)))
        }
        Err(e) => Err(Error::Spec(Box::new(e))),
    }
}

/// `fabrik validate SPEC`: exit 0 (warnings allowed) or 4. A spec that
/// declares environments is checked in each (or in `--env`'s only): a
/// problem found in some of them only names them.
pub fn validate(cli: &Cli, path: &Path, out: &mut Output) -> Result<i32, Error> {
    let environments: Vec<Option<String>> = match &cli.env {
        Some(e) => vec![Some(e.clone())],
        None => {
            let declared = spec::declared_environments(path, &LoadOptions::default());
            if declared.is_empty() {
                vec![None]
            } else {
                declared.into_iter().map(Some).collect()
            }
        }
    };
    let mut found: Vec<(spec::Diagnostic, Vec<String>)> = Vec::new();
    let mut ok = true;
    let mut names = Vec::new();
    for env in &environments {
        let (diags, valid) = match spec::load(path, &LoadOptions::in_environment(env.as_deref())) {
            Ok(l) => {
                names.push(l.spec.name.to_string());
                (l.warnings.clone(), true)
            }
            Err(e @ SpecError::Invalid { .. }) => (e.diagnostics(), false),
            Err(e) => return Err(Error::Spec(Box::new(clone_read(&e)))),
        };
        ok &= valid;
        for d in diags {
            match found.iter_mut().find(|(f, _)| *f == d) {
                Some((_, envs)) => envs.extend(env.clone()),
                None => found.push((d, env.iter().cloned().collect())),
            }
        }
    }
    let diags: Vec<spec::Diagnostic> = found
        .into_iter()
        .map(|(mut d, envs)| {
            if environments.len() > 1 && envs.len() < environments.len() {
                d.message = format!("{} (environment {})", d.message, envs.join(", "));
            }
            d
        })
        .collect();
    let name = (names.len() == 1).then(|| names[0].clone());
    if out.is_json() {
        out.json(
            &json!({ "valid": ok, "deployment": name, "deployments": names, "diagnostics": diags }),
        )?;
    } else {
        for d in &diags {
            diagnostic(d, out);
        }
        let errors = diags
            .iter()
            .filter(|d| d.severity == spec::Severity::Error)
            .count();
        let warnings = diags.len() - errors;
        if ok {
            out.diag(&format!(
                "{}: valid ({} warning{})",
                path.display(),
                warnings,
                if warnings == 1 { "" } else { "s" }
            ));
        } else {
            out.diag(&format!(
                "{}: {errors} error{}, {warnings} warning{}",
                path.display(),
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" }
            ));
        }
    }
    Ok(if ok { exit::OK } else { exit::INVALID_SPEC })
}

/// One diagnostic on stderr, the line it is on quoted under it, its
/// carets coloured as its severity on a terminal.
fn diagnostic(d: &spec::Diagnostic, out: &mut Output) {
    let pointer = match d.severity {
        spec::Severity::Error => Style::Bad,
        spec::Severity::Warning => Style::Warn,
    };
    let mut text = Styled::new();
    for (part, piece) in d.parts() {
        let style = match part {
            Part::Text => None,
            Part::Margin => Some(Style::Quiet),
            Part::Pointer => Some(pointer),
        };
        text.push_styled(style, piece);
    }
    text.push("\n");
    out.diag_styled(&text);
}

fn clone_read(e: &SpecError) -> SpecError {
    match e {
        SpecError::Read { path, source } => SpecError::Read {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        SpecError::Invalid {
            path,
            errors,
            warnings,
        } => SpecError::Invalid {
            path: path.clone(),
            errors: errors.clone(),
            warnings: warnings.clone(),
        },
    }
}

/// `fabrik schema`.
pub fn schema(out: &mut Output) -> Result<i32, Error> {
    out.raw(spec::schema::json_schema_text().as_bytes())?;
    Ok(exit::OK)
}

/// `fabrik init [DIR]`.
pub fn init(dir: Option<&Path>, out: &mut Output) -> Result<i32, Error> {
    let dir = dir.unwrap_or_else(|| Path::new("."));
    let written = spec::init::scaffold(dir).map_err(|e| Error::Usage {
        message: crate::error::chain_text(&e),
        hint: Some("edit the existing spec.yaml, or run init in an empty directory".to_owned()),
    })?;
    if out.is_json() {
        out.json(&json!({ "written": written }))?;
    } else {
        for p in &written {
            out.line(&format!("wrote {}", p.display()))?;
        }
        out.diag(&format!(
            "next: edit {} and run `fabrik plan {}` (or try it with `fabrik apply {} --sandbox`)",
            dir.join("spec.yaml").display(),
            dir.join("spec.yaml").display(),
            dir.join("spec.yaml").display()
        ));
    }
    Ok(exit::OK)
}
