//! The command line: arguments, and one module per command.
//!
//! The module tree mirrors the command tree. Commands return data and an
//! exit code; printing goes through [`crate::output::Output`].

mod apply;
mod column;
mod common;
mod doctor;
mod history;
mod journal;
mod lifecycle;
mod lock;
mod logs;
pub mod progress;
mod promote;
pub mod reference;
mod replay;
mod sandbox;
mod spec;
mod state;
mod status;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::output::Output;

/// Fabrik: take a service to production on Coolify, with DNS, verification,
/// monitors and rollback, every step on the record.
#[derive(Debug, Parser)]
#[command(name = "fabrik", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The journal: an SQLite file path or a `postgres://` URL (default:
    /// the nearest `.fabrik/state.db`, found as git finds its directory).
    #[arg(long, global = true, env = "FABRIK_STATE", value_name = "PATH")]
    pub state: Option<String>,

    /// Output format: `human` (progress and tables) or `json` (one JSON
    /// object per line).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,

    /// Colour: `auto` (on a terminal, unless `NO_COLOR` is set), `always`
    /// or `never`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Let credentials go over plain http to provider URLs on other
    /// machines (refused without it: anyone on the way could read them).
    #[arg(long, global = true, env = "FABRIK_ALLOW_INSECURE_HTTP", value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_insecure_http: bool,

    /// The environment of a spec that declares `environments` (its
    /// deployment is `NAME@ENV`); a deployment name given to a command means
    /// that deployment in this environment.
    #[arg(
        long = "env",
        short = 'e',
        global = true,
        env = "FABRIK_ENV",
        value_name = "ENV"
    )]
    pub env: Option<String>,

    /// Tables show run ids whole and times as RFC 3339 timestamps (by
    /// default: the first 8 characters of a run id, and `3 min ago` or,
    /// from a day back, `2026-12-03 14:05 UTC`).
    #[arg(long, global = true)]
    pub wide: bool,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

pub use crate::output::{ColorChoice, OutputFormat};

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold spec.yaml and .env.example.
    Init {
        /// Where (default: the current directory).
        dir: Option<PathBuf>,
    },
    /// Report every problem of a spec as FILE:LINE:COL: message.
    Validate {
        /// The spec file.
        spec: PathBuf,
    },
    /// Show what apply would do, resource by resource.
    Plan(PlanArgs),
    /// Take the spec to production: provision, deploy, verify, monitor, notify.
    Apply(ApplyArgs),
    /// Deploy a deployment again with its spec as it is (new code behind
    /// `:latest` or a branch head): `apply --redeploy` of its spec.
    Redeploy {
        /// A deployment name (its spec is the one it was last applied
        /// from) or a spec file.
        target: String,
        /// Use the built-in simulator instead of the real services.
        #[arg(long)]
        sandbox: bool,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(short = 'y', long, env = "FABRIK_YES", value_parser = clap::builder::FalseyValueParser::new())]
        yes: bool,
    },
    /// Check every credential and target a spec needs, all at once, and
    /// list everything missing or wrong (nothing is changed).
    Doctor {
        /// The spec file.
        spec: PathBuf,
        /// Check against the built-in simulator instead of the real
        /// services.
        #[arg(long)]
        sandbox: bool,
    },
    /// Print a deployment's application logs from Coolify: what it prints
    /// while it runs, then the build log of its latest deployment.
    Logs {
        /// The deployment (or a run id of it).
        target: String,
        /// How many of the last lines of the runtime log (at most 10000).
        #[arg(long, short = 'n', value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10000))]
        lines: u32,
        /// Only the build log of the latest deployment.
        #[arg(long)]
        build: bool,
        /// Read from the built-in simulator (implied when the deployment's
        /// last run was made against it).
        #[arg(long)]
        sandbox: bool,
    },
    /// Deploy to one environment the image another one verified: the
    /// digest the last run of NAME@FROM journaled, with TO's overrides.
    Promote {
        /// The spec's name (`web` for `web@staging` and `web@production`).
        name: String,
        /// The environment that verified the release.
        #[arg(long, value_name = "ENV")]
        from: String,
        /// The environment to deploy it to.
        #[arg(long, value_name = "ENV")]
        to: String,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(short = 'y', long, env = "FABRIK_YES", value_parser = clap::builder::FalseyValueParser::new())]
        yes: bool,
        /// Use the built-in simulator instead of the real services (implied
        /// when the source's last run was made against it).
        #[arg(long)]
        sandbox: bool,
    },
    /// Finish an interrupted run from the journal.
    Resume {
        /// A run id, or a deployment name (its interrupted run).
        target: String,
        /// Use the built-in simulator instead of the real services (implied
        /// when the run was made against it).
        #[arg(long)]
        sandbox: bool,
    },
    /// Undo a failed run's changes (pending manual steps, or the whole plan).
    Rollback {
        /// A run id, or a deployment name (its latest failed run).
        target: String,
        /// Go back to an earlier release instead: apply the state run RUN
        /// (an apply that succeeded) left, with today's secrets. TARGET is
        /// then the deployment's name. The spec file is not changed.
        #[arg(long, value_name = "RUN")]
        to: Option<String>,
        /// Print the plan from the journal and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(short = 'y', long, env = "FABRIK_YES", value_parser = clap::builder::FalseyValueParser::new())]
        yes: bool,
        /// Use the built-in simulator instead of the real services (implied
        /// when the run was made against it).
        #[arg(long)]
        sandbox: bool,
    },
    /// Delete everything a deployment owns.
    Destroy {
        /// A spec file or a deployment name.
        target: String,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(short = 'y', long, env = "FABRIK_YES", value_parser = clap::builder::FalseyValueParser::new())]
        yes: bool,
        /// Use the built-in simulator instead of the real services (implied
        /// when the run was made against it).
        #[arg(long)]
        sandbox: bool,
    },
    /// Show deployments, or one deployment's state, resources and last run.
    Status {
        /// The deployment (default: all).
        deployment: Option<String>,
    },
    /// List a deployment's runs and their outcomes.
    History {
        /// The deployment.
        deployment: String,
    },
    /// Read the journal.
    Journal {
        /// What to do.
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Fold the journal (or an export) to a point in time; verify it.
    Replay(ReplayArgs),
    /// Inspect or release deployment locks.
    Lock {
        /// What to do.
        #[command(subcommand)]
        command: LockCommand,
    },
    /// List (or delete) remote resources marked as Fabrik's that no deployment owns.
    Gc {
        /// Delete them (after asking).
        #[arg(long)]
        delete: bool,
        /// Do not ask before deleting (needed without a terminal).
        #[arg(short = 'y', long, env = "FABRIK_YES", value_parser = clap::builder::FalseyValueParser::new())]
        yes: bool,
        /// Also scan this Cloudflare zone (besides those the journal knows).
        #[arg(long)]
        zone: Vec<String>,
        /// Use the built-in simulator instead of the real services.
        #[arg(long)]
        sandbox: bool,
    },
    /// The built-in simulator of Coolify, Cloudflare and Uptime Kuma.
    Sandbox {
        /// What to do.
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// The state backend.
    State {
        /// What to do.
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Print the JSON Schema of spec.yaml.
    Schema,
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Arguments of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The spec file.
    pub spec: PathBuf,
    /// Exit 2 when there are changes, 0 when there are none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Look at the remote side for drift (the default); `--refresh=false`
    /// plans from the journal alone, without calling any provider.
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub refresh: bool,
    /// Save the plan to this file: `fabrik apply FILE` carries out exactly
    /// it (refused if the spec or the journal moved since).
    #[arg(short = 'o', long = "output-file", value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Refresh against the built-in simulator (implied when the
    /// deployment's last run was made against it).
    #[arg(long)]
    pub sandbox: bool,
}

/// Arguments of `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The spec file, or a plan saved by `fabrik plan SPEC -o FILE`.
    pub spec: PathBuf,
    /// On failure, undo nothing (exit 6 with the resume and rollback commands).
    #[arg(long)]
    pub no_rollback: bool,
    /// Wait this long for another run's lock (e.g. `30s`, `5m`, `1h30m`)
    /// instead of exiting 3 at once.
    #[arg(long, value_name = "DURATION")]
    pub lock_timeout: Option<crate::spec::model::Duration>,
    /// Use the built-in simulator instead of the real services.
    #[arg(long)]
    pub sandbox: bool,
    /// Apply without showing the plan and asking (needed without a
    /// terminal, e.g. in CI; the sandbox never needs it).
    #[arg(short = 'y', long, env = "FABRIK_YES", value_parser = clap::builder::FalseyValueParser::new())]
    pub yes: bool,
    /// Look at the remote side for drift and repair it (the default);
    /// `--refresh=false` plans from the journal alone.
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub refresh: bool,
    /// Attempts per provider call, the first included (1 to 10); overrides
    /// the spec's `retry.attempts` for this run.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=10))]
    pub retries: Option<u8>,
    /// Bind the deployment to this spec although another spec file applied
    /// it last (the spec moved, say).
    #[arg(long)]
    pub take_over: bool,
    /// Generate a new value for this generated secret although an earlier
    /// run had one (its `.env` entry is gone); repeatable.
    #[arg(long, value_name = "SECRET")]
    pub rotate: Vec<String>,
    /// Deploy the application again even when nothing in the spec changed
    /// (new code behind `:latest` or a branch head).
    #[arg(long)]
    pub redeploy: bool,
}

/// `journal` subcommands.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Write the journal (with its hash chain) as JSON or NDJSON.
    Export {
        /// Only this deployment's events.
        #[arg(long)]
        deployment: Option<String>,
        /// Only this run's events.
        #[arg(long)]
        run: Option<String>,
        /// `json` (one document) or `ndjson` (streamed, one event per
        /// line); by default `json`, and `ndjson` with `--output json`.
        #[arg(long, value_enum)]
        format: Option<ExportFormat>,
        /// Write to this file instead of standard output.
        #[arg(short = 'o', long = "output-file", value_name = "FILE")]
        output_file: Option<PathBuf>,
    },
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Only this deployment.
    #[arg(long)]
    pub deployment: Option<String>,
    /// Stop after this sequence number or RFC 3339 timestamp.
    #[arg(long, value_name = "SEQ|TIMESTAMP")]
    pub until: Option<String>,
    /// Re-check the hash chain and that cached projections equal a fresh fold.
    #[arg(long)]
    pub verify: bool,
    /// With --verify: a head the journal must still hold (the hash a run
    /// sent to a webhook, 64 hex digits), proving nothing before it changed.
    #[arg(long, value_name = "HASH", requires = "verify")]
    pub expect_head: Vec<String>,
    /// Replay an export file instead of the state database.
    #[arg(long, value_name = "EXPORT")]
    pub input: Option<PathBuf>,
}

/// `lock` subcommands.
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Show who holds which deployment's lock.
    Status,
    /// Release a lock held by a process on another machine.
    Release {
        /// The deployment.
        deployment: String,
        /// Required: confirm the holder is really gone.
        #[arg(long)]
        force: bool,
    },
}

/// `sandbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Run the simulator as a server.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        addr: String,
        /// Where the simulated world is kept.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Fault injection (`latency_ms=100,error_rate=0.3,seed=7` or JSON).
        #[arg(long, env = "FABRIK_SANDBOX_FAULTS")]
        faults: Option<String>,
    },
    /// Print the simulated world as JSON.
    Dump {
        /// Where the simulated world is kept.
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

/// `state` subcommands.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Copy the journal to another backend, verifying the chain on both sides.
    Migrate {
        /// The destination (a file path or a `postgres://` URL).
        #[arg(long)]
        to: String,
    },
}

/// Where the journal lives, resolved from `--state` / `FABRIK_STATE`: a
/// file path (SQLite) or a `postgres://` URL.
pub fn state_location(cli: &Cli) -> Result<crate::store::StateLocation, Error> {
    match cli.state.as_deref() {
        None => Ok(crate::store::StateLocation::Sqlite(
            PathBuf::from(".fabrik").join("state.db"),
        )),
        Some(text) => crate::store::StateLocation::parse(text).map_err(|e| Error::Usage {
            message: format!("--state: {e}"),
            hint: Some(e.hint().to_owned()),
        }),
    }
}

/// A local path standing for the state, for what lives beside it (the
/// sandbox's world): the SQLite file, or `.fabrik/state.db` with PostgreSQL.
pub fn state_path(cli: &Cli) -> PathBuf {
    match state_location(cli) {
        Ok(crate::store::StateLocation::Sqlite(p)) => p,
        _ => PathBuf::from(".fabrik").join("state.db"),
    }
}

/// Where the journal search starts for `command`: the spec's directory
/// for commands given a spec (or a plan saved from one), the current
/// directory otherwise; `None` for commands that use no journal.
fn journal_start(command: &Command) -> Option<PathBuf> {
    let dir_of = |spec: &std::path::Path| spec.parent().map(PathBuf::from).unwrap_or_default();
    match command {
        Command::Init { .. }
        | Command::Validate { .. }
        | Command::Schema
        | Command::Completions { .. } => None,
        Command::Plan(args) => Some(dir_of(&args.spec)),
        Command::Doctor { spec, .. } => Some(dir_of(spec)),
        Command::Apply(args) => Some(dir_of(&apply::spec_behind(&args.spec))),
        Command::Destroy { target, .. } | Command::Redeploy { target, .. }
            if std::path::Path::new(target).is_file() =>
        {
            Some(dir_of(std::path::Path::new(target)))
        }
        _ => Some(PathBuf::new()),
    }
}

/// Resolves the journal when `--state` / `FABRIK_STATE` do not name it
/// (see [`crate::store::discover`]), and says which one is used when it is
/// not `./.fabrik/state.db`.
fn discover_journal(cli: &mut Cli, out: &mut Output) {
    if cli.state.is_some() {
        return;
    }
    let Some(start) = journal_start(&cli.command) else {
        return;
    };
    let found = crate::store::discover::journal_from(&start);
    let obvious = PathBuf::from(crate::store::discover::DIR).join(crate::store::discover::FILE);
    let path = found
        .path
        .strip_prefix(".")
        .unwrap_or(&found.path)
        .to_owned();
    if path != obvious && !out.is_json() {
        let how = if found.found {
            "found"
        } else {
            "to be created"
        };
        out.diag(&format!("journal: {} ({how})", path.display()));
    }
    cli.state = Some(path.display().to_string());
}

/// A command-line error with a tip where the mistake is a known one:
/// `--output FILE` (the format) for `--output-file FILE` (`-o`).
pub fn hint_usage(mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let on_output = matches!(
        e.get(ContextKind::InvalidArg),
        Some(ContextValue::String(a)) if a.starts_with("--output ")
    );
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) => v.clone(),
        _ => String::new(),
    };
    let a_path = value.contains(['.', '/', '\\']);
    if e.kind() == ErrorKind::InvalidValue && on_output && a_path {
        e.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![
                format!("--output is the format (human or json); to write to {value}, use --output-file {value} (-o)").into(),
            ]),
        );
    }
    e
}

/// Runs the parsed command line; returns the exit code.
pub fn run(mut cli: Cli, out: &mut Output) -> Result<i32, Error> {
    in_environment(&mut cli)?;
    discover_journal(&mut cli, out);
    warn_sandbox_routing(&cli, out);
    match &cli.command {
        Command::Status { deployment } => status::run(&cli, deployment.as_deref(), out),
        Command::History { deployment } => history::run(&cli, deployment, out),
        Command::Journal {
            command:
                JournalCommand::Export {
                    deployment,
                    run,
                    format,
                    output_file,
                },
        } => journal::export(
            &cli,
            deployment.as_deref(),
            run.as_deref(),
            *format,
            output_file.as_deref(),
            out,
        ),
        Command::Replay(args) => replay::run(&cli, args, out),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "fabrik", &mut buf);
            out.raw(&buf)?;
            Ok(0)
        }
        Command::Init { dir } => spec::init(dir.as_deref(), out),
        Command::Validate { spec: path } => spec::validate(&cli, path, out),
        Command::Plan(args) => apply::plan(&cli, args, out),
        Command::Apply(args) => apply::apply(&cli, args, out),
        Command::Redeploy {
            target,
            sandbox,
            yes,
        } => apply::redeploy(&cli, target, *sandbox, *yes, out),
        Command::Doctor { spec, sandbox } => doctor::doctor(&cli, spec, *sandbox, out),
        Command::Logs {
            target,
            lines,
            build,
            sandbox,
        } => logs::logs(&cli, target, *lines, *build, *sandbox, out),
        Command::Promote {
            name,
            from,
            to,
            yes,
            sandbox,
        } => promote::promote(&cli, name, from, to, *yes, *sandbox, out),
        Command::Resume { target, sandbox } => lifecycle::resume(&cli, target, *sandbox, out),
        Command::Rollback {
            target,
            to: Some(to),
            dry_run,
            yes,
            sandbox,
        } => lifecycle::rollback_to(&cli, target, to, *dry_run, *yes, *sandbox, out),
        Command::Rollback {
            target,
            to: None,
            dry_run,
            yes,
            sandbox,
        } => lifecycle::rollback(&cli, target, *dry_run, *yes, *sandbox, out),
        Command::Destroy {
            target,
            yes,
            sandbox,
        } => lifecycle::destroy(&cli, target, *yes, *sandbox, out),
        Command::Lock {
            command: LockCommand::Status,
        } => lock::status(&cli, out),
        Command::Lock {
            command: LockCommand::Release { deployment, force },
        } => lock::release(&cli, deployment, *force, out),
        Command::Gc {
            delete,
            yes,
            sandbox,
            zone,
        } => lifecycle::gc(&cli, *delete, *yes, *sandbox, zone, out),
        Command::Sandbox {
            command: SandboxCommand::Serve { addr, data, faults },
        } => sandbox::serve(&cli, addr, data.as_deref(), faults.as_deref(), out),
        Command::Sandbox {
            command: SandboxCommand::Dump { data },
        } => sandbox::dump(&cli, data.as_deref(), out),
        Command::State {
            command: StateCommand::Migrate { to },
        } => state::migrate(&cli, to, out),
        Command::Schema => spec::schema(out),
    }
}

/// `FABRIK_SANDBOX_URL` (printed by `fabrik sandbox serve`) sends the
/// checks of a deployed service, and image digest lookups, to that
/// sandbox and trusts its certificate authority. Certificates are otherwise always verified, so a
/// run under it says so, for people (JSON output keeps stderr for errors).
fn warn_sandbox_routing(cli: &Cli, out: &mut Output) {
    let verifies = matches!(
        cli.command,
        Command::Apply(_)
            | Command::Redeploy { .. }
            | Command::Promote { .. }
            | Command::Resume { .. }
            | Command::Rollback { .. }
    );
    if verifies
        && !out.is_json()
        && let Ok(url) = std::env::var("FABRIK_SANDBOX_URL")
        && !url.is_empty()
    {
        out.diag(&format!(
            "warning: FABRIK_SANDBOX_URL={url}: the checks of the deployed service connect to that sandbox and trust its certificate authority, and image digests are read from its registry; unset it to verify the real service"
        ));
    }
}

/// With `--env ENV`, a deployment name given to a command names that
/// deployment in ENV (`web` becomes `web@ENV`); run ids, spec files and
/// names that already say their environment are left as they are.
fn in_environment(cli: &mut Cli) -> Result<(), Error> {
    // `redeploy web@staging` applies the spec in staging, as `-e staging
    // redeploy web` does.
    if cli.env.is_none()
        && let Command::Redeploy { target, .. } = &cli.command
        && !std::path::Path::new(target.as_str()).is_file()
        && let Ok(id) = crate::id::DeploymentId::new(target)
    {
        cli.env = id.environment().map(str::to_owned);
    }
    let Some(env) = cli.env.clone().filter(|e| !e.is_empty()) else {
        cli.env = None;
        return Ok(());
    };
    if let Some(problem) = crate::id::environment_problem(&env) {
        return Err(Error::Usage {
            message: format!("--env {env:?}: {problem}"),
            hint: Some("environment names are lower-case letters, digits and hyphens".to_owned()),
        });
    }
    let named = |target: &mut String| {
        if !target.contains('@')
            && !crate::id::RunId::looks_like(target)
            && !std::path::Path::new(target.as_str()).is_file()
        {
            *target = format!("{target}@{env}");
        }
    };
    match &mut cli.command {
        Command::Resume { target, .. }
        | Command::Logs { target, .. }
        | Command::Rollback { target, .. }
        | Command::Destroy { target, .. }
        | Command::Redeploy { target, .. }
        | Command::History { deployment: target }
        | Command::Lock {
            command: LockCommand::Release {
                deployment: target, ..
            },
        } => named(target),
        Command::Status {
            deployment: Some(target),
        }
        | Command::Journal {
            command:
                JournalCommand::Export {
                    deployment: Some(target),
                    ..
                },
        } => named(target),
        _ => {}
    }
    Ok(())
}

/// Parses a deployment name argument.
fn deployment_arg(name: &str) -> Result<crate::id::DeploymentId, Error> {
    crate::id::DeploymentId::new(name).map_err(|e| Error::Usage {
        message: e.to_string(),
        hint: Some("deployment names are lower-case letters, digits and hyphens".to_owned()),
    })
}

/// Opens the journal for a command that only reads it.
fn open_existing(cli: &Cli) -> Result<Box<dyn crate::store::EventStore>, Error> {
    crate::store::open_existing(&state_location(cli)?).map_err(Error::from)
}
