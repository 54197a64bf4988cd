//! Colour: plan symbols and run states on a terminal, off when the output
//! is not one, with `NO_COLOR` set (to any value) or `--color never`;
//! forced with `--color always`. Every line reads the same without it.

use super::{Project, ok};
use crate::support::{Terminal, stdout};

/// The SGR colour sequences in `text` (`\x1b[32m`...), not the line
/// redraw progress writes (`\x1b[2K`).
fn colours(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("\x1b[") {
        let after = &rest[at + 2..];
        let end = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[end..].starts_with('m') {
            found.push(format!("\\x1b[{}m", &after[..end]));
        }
        rest = after;
    }
    found
}

fn changed_project() -> Project {
    let p = Project::example("quickstart", &[]);
    ok(&p.apply());
    p.edit("spec.yaml", "whoami:v1.10", "whoami:v1.11");
    p
}

#[test]
fn color_always_colours_plan_symbols_even_when_piped() {
    let p = changed_project();
    let o = p.run(&["plan", "spec.yaml", "--refresh=false", "--color", "always"]);
    ok(&o);
    let plan = stdout(&o);
    assert!(plan.contains("\x1b[33m~ app"), "{plan:?}");
    assert!(plan.contains("\x1b[2m= monitor:quickstart"), "{plan:?}");

    // NO_COLOR is set by the test environment: piped, nothing is coloured.
    let o = p.run(&["plan", "spec.yaml", "--refresh=false"]);
    ok(&o);
    assert!(colours(&stdout(&o)).is_empty(), "{:?}", stdout(&o));

    let o = p.run(&["status", "--color", "always"]);
    ok(&o);
    assert!(
        stdout(&o).contains("\x1b[32mCOMPLETE (succeeded)\x1b[0m"),
        "{:?}",
        stdout(&o)
    );
}

/// Applies the changed project on a terminal with `env`, answering yes.
fn apply_on_terminal(args: &[&str], env: &[(&str, Option<&str>)]) -> String {
    let p = changed_project();
    let mut t = Terminal::start(p.path(), args, env);
    t.type_text("y\n");
    let (code, shown) = t.finish();
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("~ app"), "{shown}");
    shown
}

#[test]
fn a_terminal_gets_colour_unless_no_color_or_color_never() {
    let args = ["apply", "spec.yaml", "--sandbox"];
    let shown = apply_on_terminal(&args, &[("NO_COLOR", None)]);
    assert!(shown.contains("\x1b[33m~ app"), "{shown:?}");
    assert!(shown.contains("\x1b[32mCOMPLETE\x1b[0m"), "{shown:?}");

    for env in [[("NO_COLOR", Some(""))], [("NO_COLOR", Some("1"))]] {
        let shown = apply_on_terminal(&args, &env);
        assert!(colours(&shown).is_empty(), "{env:?}: {shown:?}");
    }

    let mut never = args.to_vec();
    never.extend(["--color", "never"]);
    let shown = apply_on_terminal(&never, &[("NO_COLOR", None)]);
    assert!(colours(&shown).is_empty(), "{shown:?}");
}
