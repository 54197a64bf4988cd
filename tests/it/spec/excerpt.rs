//! `fabrik validate` quotes the line each problem is on, with carets under
//! the value: at the right place after tabs and multi-byte characters,
//! with secrets masked, through the real binary.

use std::path::Path;

use crate::support::{fabrik, run, stderr, stdout};

const HEAD: &str = "name: quoted
coolify: {project: default, environment: production, server: localhost}
app:
  image: nginx:1.27
  port: 80
  domains: [app.example.com]
";

/// `fabrik validate spec.yaml ARGS` on `spec` in a fresh directory, with
/// `files` beside it: exit code, stdout, stderr.
fn validate(spec: &str, files: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), spec).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    validate_in(dir.path(), args)
}

fn validate_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let o = run(fabrik(dir).arg("validate").arg("spec.yaml").args(args));
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

/// The quoted line and the caret line printed under the diagnostic that
/// starts with `head`.
#[track_caller]
fn excerpt<'a>(err: &'a str, head: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = err.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(head))
        .unwrap_or_else(|| panic!("no diagnostic at {head} in\n{err}"));
    (lines[at + 1], lines[at + 2])
}

/// What the carets of an excerpt point at in its quoted line, and the
/// line number in its margin.
#[track_caller]
fn pointed(quoted: &str, carets: &str) -> (u32, String) {
    let (number, text) = quoted.split_once(" | ").expect("a margin");
    let (margin, under) = carets.split_once(" | ").expect("a margin");
    assert_eq!(
        margin.chars().count(),
        number.chars().count(),
        "{quoted}\n{carets}"
    );
    assert!(margin.trim().is_empty(), "{carets}");
    let start = under.chars().take_while(|c| *c == ' ').count();
    let width = under.chars().skip(start).take_while(|c| *c == '^').count();
    assert_eq!(
        start + width,
        under.chars().count(),
        "only carets: {carets}"
    );
    let shown = text.chars().skip(start).take(width).collect();
    (number.trim().parse().expect("a line number"), shown)
}

/// The header of the diagnostic at the first `word` of line `line` of
/// `text` (columns count characters).
fn at(text: &str, line: usize, word: &str) -> String {
    let written = text.lines().nth(line - 1).unwrap();
    let column = written[..written.find(word).unwrap()].chars().count() + 1;
    format!("spec.yaml:{line}:{column}:")
}

#[test]
fn the_carets_stand_under_the_value_after_a_tab_and_multi_byte_characters() {
    let spec = format!(
        "{HEAD}dns:
  zone: example.com
  records:
    - {{type: A, name: app.example.com,\tcontent: 203.0.113.10, ttl: fast}}
    - {{type: TXT, name: txt.example.com, content: \"ünïcödé — ½\", ttl: slow}}
"
    );
    let (code, _, err) = validate(&spec, &[], &[]);
    assert_eq!(code, 4, "{err}");
    let (quoted, carets) = excerpt(&err, &at(&spec, 10, "fast"));
    assert!(quoted.contains("app.example.com,\\tcontent"), "{quoted}");
    assert_eq!(
        pointed(quoted, carets),
        (10, "fast".to_owned()),
        "\n{quoted}\n{carets}"
    );
    let (quoted, carets) = excerpt(&err, &at(&spec, 11, "slow"));
    assert!(quoted.contains("ünïcödé — ½"), "{quoted}");
    assert_eq!(
        pointed(quoted, carets),
        (11, "slow".to_owned()),
        "\n{quoted}\n{carets}"
    );
}

#[test]
fn a_secret_value_never_appears_in_the_quoted_line() {
    let secrets = [
        "sk_live_51HxQpL2Vv",
        "pl41npw0rd",
        "T0AAA/B0BBB/XyZsEcReTtOkEn",
        "prod-only-s3cr3t",
    ];
    let spec = format!(
        "{HEAD}  env:
    DATABASE_URL: postgres://app:{}@db/app
secrets:
  API_KEY: {}
notifications:
  webhooks:
    - url: https://hooks.slack.com/services/{}
environments:
  production:
    secrets:
      API_KEY: {}
  staging:
",
        secrets[1], secrets[0], secrets[2], secrets[3]
    );
    for args in [
        &[][..],
        &["--output", "json"][..],
        &["--color", "always"][..],
    ] {
        let (code, out, err) = validate(&spec, &[], args);
        assert_eq!(code, 4, "{args:?}: {err}");
        for secret in secrets {
            assert!(
                !out.contains(secret),
                "{args:?}: {secret} in stdout:\n{out}"
            );
            assert!(
                !err.contains(secret),
                "{args:?}: {secret} in stderr:\n{err}"
            );
        }
        if args.is_empty() {
            for (head, masked) in [
                (
                    "spec.yaml:8:19:",
                    "    DATABASE_URL: postgres://app:***@db/app",
                ),
                ("spec.yaml:10:12:", "  API_KEY: ********"),
                ("spec.yaml:13:7:", "    - url: ********"),
                ("spec.yaml:17:16:", "      API_KEY: ********"),
            ] {
                let (quoted, carets) = excerpt(&err, head);
                assert!(
                    quoted.ends_with(masked),
                    "{head}\n{quoted}\n{carets}\n\n{err}"
                );
            }
            let (quoted, carets) = excerpt(&err, "spec.yaml:10:12:");
            assert_eq!(pointed(quoted, carets).1, "********");
        } else if args[0] == "--output" {
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let texts: Vec<&str> = v["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|d| d["excerpt"]["text"].as_str())
                .collect();
            assert!(texts.contains(&"  API_KEY: ********"), "{texts:?}");
        }
    }
}

#[test]
fn the_last_line_of_a_file_without_a_final_line_break_is_quoted() {
    let spec = format!("{HEAD}verify:\n  timeout: soon");
    let (code, _, err) = validate(&spec, &[], &[]);
    assert_eq!(code, 4, "{err}");
    let (quoted, carets) = excerpt(&err, "spec.yaml:8:12:");
    assert_eq!(quoted, "   8 |   timeout: soon");
    assert_eq!(pointed(quoted, carets), (8, "soon".to_owned()));
}

#[test]
fn every_diagnostic_quotes_its_own_line_in_its_own_file() {
    let spec = "name: quoted
coolify: {project: default, environment: production, server: localhost}
app:
  compose:
    file: docker-compose.yml
  domains: [app.example.com]
  prot: 80
dns:
  zone: example.com
  records:
    - {type: A, name: app.example.org, content: 203.0.113.10}
";
    let compose = "services:\n  web:\n    image: nginx:1.27\n    privileged: true\n    healthcheck: {test: [\"CMD\", \"true\"]}\n";
    let (code, _, err) = validate(spec, &[("docker-compose.yml", compose)], &[]);
    assert_eq!(code, 4, "{err}");
    let heads: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(": error: ") || l.contains(": warning: "))
        .collect();
    assert!(heads.len() >= 3, "{err}");
    for head in heads {
        let (file, rest) = head.split_once(':').unwrap();
        let line: usize = rest.split(':').next().unwrap().parse().unwrap();
        let text = if file == "spec.yaml" { spec } else { compose };
        let (quoted, carets) = excerpt(&err, head);
        let (number, _) = pointed(quoted, carets);
        assert_eq!(number as usize, line, "{head}");
        let written = text.lines().nth(line - 1).unwrap();
        assert_eq!(quoted.split_once(" | ").unwrap().1, written, "{head}");
    }
    let (quoted, carets) = excerpt(&err, "docker-compose.yml:4:5:");
    assert_eq!(pointed(quoted, carets).1, "privileged");
    let (quoted, carets) = excerpt(&err, "spec.yaml:7:3:");
    assert_eq!(pointed(quoted, carets).1, "prot");
}

#[test]
fn the_carets_are_coloured_as_plan_symbols_are() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spec.yaml"),
        format!("{HEAD}verify:\n  timeout: soon\n"),
    )
    .unwrap();
    let args = ["validate", "spec.yaml"];
    let t = crate::support::Terminal::start(dir.path(), &args, &[("NO_COLOR", None)]);
    let (code, shown) = t.finish();
    assert_eq!(code, Some(4), "{shown}");
    assert!(shown.contains("\x1b[1;31m^^^^\x1b[0m"), "{shown:?}");
    let t = crate::support::Terminal::start(dir.path(), &args, &[("NO_COLOR", Some("1"))]);
    let (_, shown) = t.finish();
    assert!(!shown.contains('\x1b'), "{shown:?}");
    assert!(shown.contains("  timeout: soon"), "{shown:?}");
    let (_, _, err) = validate_in(dir.path(), &["--color", "always"]);
    assert!(err.contains("\x1b[1;31m^^^^\x1b[0m"), "{err:?}");
}
