//! Property tests: the parser and validator never panic; the desired-state
//! hash ignores how the YAML is written and changes with what it says.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use fabrik::secret::{SecretSource, SecretValue};
use fabrik::spec::hash::{DesiredState, desired_state};
use fabrik::spec::schema::json_schema;
use fabrik::spec::secrets::{FingerprintKey, ResolvedSecrets};
use fabrik::spec::{Diagnostic, DiskFiles, LoadOptions, MemoryFiles, Spec, check};
use proptest::prelude::*;
use serde_json::Value;

use super::example_specs;

/// A small deterministic generator for layout choices, seeded by proptest.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn chance(&mut self, in_ten: u64) -> bool {
        self.next() % 10 < in_ten
    }
}

/// Writes `v` as YAML with random key order, block or flow style, quoting,
/// indentation width and comments.
fn emit(v: &Value, dice: &mut Dice) -> String {
    let width = 2 + (dice.next() % 3) as usize;
    let mut out = String::new();
    if dice.chance(5) {
        out.push_str("# reformatted\n");
    }
    if dice.chance(3) {
        out.push_str("---\n");
    }
    block(v, 0, width, dice, &mut out);
    out
}

fn shuffled<'a>(
    m: &'a serde_json::Map<String, Value>,
    dice: &mut Dice,
) -> Vec<(&'a String, &'a Value)> {
    let mut entries: Vec<(u64, (&String, &Value))> = m.iter().map(|e| (dice.next(), e)).collect();
    entries.sort_by_key(|(r, _)| *r);
    entries.into_iter().map(|(_, e)| e).collect()
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

fn block(v: &Value, level: usize, width: usize, dice: &mut Dice, out: &mut String) {
    let pad = " ".repeat(level * width);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in shuffled(m, dice) {
                if dice.chance(1) {
                    out.push_str(&format!("{pad}# about {}\n", k.replace('\n', " ")));
                }
                out.push_str(&format!("{pad}{}:", key(k)));
                value_after(v, level, width, dice, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                out.push_str(&format!("{pad}-"));
                value_after(item, level, width, dice, out);
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&flow(other, dice));
            out.push('\n');
        }
    }
}

fn value_after(v: &Value, level: usize, width: usize, dice: &mut Dice, out: &mut String) {
    if let Value::String(s) = v
        && let Some(lit) = literal_block(s, level + 1, width)
    {
        out.push_str(&lit);
        return;
    }
    if is_container(v) && !dice.chance(3) {
        out.push('\n');
        block(v, level + 1, width, dice, out);
    } else {
        out.push(' ');
        out.push_str(&flow(v, dice));
        if !is_container(v) && dice.chance(1) {
            out.push_str("  # note");
        }
        out.push('\n');
    }
}

fn literal_block(s: &str, level: usize, width: usize) -> Option<String> {
    let body = s.strip_suffix('\n')?;
    if body.is_empty()
        || body.ends_with('\n')
        || body
            .lines()
            .any(|l| l.starts_with([' ', '\t']) || l.ends_with([' ', '\t']) || l.is_empty())
    {
        return None;
    }
    let pad = " ".repeat(level * width);
    let mut out = String::from(" |\n");
    for line in body.lines() {
        out.push_str(&pad);
        out.push_str(line);
        out.push('\n');
    }
    Some(out)
}

fn flow(v: &Value, dice: &mut Dice) -> String {
    match v {
        Value::Null => if dice.chance(5) { "~" } else { "null" }.to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s, dice),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(|i| flow(i, dice)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = shuffled(m, dice)
                .into_iter()
                .map(|(k, v)| format!("{}: {}", key(k), flow(v, dice)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

fn plain_ok(s: &str) -> bool {
    let first = s.chars().next();
    first.is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
}

fn key(k: &str) -> String {
    if plain_ok(k) {
        k.to_owned()
    } else {
        serde_json::to_string(k).unwrap()
    }
}

fn scalar(s: &str, dice: &mut Dice) -> String {
    match dice.next() % 3 {
        0 if plain_ok(s) => s.to_owned(),
        1 if !s.contains(['\n', '\r', '\t']) => format!("'{}'", s.replace('\'', "''")),
        _ => serde_json::to_string(s).unwrap(),
    }
}

/// The examples as raw YAML documents (the shape written, before any
/// template expansion), with their directories.
fn example_documents() -> Vec<(PathBuf, Value)> {
    example_specs()
        .into_iter()
        .map(|p| {
            let v: Value = serde_yaml::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect()
}

fn check_text(text: &str, spec_path: &Path) -> Result<Spec, Vec<Diagnostic>> {
    let files = DiskFiles::new(spec_path.parent().unwrap(), 1 << 20).unwrap();
    check(text.as_bytes(), spec_path, &files, &LoadOptions::default()).map(|c| c.spec)
}

fn secrets_for(spec: &Spec, salt: &str) -> ResolvedSecrets {
    ResolvedSecrets::from_values(
        FingerprintKey::from_bytes([42; 32]),
        SecretSource::Env,
        spec.secrets.keys().map(|n| {
            (
                n.clone(),
                SecretValue::new(format!("value-of-{n}{salt}")),
                SecretSource::Env,
            )
        }),
    )
}

fn state(spec: &Spec) -> DesiredState {
    desired_state(spec, &secrets_for(spec, ""))
}

/// Every property name in the schema, for generating YAML that goes deep
/// into validation.
fn vocabulary() -> Vec<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Object(props)) = m.get("properties") {
                    out.extend(props.keys().cloned());
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(&json_schema(), &mut out);
    out.extend(
        [
            "API_TOKEN",
            "<<",
            "x-extra",
            "DB_PASSWORD",
            "services",
            "web",
            "image",
        ]
        .map(String::from),
    );
    out.into_iter().collect()
}

fn scalar_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-70_000i64..70_000).prop_map(Value::from),
        prop::sample::select(vec![
            "auto",
            "A",
            "CNAME",
            "TXT",
            "http",
            "keyword",
            "json",
            "slack",
            "manual",
            "never",
            "60s",
            "5m",
            "500ms",
            "1h30m",
            "90",
            "203.0.113.10",
            "2001:db8::1",
            "example.com",
            "app.example.com",
            "https://app.example.com/health",
            "${secret.API_TOKEN}",
            "${secret.",
            "${x}",
            "$${y}",
            "{{ domain }}",
            "traefik/whoami:v1.10",
            "nginx",
            "wordpress",
            "static-site",
            "default",
            "production",
            "localhost",
            "quickstart",
            "Bad_Name",
            "",
            "../x.yml",
            "compose.yml",
            "services:\n  web:\n    image: nginx:1\n",
            "200-299",
            "yes",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn yaml_value(keys: Vec<String>) -> impl Strategy<Value = Value> {
    scalar_value().prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(keys.clone()), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn assert_no_internal_error(result: &Result<fabrik::spec::Checked, Vec<Diagnostic>>) {
    if let Err(diags) = result {
        for d in diags {
            assert!(
                !d.message.contains("can not be read"),
                "schema and model disagree: {d}"
            );
        }
    }
}

proptest! {
    // Some mutations are not values of the model (an enum, a duration) and
    // are rejected; allow as many rejects as cases.
    #![proptest_config(ProptestConfig { cases: 256, max_global_rejects: 1 << 20, .. ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = check(&bytes, Path::new("spec.yaml"), &MemoryFiles::new(), &LoadOptions::default());
    }

    #[test]
    fn never_panics_on_yaml_like_text(text in "[a-z:{}\\[\\]\\-&*!|>'\"#,\\n ]{0,200}") {
        let _ = check(text.as_bytes(), Path::new("spec.yaml"), &MemoryFiles::new(), &LoadOptions::default());
    }

    #[test]
    fn never_panics_on_random_well_formed_yaml(doc in yaml_value(vocabulary()), seed in any::<u64>()) {
        let text = emit(&doc, &mut Dice(seed));
        let files = MemoryFiles::new().with("compose.yml", "services:\n  web:\n    image: nginx:1\n");
        let r = check(text.as_bytes(), Path::new("spec.yaml"), &files, &LoadOptions::default());
        assert_no_internal_error(&r);
    }

    /// Valid specs with one part replaced by random YAML: the validator
    /// reports, the model never disagrees with the schema.
    #[test]
    fn never_panics_on_damaged_examples(which in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), with in yaml_value(vocabulary()), seed in any::<u64>()) {
        let docs = example_documents();
        let (path, mut doc) = docs[which.index(docs.len())].clone();
        let mut pointers = Vec::new();
        leaves_and_nodes(&doc, String::new(), &mut pointers);
        let target = &pointers[at.index(pointers.len())];
        if let Some(slot) = doc.pointer_mut(target) {
            *slot = with;
        }
        let text = emit(&doc, &mut Dice(seed));
        let files = DiskFiles::new(path.parent().unwrap(), 1 << 20).unwrap();
        let r = check(text.as_bytes(), &path, &files, &LoadOptions::default());
        assert_no_internal_error(&r);
    }

    #[test]
    fn hash_ignores_key_order_comments_quoting_and_layout(which in any::<prop::sample::Index>(), seed in any::<u64>()) {
        let docs = example_documents();
        let (path, doc) = &docs[which.index(docs.len())];
        let original = check_text(&std::fs::read_to_string(path).unwrap(), path).unwrap();
        let text = emit(doc, &mut Dice(seed));
        let reformatted = check_text(&text, path).unwrap_or_else(|d| panic!("{text}\n{d:?}"));
        prop_assert_eq!(&original, &reformatted);
        prop_assert_eq!(state(&original), state(&reformatted));
    }

    #[test]
    fn hash_changes_when_any_field_changes(which in any::<prop::sample::Index>(), at in any::<prop::sample::Index>()) {
        let docs = example_documents();
        let (path, _) = &docs[which.index(docs.len())];
        let spec = check_text(&std::fs::read_to_string(path).unwrap(), path).unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        let mut leaves = Vec::new();
        scalar_leaves(&json, String::new(), &mut leaves);
        let pointer = &leaves[at.index(leaves.len())];
        let mut changed = json.clone();
        let slot = changed.pointer_mut(pointer).unwrap();
        *slot = match slot.take() {
            Value::String(s) => Value::String(format!("{s}z")),
            Value::Bool(b) => Value::Bool(!b),
            Value::Number(n) => Value::from(n.as_u64().map_or(0, |n| n + 1)),
            other => other,
        };
        let changed: Spec = match serde_json::from_value(changed) {
            Ok(s) => s,
            // Not a value of the model (an enum, a duration): nothing to hash.
            Err(_) => return Err(TestCaseError::reject("not a valid model")),
        };
        prop_assume!(changed != spec);
        let before = state(&spec);
        let after = desired_state(&changed, &secrets_for(&spec, ""));
        prop_assert_ne!(before.total, after.total, "{} changed", pointer);
        if pointer.starts_with("/app/") {
            prop_assert_ne!(before.app, after.app, "{} changed", pointer);
        }
        if pointer.starts_with("/monitors/") {
            prop_assert_ne!(before.monitors, after.monitors, "{} changed", pointer);
        }
        if pointer.starts_with("/dns/records/") {
            prop_assert_ne!(before.records, after.records, "{} changed", pointer);
        }
    }

    #[test]
    fn hash_changes_when_a_secret_value_changes(which in any::<prop::sample::Index>(), pick in any::<prop::sample::Index>()) {
        let specs: Vec<Spec> = example_documents()
            .into_iter()
            .map(|(path, _)| check_text(&std::fs::read_to_string(&path).unwrap(), &path).unwrap())
            .filter(|s| !s.secrets.is_empty())
            .collect();
        let spec = specs[which.index(specs.len())].clone();
        let names: Vec<&String> = spec.secrets.keys().collect();
        let name = names[pick.index(names.len())].clone();
        let base = secrets_for(&spec, "");
        let changed = ResolvedSecrets::from_values(
            FingerprintKey::from_bytes([42; 32]),
            SecretSource::Env,
            spec.secrets.keys().map(|n| {
                let v = if *n == name { format!("value-of-{n}-rotated") } else { format!("value-of-{n}") };
                (n.clone(), SecretValue::new(v), SecretSource::Env)
            }),
        );
        let (a, b) = (desired_state(&spec, &base), desired_state(&spec, &changed));
        prop_assert_ne!(a.total, b.total);
        if spec.app_secret_names().contains(name.as_str()) {
            prop_assert_ne!(a.app, b.app);
        } else {
            prop_assert_eq!(a.app, b.app);
        }
        prop_assert_eq!(&a.records, &b.records);
        // Nothing in the state shows the values.
        let text = serde_json::to_string(&b).unwrap();
        prop_assert!(!text.contains("value-of-"));
    }
}

fn scalar_leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            scalar_leaves(
                v,
                format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                out,
            )
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| scalar_leaves(v, format!("{at}/{i}"), out)),
        Value::Null => {}
        _ => out.push(at),
    }
}

fn leaves_and_nodes(v: &Value, at: String, out: &mut Vec<String>) {
    if !at.is_empty() {
        out.push(at.clone());
    }
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            leaves_and_nodes(
                v,
                format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                out,
            )
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| leaves_and_nodes(v, format!("{at}/{i}"), out)),
        _ => {}
    }
}

#[test]
fn the_emitter_round_trips_through_a_yaml_parser() {
    for (_, doc) in example_documents() {
        for seed in 0..50 {
            let text = emit(&doc, &mut Dice(seed));
            let back: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, doc, "{text}");
        }
    }
}

/// A spec that is valid but for `extra`, which goes in place of the
/// marked value.
fn spec_with(place: usize, value: &str) -> String {
    let v = serde_json::to_string(value).unwrap();
    let head = "name: p\ncoolify: {project: a, environment: b, server: c}\n";
    match place % 6 {
        0 => format!("{head}app: {{image: 'n:1', port: 80, domains: [{v}]}}\n"),
        1 => format!("{head}app: {{image: 'n:1', port: 80}}\nmonitors: [{{name: m, url: {v}}}]\n"),
        2 => format!(
            "{head}app: {{image: 'n:1', port: 80, domains: [h.example.com]}}\nverify: {{http: [{{url: {v}}}]}}\n"
        ),
        3 => format!(
            "{head}app: {{image: 'n:1', port: 80}}\nnotifications: {{webhooks: [{{name: w, url: {v}}}]}}\n"
        ),
        4 => format!("{head}app: {{image: 'n:1', port: 80, env: {{URL: {v}}}}}\n"),
        _ => format!("{head}app: {{git: {{repository: {v}}}, port: 80}}\n"),
    }
}

fn all_text(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| {
            format!(
                "{}|{}|{}",
                d.message,
                d.hint.clone().unwrap_or_default(),
                d.path
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn diagnostics(text: &str) -> Vec<Diagnostic> {
    match check(
        text.as_bytes(),
        Path::new("spec.yaml"),
        &MemoryFiles::new(),
        &LoadOptions::default(),
    ) {
        Ok(c) => c.warnings,
        Err(d) => d,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// A password written into any URL of a spec is refused, and never
    /// appears in a diagnostic.
    #[test]
    fn credentials_in_urls_are_refused_and_never_shown(
        place in 0usize..6,
        user in "[a-z]{1,8}",
        pw in "[A-Za-z0-9]{6,16}",
        path in "(/[a-z]{1,6}){0,2}",
    ) {
        let password = format!("Pw{pw}");
        let url = format!("https://{user}:{password}@h.example.com{path}");
        let diags = diagnostics(&spec_with(place, &url));
        prop_assert!(diags.iter().any(Diagnostic::is_error), "{diags:?}");
        let text = all_text(&diags);
        prop_assert!(!text.contains(&password), "{text}");
        prop_assert!(text.contains(&format!("{user}:***@")), "{text}");
    }

    /// A label mixing Latin and Cyrillic letters is refused wherever a
    /// host name goes, and the hint gives its punycode.
    #[test]
    fn mixed_script_names_are_refused_with_their_punycode(
        place in 0usize..4,
        latin in "[a-z]{1,6}",
        cyrillic in "[абвгдежзиклмнопрстуфхцчшщ]{1,6}",
        latin_first in any::<bool>(),
    ) {
        let label = if latin_first { format!("{latin}{cyrillic}") } else { format!("{cyrillic}{latin}") };
        let host = format!("{label}.example.com");
        let value = if place == 0 { host.clone() } else { format!("https://{host}/") };
        let diags = diagnostics(&spec_with(place, &value));
        let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
        prop_assert!(!errors.is_empty(), "{diags:?}");
        prop_assert!(errors.iter().any(|d| d.message.contains("mixes") && d.hint.as_deref().unwrap_or_default().contains("xn--")), "{diags:?}");
    }

    /// Control, bidirectional and zero-width characters never reach a
    /// diagnostic as themselves.
    #[test]
    fn control_characters_are_escaped_in_every_message(
        place in 0usize..6,
        before in "[a-z.:/]{0,8}",
        c in prop::sample::select(vec!['\u{202e}', '\u{200b}', '\u{1b}', '\u{7}', '\u{2066}', '\u{feff}', '\r', '\u{9b}']),
        after in "[a-z.]{0,8}",
    ) {
        let value = format!("{before}{c}{after}");
        for text in [spec_with(place, &value), format!("name: p\ncoolify: {{project: a, environment: b, server: c}}\napp: {{image: {}, port: 80, name: {}}}\n", serde_json::to_string(&value).unwrap(), serde_json::to_string(&value).unwrap())] {
            let diags = diagnostics(&text);
            let shown = all_text(&diags);
            prop_assert!(!shown.chars().any(|ch| ch != '\n' && fabrik::text::is_unsafe(ch)), "{shown:?}");
        }
    }

    /// Whatever a template parameter holds, the compose file it renders
    /// has the template's structure: a value is refused, or stays one value.
    #[test]
    fn template_values_never_change_the_rendered_structure(
        value in prop_oneof![
            "[ -~]{0,30}",
            "[a-z]{1,8}(:[0-9.]{1,5})?(\n {0,6}[a-z_]{1,10}: ?[a-z]{0,5}){0,2}",
            Just("mariadb:11.8\n    privileged: true".to_owned()),
            Just("x\"\n  evil: 1".to_owned()),
        ],
        which in prop::sample::select(vec!["mariadb_image", "wordpress_image", "table_prefix"]),
    ) {
        let text = format!(
            "name: p\ncoolify: {{project: a, environment: b, server: c}}\ntemplate:\n  name: wordpress\n  params:\n    domain: blog.example.com\n    {which}: {}\n",
            serde_json::to_string(&value).unwrap()
        );
        if let Ok(c) = check(text.as_bytes(), Path::new("spec.yaml"), &MemoryFiles::new(), &LoadOptions::default()) {
            let fabrik::spec::model::AppSource::Compose(compose) = &c.spec.app.source else {
                panic!("compose");
            };
            let doc: Value = serde_yaml::from_str(compose.text().unwrap()).unwrap();
            let services: Vec<&String> = doc["services"].as_object().unwrap().keys().collect();
            prop_assert_eq!(services, vec!["db", "wordpress"]);
            let db: Vec<&String> = doc["services"]["db"].as_object().unwrap().keys().collect();
            prop_assert_eq!(db, vec!["environment", "healthcheck", "image", "restart", "volumes"]);
            let wp = doc["services"]["wordpress"].as_object().unwrap();
            prop_assert_eq!(wp["environment"].as_object().unwrap().len(), 5);
            prop_assert!(wp.get("privileged").is_none());
        }
    }
}
