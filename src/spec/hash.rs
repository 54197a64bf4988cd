//! The desired-state hash: what a spec asks for, as digests the planner
//! can compare with the journal.
//!
//! Each digest is blake3 (in `derive_key` mode, with a context string per
//! part, so digests of different parts can never collide) over a canonical
//! JSON form of the resolved spec: object keys sorted, no whitespace,
//! defaults filled in, durations and DNS names normalised. It depends on
//! the meaning of the YAML, not on its key order, comments, quoting or
//! layout. Secrets take part only through their keyed fingerprints, so a
//! changed secret changes the hash while nothing stored reveals, or lets
//! anyone test a guess of, the value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::model::Spec;
use super::secrets::ResolvedSecrets;
use crate::id::Digest;

/// Digests of the whole desired state and of each resource in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredState {
    /// Everything: unchanged means there is nothing to do.
    pub total: Digest,
    /// The application: Coolify target, definition, env (secrets as
    /// fingerprints), and the files it is built from.
    pub app: Digest,
    /// Each DNS record by its key (`dns:A:app.example.com`).
    pub records: BTreeMap<String, Digest>,
    /// Each monitor by its key (`monitor:<name>`).
    pub monitors: BTreeMap<String, Digest>,
}

const TOTAL: &str = "fabrik 2025 spec desired-state total v1";
const APP: &str = "fabrik 2025 spec desired-state app v1";
const RECORD: &str = "fabrik 2025 spec desired-state dns-record v1";
// v2: `retry_interval` and `accepted_status` reach Uptime Kuma since; a
// monitor applied before is updated once.
const MONITOR: &str = "fabrik 2025 spec desired-state monitor v2";

/// The desired state of `spec` with its resolved `secrets`.
pub fn desired_state(spec: &Spec, secrets: &ResolvedSecrets) -> DesiredState {
    let fingerprint = |name: &str| -> Value {
        secrets
            .get(name)
            .map_or(Value::Null, |r| Value::String(r.fingerprint.to_hex()))
    };
    let app_secrets: BTreeMap<&str, Value> = spec
        .app_secret_names()
        .into_iter()
        .map(|n| (n, fingerprint(n)))
        .collect();
    let app = digest(
        APP,
        &json!({
            "deployment": spec.name,
            "coolify": spec.coolify,
            "app": spec.app,
            "secrets": app_secrets,
        }),
    );
    let mut records = BTreeMap::new();
    if let Some(dns) = &spec.dns {
        let zone = dns.zone_name();
        for (key, r) in dns.keyed_records() {
            let mut fields = json!({
                "zone": zone,
                "type": r.kind,
                "name": dns.fqdn(r),
                "content": r.content.trim(),
                "proxied": r.proxied,
                "ttl": r.ttl.api_value(),
            });
            // Only when set: the digests of every other record stay as
            // they were.
            if r.adopt {
                fields["adopt"] = json!(true);
            }
            let d = digest(RECORD, &fields);
            records.insert(key, d);
        }
    }
    let monitors: BTreeMap<String, Digest> = spec
        .monitors
        .iter()
        .map(|m| (m.key(), digest(MONITOR, &json!(m))))
        .collect();
    let mut rest = serde_json::to_value(spec).unwrap_or(Value::Null);
    if let Some(obj) = rest.as_object_mut() {
        obj.remove("app");
        obj.remove("monitors");
        if let Some(dns) = obj.get_mut("dns").and_then(Value::as_object_mut) {
            dns.remove("records");
        }
    }
    let all_secrets: BTreeMap<&str, Value> = spec
        .secrets
        .keys()
        .map(|n| (n.as_str(), fingerprint(n)))
        .collect();
    let total = digest(
        TOTAL,
        &json!({
            "app": app,
            "records": records,
            "monitors": monitors,
            "rest": rest,
            "secrets": all_secrets,
        }),
    );
    DesiredState {
        total,
        app,
        records,
        monitors,
    }
}

fn digest(context: &str, value: &Value) -> Digest {
    let mut h = blake3::Hasher::new_derive_key(context);
    h.update(crate::event::canonical_json(value).as_bytes());
    Digest(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"y": [2, {"d": 1, "c": 2}], "x": "s"}});
        assert_eq!(
            crate::event::canonical_json(&a),
            r#"{"a":{"x":"s","y":[2,{"c":2,"d":1}]},"b":1}"#
        );
    }
}
