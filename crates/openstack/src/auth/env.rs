//! [`AuthOptions`] from the `OS_*` environment variables, as the
//! `openstack` CLI reads them.

use std::path::PathBuf;
use std::time::Duration;

use super::{AuthOptions, ConfigError};

impl AuthOptions {
    /// Reads the `OS_*` variables of the process environment.
    ///
    /// Fails only on unparsable values (`OS_AUTH_TYPE`, `OS_INTERFACE`,
    /// `OS_INSECURE`, `OS_TIMEOUT`); missing values are left unset.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Like [`AuthOptions::from_env`], with a lookup function (for tests).
    ///
    /// Empty values count as unset. `OS_NEUTRON_ENDPOINT` wins over
    /// `OS_ENDPOINT`; `OS_TENANT_NAME`/`OS_TENANT_ID` are fallbacks for the
    /// project.
    pub fn from_env_with<F>(lookup: F) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let first = |names: &[&str]| names.iter().find_map(|n| get(n));
        Ok(AuthOptions {
            auth_type: get("OS_AUTH_TYPE").map(|v| v.parse()).transpose()?,
            endpoint: first(&["OS_NEUTRON_ENDPOINT", "OS_ENDPOINT"]),
            region_name: get("OS_REGION_NAME"),
            interface: get("OS_INTERFACE").map(|v| v.parse()).transpose()?,
            cafile: get("OS_CACERT").map(PathBuf::from),
            certfile: get("OS_CERT").map(PathBuf::from),
            keyfile: get("OS_KEY").map(PathBuf::from),
            insecure: get("OS_INSECURE")
                .map(|v| parse_bool("insecure", &v))
                .transpose()?
                .unwrap_or(false),
            timeout: get("OS_TIMEOUT").map(|v| parse_seconds("timeout", &v)).transpose()?,
            ..AuthOptions::credentials_from(|name| {
                get(&format!("OS_{}", name.to_ascii_uppercase()))
            })
        })
    }
}

pub(crate) fn parse_bool(option: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(ConfigError::InvalidValue {
            option,
            value: value.to_owned(),
            expected: "true or false",
        }),
    }
}

pub(crate) fn parse_seconds(option: &'static str, value: &str) -> Result<Duration, ConfigError> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| ConfigError::InvalidValue {
            option,
            value: value.to_owned(),
            expected: "a positive number of seconds",
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthType, Interface};
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<AuthOptions, ConfigError> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AuthOptions::from_env_with(move |k| map.get(k).cloned())
    }

    #[test]
    fn env_password() {
        let o = env(&[
            ("OS_AUTH_URL", "http://ks:5000/v3"),
            ("OS_USERNAME", "admin"),
            ("OS_PASSWORD", "pa55w0rd"),
            ("OS_PROJECT_NAME", "admin"),
            ("OS_USER_DOMAIN_NAME", "Default"),
            ("OS_PROJECT_DOMAIN_NAME", "Default"),
            ("OS_REGION_NAME", "RegionOne"),
            ("OS_INTERFACE", "internal"),
            ("OS_CACERT", "/etc/ca.pem"),
            ("OS_INSECURE", "false"),
            ("OS_USER_ID", ""),
        ])
        .unwrap();
        assert_eq!(o.effective_auth_type(), AuthType::Password);
        assert_eq!(o.auth_url.as_deref(), Some("http://ks:5000/v3"));
        assert_eq!(o.password.as_ref().unwrap().expose(), "pa55w0rd");
        assert_eq!(o.user_id, None, "empty values count as unset");
        assert_eq!(o.interface, Some(Interface::Internal));
        assert_eq!(o.cafile, Some(PathBuf::from("/etc/ca.pem")));
        assert!(!o.insecure);
        o.validate().unwrap();
        let dbg = format!("{o:?}");
        assert!(!dbg.contains("pa55w0rd"), "{dbg}");
    }

    #[test]
    fn env_tenant_fallback_and_neutron_endpoint() {
        let o = env(&[
            ("OS_TENANT_NAME", "demo"),
            ("OS_ENDPOINT", "http://generic:9696"),
            ("OS_NEUTRON_ENDPOINT", "http://neutron:9696"),
            ("OS_AUTH_TYPE", "noauth"),
            ("OS_INSECURE", "True"),
            ("OS_TIMEOUT", "2.5"),
        ])
        .unwrap();
        assert_eq!(o.project_name.as_deref(), Some("demo"));
        assert_eq!(o.endpoint.as_deref(), Some("http://neutron:9696"));
        assert_eq!(o.auth_type, Some(AuthType::NoAuth));
        assert!(o.insecure);
        assert_eq!(o.timeout, Some(Duration::from_millis(2500)));
        o.validate().unwrap();
    }

    #[test]
    fn env_bad_values() {
        let e = env(&[("OS_INSECURE", "maybe")]).unwrap_err();
        assert_eq!(e.to_string(), "invalid value \"maybe\" for insecure: expected true or false");
        assert!(env(&[("OS_AUTH_TYPE", "kerberos")]).is_err());
        assert!(env(&[("OS_INTERFACE", "x")]).is_err());
        assert!(env(&[("OS_TIMEOUT", "-1")]).is_err());
    }

    #[test]
    fn env_app_credential_and_token() {
        let o = env(&[
            ("OS_AUTH_URL", "http://ks:5000"),
            ("OS_APPLICATION_CREDENTIAL_ID", "ac"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "s3"),
        ])
        .unwrap();
        assert_eq!(o.effective_auth_type(), AuthType::ApplicationCredential);
        o.validate().unwrap();
        let o = env(&[("OS_TOKEN", "tok"), ("OS_ENDPOINT", "http://n:9696")]).unwrap();
        assert_eq!(o.effective_auth_type(), AuthType::Token);
        o.validate().unwrap();
    }
}
