//! Where Kuryr's OpenStack credentials come from, in order of precedence:
//! `[neutron]` in kuryr.conf, then the `OS_*` environment variables, then
//! `clouds.yaml` (the cloud named by `[neutron] cloud` or `OS_CLOUD`) — the
//! way the `openstack` CLI finds them, with the config file on top.

use std::collections::BTreeMap;

use openstack::{AuthOptions, ConfigError};

use crate::config::NeutronOptions;

/// keystoneauth option name in `[neutron]` → the `OS_*` variable that
/// carries the same value, so one parser serves both.
const OPTION_TO_ENV: &[(&str, &str)] = &[
    ("auth_type", "OS_AUTH_TYPE"),
    ("auth_url", "OS_AUTH_URL"),
    ("username", "OS_USERNAME"),
    ("user_id", "OS_USER_ID"),
    ("password", "OS_PASSWORD"),
    ("user_domain_name", "OS_USER_DOMAIN_NAME"),
    ("user_domain_id", "OS_USER_DOMAIN_ID"),
    ("project_name", "OS_PROJECT_NAME"),
    ("project_id", "OS_PROJECT_ID"),
    ("project_domain_name", "OS_PROJECT_DOMAIN_NAME"),
    ("project_domain_id", "OS_PROJECT_DOMAIN_ID"),
    ("domain_name", "OS_DOMAIN_NAME"),
    ("domain_id", "OS_DOMAIN_ID"),
    ("application_credential_id", "OS_APPLICATION_CREDENTIAL_ID"),
    ("application_credential_name", "OS_APPLICATION_CREDENTIAL_NAME"),
    ("application_credential_secret", "OS_APPLICATION_CREDENTIAL_SECRET"),
    ("token", "OS_TOKEN"),
    ("endpoint", "OS_ENDPOINT"),
    ("endpoint_override", "OS_ENDPOINT"),
    ("region_name", "OS_REGION_NAME"),
    ("endpoint_type", "OS_INTERFACE"),
    ("interface", "OS_INTERFACE"),
    ("cafile", "OS_CACERT"),
    ("certfile", "OS_CERT"),
    ("keyfile", "OS_KEY"),
    ("insecure", "OS_INSECURE"),
    ("timeout", "OS_TIMEOUT"),
];

/// Why no usable credentials were found; each names where to fix them.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// `[neutron]` of `kuryr.conf` is wrong.
    #[error("[neutron] in kuryr.conf: {0}")]
    ConfigFile(ConfigError),
    /// An `OS_*` variable is wrong.
    #[error("OS_* environment: {0}")]
    Environment(ConfigError),
    /// The `clouds.yaml` entry is wrong.
    #[error("clouds.yaml cloud {cloud:?}: {source}")]
    CloudsYaml {
        /// The cloud's name (`OS_CLOUD` or `[neutron] cloud`).
        cloud: String,
        /// What is wrong.
        source: ConfigError,
    },
    /// A required option is missing everywhere.
    #[error("incomplete OpenStack credentials: {0} (set it in [neutron] of kuryr.conf, as OS_* variables, or in clouds.yaml with OS_CLOUD)")]
    Incomplete(ConfigError),
}

/// Resolves and validates the credentials; `env` looks up environment
/// variables (a parameter so tests need not touch the process environment).
pub fn resolve<F>(neutron: &NeutronOptions, env: F) -> Result<AuthOptions, CredentialsError>
where
    F: Fn(&str) -> Option<String>,
{
    let from_file = from_option_map(&neutron.auth).map_err(CredentialsError::ConfigFile)?;
    let from_env = AuthOptions::from_env_with(&env).map_err(CredentialsError::Environment)?;
    let cloud = neutron.auth.get("cloud").cloned().or_else(|| env("OS_CLOUD"));
    let mut merged = from_file.merge(from_env);
    if let Some(cloud) = cloud.filter(|c| !c.is_empty()) {
        let from_clouds = AuthOptions::from_clouds_yaml(&cloud)
            .map_err(|source| CredentialsError::CloudsYaml { cloud, source })?;
        merged = merged.merge(from_clouds);
    }
    merged.validate().map_err(CredentialsError::Incomplete)?;
    Ok(merged)
}

fn from_option_map(options: &BTreeMap<String, String>) -> Result<AuthOptions, ConfigError> {
    let mut as_env: BTreeMap<&str, String> = BTreeMap::new();
    for (option, var) in OPTION_TO_ENV {
        if let Some(value) = options.get(*option) {
            as_env.insert(var, value.clone());
        }
    }
    AuthOptions::from_env_with(|name| as_env.get(name).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn config_file_wins_over_environment() {
        let config =
            Config::parse("[neutron]\nauth_type = none\nendpoint = http://127.0.0.1:9696\n")
                .expect("valid");
        let env = env_of(&[("OS_ENDPOINT", "http://other:9696"), ("OS_REGION_NAME", "R1")]);
        let auth = resolve(&config.neutron, env).expect("complete");
        assert_eq!(auth.endpoint.as_deref(), Some("http://127.0.0.1:9696"));
        assert_eq!(auth.region_name.as_deref(), Some("R1"));
    }

    #[test]
    fn environment_alone_is_enough() {
        let config = Config::default();
        let env = env_of(&[
            ("OS_AUTH_URL", "http://127.0.0.1:5000/v3"),
            ("OS_USERNAME", "admin"),
            ("OS_PASSWORD", "pw"),
            ("OS_PROJECT_NAME", "admin"),
            ("OS_USER_DOMAIN_NAME", "Default"),
            ("OS_PROJECT_DOMAIN_NAME", "Default"),
        ]);
        let auth = resolve(&config.neutron, env).expect("complete");
        assert_eq!(auth.username.as_deref(), Some("admin"));
    }

    #[test]
    fn incomplete_credentials_name_the_missing_option() {
        let config =
            Config::parse("[neutron]\nauth_type = password\nusername = kuryr\n").expect("valid");
        let err = resolve(&config.neutron, |_| None).expect_err("incomplete");
        let msg = err.to_string();
        assert!(msg.contains("auth_url"), "{msg}");
        assert!(msg.contains("OS_CLOUD"), "{msg}");
    }

    #[test]
    fn nothing_at_all_is_an_error() {
        let err = resolve(&Config::default().neutron, |_| None).expect_err("nothing");
        assert!(matches!(err, CredentialsError::Incomplete(_)), "{err}");
    }

    #[test]
    fn upstream_endpoint_type_maps_to_interface() {
        let config = Config::parse(
            "[neutron]\nauth_type = none\nendpoint = http://n:9696\nendpoint_type = internal\ninsecure = True\n",
        )
        .expect("valid");
        let auth = resolve(&config.neutron, |_| None).expect("complete");
        assert_eq!(auth.interface, Some(openstack::Interface::Internal));
        assert!(auth.insecure);
    }
}
