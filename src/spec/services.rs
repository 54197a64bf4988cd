//! Coolify's one-click service templates: which `app.service` types exist,
//! their compose services, and which service receives the generated URL.
//!
//! The data is `coolify-services.tsv` beside this file, derived from
//! Coolify's own template list (its header names the Coolify version and
//! the commit it was read from). `validate` refuses a type that is not in
//! it, before anything touches a remote service; the engine can use
//! [`template`] to name the container a service's URL belongs to.

use std::sync::OnceLock;

/// The template list, as shipped.
const DATA: &str = include_str!("coolify-services.tsv");

/// One one-click service template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTemplate {
    /// The type, as `app.service` and `POST /services` take it.
    pub kind: &'static str,
    /// The compose services (containers) it creates, in file order.
    pub services: Vec<&'static str>,
    /// The service that receives the generated URL, when one does.
    pub default_service: Option<&'static str>,
    /// The port that URL carries, when it carries one.
    pub port: Option<u16>,
}

/// The Coolify version the list comes from (`4.3.11`).
pub fn coolify_version() -> &'static str {
    DATA.lines()
        .find_map(|l| l.strip_prefix("# Derived from Coolify "))
        .and_then(|l| l.split(',').next())
        .unwrap_or("unknown")
}

fn all() -> &'static [ServiceTemplate] {
    static ALL: OnceLock<Vec<ServiceTemplate>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut out: Vec<ServiceTemplate> = DATA
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut f = l.split('\t');
                let kind = f.next()?;
                let services = f.next()?.split(',').collect();
                let default_service = f.next().filter(|s| *s != "-");
                let port = f.next().and_then(|p| p.parse().ok());
                Some(ServiceTemplate {
                    kind,
                    services,
                    default_service,
                    port,
                })
            })
            .collect();
        out.sort_by(|a, b| a.kind.cmp(b.kind));
        out
    })
}

/// The template of one-click service type `kind` (exact match).
pub fn template(kind: &str) -> Option<&'static ServiceTemplate> {
    let all = all();
    all.binary_search_by(|t| t.kind.cmp(kind))
        .ok()
        .map(|i| &all[i])
}

/// Every one-click service type, sorted.
pub fn types() -> impl Iterator<Item = &'static str> {
    all().iter().map(|t| t.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_complete_and_well_formed() {
        let lines = DATA
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        assert_eq!(types().count(), lines, "every line reads as a template");
        assert!(lines > 300, "{lines}");
        assert_eq!(coolify_version(), "4.3.11");
        for t in all() {
            assert_eq!(
                DATA.lines()
                    .filter(|l| l.split('\t').next() == Some(t.kind))
                    .count(),
                1
            );
            assert!(!t.services.is_empty() && t.services.iter().all(|s| !s.is_empty()));
            if let Some(d) = t.default_service {
                assert!(t.services.contains(&d), "{}: {d}", t.kind);
            } else {
                assert_eq!(t.port, None, "{}", t.kind);
            }
        }
    }

    #[test]
    fn looks_templates_up() {
        let g = template("ghost").unwrap_or_else(|| panic!("ghost"));
        assert_eq!(g.default_service, Some("ghost"));
        assert_eq!(g.port, Some(2368));
        assert!(template("wordpress-with-mysql").is_some());
        assert!(template("wordpres").is_none());
        assert!(template("Ghost").is_none());
    }
}
