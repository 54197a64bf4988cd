//! The command reference (`docs/commands.md`), generated from the clap
//! tree so that it cannot drift from what the binary accepts.

use clap::CommandFactory;

use super::Cli;

/// The whole reference, as Markdown.
pub fn reference() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = String::from(
        "# Command reference\n\n\
         Generated from the command-line definitions (`fabrik help` prints the\n\
         same); a test fails when this file and the binary disagree. Regenerate\n\
         with `FABRIK_UPDATE_DOCS=1 cargo test --test it cli_reference`.\n",
    );
    section(&mut out, &cmd, "fabrik", 2);
    out
}

fn section(out: &mut String, cmd: &clap::Command, path: &str, depth: usize) {
    let heading = "#".repeat(depth.min(4));
    out.push_str(&format!("\n{heading} `{path}`\n\n"));
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        out.push_str(&format!("{about}\n\n"));
    }
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.trim_start_matches("Usage: ").trim();
    out.push_str(&format!("```text\n{usage}\n```\n"));
    let args: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter(|a| !(depth > 2 && a.is_global_set()))
        .collect();
    if !args.is_empty() {
        out.push('\n');
        for a in args {
            out.push_str(&format!("- {}", spelling(a)));
            if let Some(help) = a.get_long_help().or(a.get_help()) {
                out.push_str(&format!(": {}", help.to_string().replace('\n', " ")));
            }
            if let Some(env) = a.get_env() {
                out.push_str(&format!(" (env `{}`)", env.to_string_lossy()));
            }
            let defaults: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            if !defaults.is_empty() && a.get_action().takes_values() {
                out.push_str(&format!(" (default `{}`)", defaults.join(",")));
            }
            out.push('\n');
        }
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        section(out, sub, &format!("{path} {}", sub.get_name()), depth + 1);
    }
}

/// How an argument is written: `--name VALUE`, `-s, --name`, or `<NAME>`.
fn spelling(a: &clap::Arg) -> String {
    let value = a
        .get_value_names()
        .map(|v| {
            v.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| a.get_id().as_str().to_uppercase());
    if a.is_positional() {
        return format!("`<{value}>`");
    }
    let mut names = Vec::new();
    if let Some(s) = a.get_short() {
        names.push(format!("-{s}"));
    }
    if let Some(l) = a.get_long() {
        names.push(format!("--{l}"));
    }
    let takes = a.get_action().takes_values();
    format!(
        "`{}{}`",
        names.join(", "),
        if takes {
            format!(" {value}")
        } else {
            String::new()
        }
    )
}
