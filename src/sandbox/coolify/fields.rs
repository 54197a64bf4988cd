//! Request fields the Coolify API accepts, per endpoint and per version, as
//! the controllers' `$allowedFields` lists them (not as the OpenAPI file
//! does: the controllers are what answer "This field is not allowed.").
//!
//! Read from `app/Http/Controllers/Api/ApplicationsController.php` (`AC`)
//! and `ServicesController.php` (`SC`) at v4.0.0-beta.474, v4.1.0, v4.2.0,
//! v4.3.10 and 379abb25 (4.3.11):
//!
//! - application create, one list for every variant: `AC:1014 @b474`,
//!   `AC:913 @4.1.0` (81 fields), `AC:1123 @4.2.0` (97), `AC:1194 @4.3.11`
//!   (108);
//! - application PATCH: `AC:2497 @b474`, `AC:2367 @4.1.0` (71 fields),
//!   `AC:2695 @4.2.0` (86), `AC:2801 @4.3.11` (97), each with
//!   `...self::APPLICATION_SETTING_FIELDS` (`AC:40-62 @4.3.11`) expanded;
//!   4.3.10 has the 4.3.11 lists;
//! - service create `SC:362 @4.3.11` (`tags` from 4.2.0, absent at
//!   `SC:296 @b474`), service PATCH `SC:1177 @4.3.11` (the same at
//!   `SC:940 @b474`).
//!
//! Types follow `sharedDataApplications()` (`bootstrap/helpers/api.php:113-205
//! @4.3.11`).

/// The JSON type a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string.
    Str,
    /// A boolean.
    Bool,
    /// An integer.
    Int,
    /// Laravel's `integer`: an integer or a string of digits
    /// (`health_check_port`).
    IntLike,
    /// Laravel's `numeric`: a number or a numeric string.
    Numeric,
    /// An array of strings.
    StrList,
    /// An array of objects.
    List,
}

/// One accepted field: name and type. Optional fields also accept `null`,
/// as Laravel's `nullable` rules do.
pub(crate) type Field = (&'static str, Kind);

/// The first release whose list has a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Since {
    /// v4.0.0-beta.474 (and 4.1.0, whose lists are the same).
    B474,
    /// 4.2.0.
    V42,
    /// 4.3 (read at 4.3.10 and 4.3.11).
    V43,
}

impl Since {
    fn reached(self, version: (u32, u32, u32)) -> bool {
        match self {
            Self::B474 => true,
            Self::V42 => version >= (4, 2, 0),
            Self::V43 => version >= (4, 3, 0),
        }
    }
}

/// Every field of the application endpoints: name, type, since when create
/// accepts it, since when PATCH does (`None`: never).
const APPLICATION: &[(&str, Kind, Option<Since>, Option<Since>)] = &[
    ("project_uuid", Kind::Str, Some(Since::B474), None),
    ("environment_name", Kind::Str, Some(Since::B474), None),
    ("environment_uuid", Kind::Str, Some(Since::B474), None),
    ("server_uuid", Kind::Str, Some(Since::B474), None),
    ("destination_uuid", Kind::Str, Some(Since::B474), None),
    ("type", Kind::Str, Some(Since::B474), None),
    ("name", Kind::Str, Some(Since::B474), Some(Since::B474)),
    (
        "description",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "is_static",
        Kind::Bool,
        Some(Since::B474),
        Some(Since::B474),
    ),
    ("is_spa", Kind::Bool, Some(Since::B474), Some(Since::B474)),
    (
        "is_auto_deploy_enabled",
        Kind::Bool,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "is_force_https_enabled",
        Kind::Bool,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "is_preview_deployments_enabled",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    ("domains", Kind::Str, Some(Since::B474), Some(Since::B474)),
    (
        "noindex_domains",
        Kind::StrList,
        Some(Since::V43),
        Some(Since::V43),
    ),
    (
        "git_repository",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "git_branch",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "git_commit_sha",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    ("private_key_uuid", Kind::Str, Some(Since::B474), None),
    (
        "docker_registry_image_name",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "docker_registry_image_tag",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "build_pack",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "install_command",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "build_command",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "start_command",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "ports_exposes",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "ports_mappings",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "custom_network_aliases",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "base_directory",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "publish_directory",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_enabled",
        Kind::Bool,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_type",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_command",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_path",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_port",
        Kind::IntLike,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_host",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_method",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_return_code",
        Kind::Numeric,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_scheme",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_response_text",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_interval",
        Kind::Numeric,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_timeout",
        Kind::Numeric,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_retries",
        Kind::Numeric,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "health_check_start_period",
        Kind::Numeric,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "limits_memory",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "limits_memory_swap",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "limits_memory_swappiness",
        Kind::Numeric,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "limits_memory_reservation",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "limits_cpus",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "limits_cpuset",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "limits_cpu_shares",
        Kind::Numeric,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "custom_labels",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "custom_docker_run_options",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "post_deployment_command",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "post_deployment_command_container",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "pre_deployment_command",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "pre_deployment_command_container",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "manual_webhook_secret_github",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "manual_webhook_secret_gitlab",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "manual_webhook_secret_bitbucket",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "manual_webhook_secret_gitea",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    ("redirect", Kind::Str, Some(Since::B474), Some(Since::B474)),
    ("github_app_uuid", Kind::Str, Some(Since::B474), None),
    (
        "instant_deploy",
        Kind::Bool,
        Some(Since::B474),
        Some(Since::B474),
    ),
    ("dockerfile", Kind::Str, Some(Since::B474), None),
    (
        "dockerfile_location",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "docker_compose_location",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    ("docker_compose_raw", Kind::Str, Some(Since::B474), None),
    (
        "docker_compose_custom_start_command",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "docker_compose_custom_build_command",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "docker_compose_domains",
        Kind::List,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "watch_paths",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "use_build_server",
        Kind::Bool,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "use_build_secrets",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "static_image",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "custom_nginx_configuration",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "is_http_basic_auth_enabled",
        Kind::Bool,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "http_basic_auth_username",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "http_basic_auth_password",
        Kind::Str,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "connect_to_docker_network",
        Kind::Bool,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "force_domain_override",
        Kind::Bool,
        Some(Since::B474),
        Some(Since::B474),
    ),
    ("autogenerate_domain", Kind::Bool, Some(Since::B474), None),
    (
        "is_container_label_escape_enabled",
        Kind::Bool,
        Some(Since::B474),
        Some(Since::B474),
    ),
    ("tags", Kind::StrList, Some(Since::V42), None),
    (
        "is_preserve_repository_enabled",
        Kind::Bool,
        Some(Since::B474),
        Some(Since::B474),
    ),
    (
        "preview_url_template",
        Kind::Str,
        Some(Since::V43),
        Some(Since::V43),
    ),
    (
        "max_restart_count",
        Kind::Int,
        Some(Since::V43),
        Some(Since::V43),
    ),
    (
        "is_git_submodules_enabled",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "is_git_lfs_enabled",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "is_git_shallow_clone_enabled",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "disable_build_cache",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "inject_build_args_to_dockerfile",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "include_source_commit_in_build",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "is_env_sorting_enabled",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "is_pr_deployments_public_enabled",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "stop_grace_period",
        Kind::Int,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "docker_images_to_keep",
        Kind::Int,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "is_gzip_enabled",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "is_stripprefix_enabled",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "is_raw_compose_deployment_enabled",
        Kind::Bool,
        Some(Since::V42),
        Some(Since::V42),
    ),
    (
        "is_log_drain_enabled",
        Kind::Bool,
        Some(Since::V43),
        Some(Since::V43),
    ),
    (
        "is_gpu_enabled",
        Kind::Bool,
        Some(Since::V43),
        Some(Since::V43),
    ),
    ("gpu_driver", Kind::Str, Some(Since::V43), Some(Since::V43)),
    ("gpu_count", Kind::Str, Some(Since::V43), Some(Since::V43)),
    (
        "gpu_device_ids",
        Kind::Str,
        Some(Since::V43),
        Some(Since::V43),
    ),
    ("gpu_options", Kind::Str, Some(Since::V43), Some(Since::V43)),
    (
        "is_consistent_container_name_enabled",
        Kind::Bool,
        Some(Since::V43),
        Some(Since::V43),
    ),
    (
        "custom_internal_name",
        Kind::Str,
        Some(Since::V43),
        Some(Since::V43),
    ),
    (
        "dockerfile_target_build",
        Kind::Str,
        None,
        Some(Since::B474),
    ),
];

fn application_fields(version: (u32, u32, u32), patch: bool) -> Vec<Field> {
    APPLICATION
        .iter()
        .filter(|(_, _, create, update)| {
            let since = if patch { update } else { create };
            since.is_some_and(|s| s.reached(version))
        })
        .map(|(name, kind, _, _)| (*name, *kind))
        .collect()
}

/// `POST /applications/{variant}`: one list for every variant.
pub(crate) fn create_application(version: (u32, u32, u32)) -> Vec<Field> {
    application_fields(version, false)
}

/// `PATCH /applications/{uuid}`.
pub(crate) fn update_application(version: (u32, u32, u32)) -> Vec<Field> {
    application_fields(version, true)
}

/// `POST /services` (`tags` from 4.2.0).
pub(crate) fn create_service(version: (u32, u32, u32)) -> Vec<Field> {
    let mut out = vec![
        ("type", Kind::Str),
        ("name", Kind::Str),
        ("description", Kind::Str),
        ("project_uuid", Kind::Str),
        ("environment_name", Kind::Str),
        ("environment_uuid", Kind::Str),
        ("server_uuid", Kind::Str),
        ("destination_uuid", Kind::Str),
        ("instant_deploy", Kind::Bool),
        ("docker_compose_raw", Kind::Str),
        ("urls", Kind::List),
        ("force_domain_override", Kind::Bool),
        ("is_container_label_escape_enabled", Kind::Bool),
    ];
    if Since::V42.reached(version) {
        out.push(("tags", Kind::StrList));
    }
    out
}

/// `PATCH /services/{uuid}`.
pub(crate) const UPDATE_SERVICE: &[Field] = &[
    ("name", Kind::Str),
    ("description", Kind::Str),
    ("instant_deploy", Kind::Bool),
    ("docker_compose_raw", Kind::Str),
    ("connect_to_docker_network", Kind::Bool),
    ("urls", Kind::List),
    ("force_domain_override", Kind::Bool),
    ("is_container_label_escape_enabled", Kind::Bool),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_have_the_controllers_sizes() {
        let count = |v, patch| application_fields(v, patch).len();
        assert_eq!(count((4, 0, 0), false), 81);
        assert_eq!(count((4, 1, 0), false), 81);
        assert_eq!(count((4, 2, 0), false), 97);
        assert_eq!(count((4, 3, 11), false), 108);
        assert_eq!(count((4, 0, 0), true), 71);
        assert_eq!(count((4, 2, 0), true), 86);
        assert_eq!(count((4, 3, 11), true), 97);
        let patch = update_application((4, 3, 11));
        for refused in [
            "dockerfile",
            "docker_compose_raw",
            "autogenerate_domain",
            "tags",
            "server_uuid",
            "destination_uuid",
            "github_app_uuid",
            "environment_name",
        ] {
            assert!(!patch.iter().any(|(n, _)| *n == refused), "{refused}");
        }
        assert!(patch.iter().any(|(n, _)| *n == "dockerfile_target_build"));
        assert!(
            !create_application((4, 3, 11))
                .iter()
                .any(|(n, _)| *n == "dockerfile_target_build")
        );
        assert_eq!(
            create_service((4, 1, 0)).len() + 1,
            create_service((4, 2, 0)).len()
        );
    }
}
