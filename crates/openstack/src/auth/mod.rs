//! Authentication options (keystoneauth style) and Keystone v3 token handling.
//!
//! [`AuthOptions`] can be built in code, from the `OS_*` environment variables
//! the `openstack` CLI reads ([`AuthOptions::from_env`]), or from
//! `clouds.yaml` ([`AuthOptions::from_clouds_yaml`]). Sources combine with
//! [`AuthOptions::merge`]; [`AuthOptions::validate`] names what is missing.

mod clouds;
pub(crate) mod keystone;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use clouds::{clouds_yaml_candidates, secure_yaml_candidates};

use crate::Secret;

/// How to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// Keystone v3 password (`password`, `v3password`).
    Password,
    /// Keystone v3 application credential (`v3applicationcredential`,
    /// `applicationcredential`).
    ApplicationCredential,
    /// Keystone v3 token (`token`, `v3token`). With `auth_url`, the token is
    /// exchanged for a scoped one (and a catalog); without `auth_url`, it is
    /// sent as is to the explicit `endpoint`.
    Token,
    /// No authentication at all (`none`, `noauth`): Neutron's noauth mode,
    /// with an explicit `endpoint`.
    NoAuth,
}

impl AuthType {
    /// The canonical keystoneauth plugin name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::Password => "password",
            AuthType::ApplicationCredential => "v3applicationcredential",
            AuthType::Token => "token",
            AuthType::NoAuth => "none",
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthType {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_'], "")
            .as_str()
        {
            "password" | "v3password" => Ok(AuthType::Password),
            "v3applicationcredential" | "applicationcredential" => {
                Ok(AuthType::ApplicationCredential)
            }
            "token" | "v3token" => Ok(AuthType::Token),
            "none" | "noauth" => Ok(AuthType::NoAuth),
            _ => Err(ConfigError::UnknownAuthType(s.to_owned())),
        }
    }
}

/// Which catalog endpoint interface to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Interface {
    /// `public` (the default).
    #[default]
    Public,
    /// `internal`.
    Internal,
    /// `admin`.
    Admin,
}

impl Interface {
    /// The catalog name of the interface.
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interface {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // keystoneauth also accepts the v2 spellings `publicURL` etc.
        let lower = s.trim().to_ascii_lowercase();
        match lower.strip_suffix("url").unwrap_or(&lower) {
            "public" => Ok(Interface::Public),
            "internal" => Ok(Interface::Internal),
            "admin" => Ok(Interface::Admin),
            _ => Err(ConfigError::InvalidValue {
                option: "interface",
                value: s.to_owned(),
                expected: "public, internal or admin",
            }),
        }
    }
}

/// Configuration problems, each naming the option concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Required options are missing for the chosen auth type.
    #[error("{} {} required for auth_type {auth_type}", missing.join(" and "), if missing.len() == 1 { "is" } else { "are" })]
    Missing {
        /// The auth type being validated.
        auth_type: AuthType,
        /// Missing options; an entry may read `username or user_id`.
        missing: Vec<String>,
    },
    /// `auth_type` names no plugin this crate supports.
    #[error("unknown auth_type {0:?} (expected password, v3applicationcredential, token or none)")]
    UnknownAuthType(String),
    /// An option has a value that cannot be parsed.
    #[error("invalid value {value:?} for {option}: expected {expected}")]
    InvalidValue {
        /// Option name.
        option: &'static str,
        /// The offending value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// No `clouds.yaml` was found in any searched location.
    #[error("no clouds.yaml found (searched: {})", searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    CloudsYamlNotFound {
        /// The locations searched, in order.
        searched: Vec<PathBuf>,
    },
    /// `clouds.yaml` has no entry with this name.
    #[error("cloud {cloud:?} not found in {}", path.display())]
    CloudNotFound {
        /// The cloud name asked for.
        cloud: String,
        /// The file searched.
        path: PathBuf,
    },
    /// A file could not be read or parsed.
    #[error("cannot use {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The TLS settings could not be applied.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// Authentication and connection options, named as in keystoneauth.
///
/// Every field is optional; [`AuthOptions::validate`] checks that the ones the
/// effective [`AuthType`] needs are present. `Debug` redacts secrets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthOptions {
    /// Auth plugin; when unset it is inferred (see [`AuthOptions::effective_auth_type`]).
    pub auth_type: Option<AuthType>,
    /// Keystone URL, with or without the `/v3` suffix.
    pub auth_url: Option<String>,
    /// User name (needs a user domain; `default` is assumed when none is set).
    pub username: Option<String>,
    /// User id.
    pub user_id: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// Domain name of the user.
    pub user_domain_name: Option<String>,
    /// Domain id of the user.
    pub user_domain_id: Option<String>,
    /// Project name to scope to.
    pub project_name: Option<String>,
    /// Project id to scope to.
    pub project_id: Option<String>,
    /// Domain name of the project (`default` is assumed for a project name
    /// when neither this nor `project_domain_id` is set).
    pub project_domain_name: Option<String>,
    /// Domain id of the project.
    pub project_domain_id: Option<String>,
    /// Domain name to scope to (domain scope, when no project is set).
    pub domain_name: Option<String>,
    /// Domain id to scope to (domain scope, when no project is set).
    pub domain_id: Option<String>,
    /// Application credential id.
    pub application_credential_id: Option<String>,
    /// Application credential name (needs the user as well).
    pub application_credential_name: Option<String>,
    /// Application credential secret.
    pub application_credential_secret: Option<Secret>,
    /// An existing token.
    pub token: Option<Secret>,
    /// Explicit Neutron endpoint; overrides the catalog. Required for noauth.
    pub endpoint: Option<String>,
    /// Region for the catalog lookup.
    pub region_name: Option<String>,
    /// Catalog interface; `public` when unset.
    pub interface: Option<Interface>,
    /// CA bundle (PEM) that replaces the system roots.
    pub cafile: Option<PathBuf>,
    /// Client certificate (PEM), possibly with its key.
    pub certfile: Option<PathBuf>,
    /// Client key (PEM), when not in `certfile`.
    pub keyfile: Option<PathBuf>,
    /// Skip TLS verification. Off by default; never for production.
    pub insecure: bool,
    /// Whole-request timeout (60 s when unset).
    pub timeout: Option<Duration>,
}

macro_rules! merge_fields {
    ($self:ident, $other:ident; $($field:ident),* $(,)?) => {
        AuthOptions {
            $($field: $self.$field.or($other.$field),)*
            insecure: $self.insecure || $other.insecure,
        }
    };
}

impl AuthOptions {
    /// Options for Neutron's noauth mode at `endpoint`.
    pub fn noauth(endpoint: impl Into<String>) -> Self {
        AuthOptions {
            auth_type: Some(AuthType::NoAuth),
            endpoint: Some(endpoint.into()),
            ..AuthOptions::default()
        }
    }

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
            auth_url: get("OS_AUTH_URL"),
            username: get("OS_USERNAME"),
            user_id: get("OS_USER_ID"),
            password: get("OS_PASSWORD").map(Secret::from),
            user_domain_name: get("OS_USER_DOMAIN_NAME"),
            user_domain_id: get("OS_USER_DOMAIN_ID"),
            project_name: first(&["OS_PROJECT_NAME", "OS_TENANT_NAME"]),
            project_id: first(&["OS_PROJECT_ID", "OS_TENANT_ID"]),
            project_domain_name: get("OS_PROJECT_DOMAIN_NAME"),
            project_domain_id: get("OS_PROJECT_DOMAIN_ID"),
            domain_name: get("OS_DOMAIN_NAME"),
            domain_id: get("OS_DOMAIN_ID"),
            application_credential_id: get("OS_APPLICATION_CREDENTIAL_ID"),
            application_credential_name: get("OS_APPLICATION_CREDENTIAL_NAME"),
            application_credential_secret: get("OS_APPLICATION_CREDENTIAL_SECRET")
                .map(Secret::from),
            token: get("OS_TOKEN").map(Secret::from),
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
            timeout: get("OS_TIMEOUT")
                .map(|v| parse_seconds("timeout", &v))
                .transpose()?,
        })
    }

    /// Loads cloud `cloud_name` from the first `clouds.yaml` found where
    /// openstacksdk looks (`$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
    /// `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`), with
    /// the matching `secure.yaml` (same places, `$OS_CLIENT_SECURE_FILE`
    /// first) merged over it.
    pub fn from_clouds_yaml(cloud_name: &str) -> Result<Self, ConfigError> {
        clouds::load(
            cloud_name,
            &clouds_yaml_candidates(),
            &secure_yaml_candidates(),
        )
    }

    /// Like [`AuthOptions::from_clouds_yaml`] with explicit candidate files,
    /// in search order (the first existing one is used).
    pub fn from_clouds_yaml_in(
        cloud_name: &str,
        clouds_files: &[PathBuf],
        secure_files: &[PathBuf],
    ) -> Result<Self, ConfigError> {
        clouds::load(cloud_name, clouds_files, secure_files)
    }

    /// Field-wise merge: values set in `self` win, unset ones come from
    /// `other`. `insecure` is true if either is.
    pub fn merge(self, other: AuthOptions) -> AuthOptions {
        merge_fields!(self, other;
            auth_type, auth_url, username, user_id, password, user_domain_name,
            user_domain_id, project_name, project_id, project_domain_name,
            project_domain_id, domain_name, domain_id, application_credential_id,
            application_credential_name, application_credential_secret, token,
            endpoint, region_name, interface, cafile, certfile, keyfile, timeout,
        )
    }

    /// The auth type in force: the explicit one, else inferred as
    /// keystoneauth/osc would: an application credential secret means
    /// `v3applicationcredential`, a token means `token`, an endpoint without
    /// `auth_url` or credentials means `none`, anything else `password`.
    pub fn effective_auth_type(&self) -> AuthType {
        if let Some(t) = self.auth_type {
            return t;
        }
        if self.application_credential_secret.is_some() {
            AuthType::ApplicationCredential
        } else if self.token.is_some() {
            AuthType::Token
        } else if self.auth_url.is_none()
            && self.endpoint.is_some()
            && self.username.is_none()
            && self.user_id.is_none()
        {
            AuthType::NoAuth
        } else {
            AuthType::Password
        }
    }

    /// The catalog interface in force (`public` by default).
    pub fn effective_interface(&self) -> Interface {
        self.interface.unwrap_or_default()
    }

    /// Checks that the options the effective auth type needs are present and
    /// that URLs parse.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let auth_type = self.effective_auth_type();
        let mut missing: Vec<String> = Vec::new();
        let mut need = |ok: bool, what: &str| {
            if !ok {
                missing.push(what.to_owned());
            }
        };
        let user = self.username.is_some() || self.user_id.is_some();
        match auth_type {
            AuthType::Password => {
                need(self.auth_url.is_some(), "auth_url");
                need(user, "username or user_id");
                need(self.password.is_some(), "password");
            }
            AuthType::ApplicationCredential => {
                need(self.auth_url.is_some(), "auth_url");
                need(
                    self.application_credential_id.is_some()
                        || self.application_credential_name.is_some(),
                    "application_credential_id or application_credential_name",
                );
                need(
                    self.application_credential_secret.is_some(),
                    "application_credential_secret",
                );
                if self.application_credential_id.is_none()
                    && self.application_credential_name.is_some()
                {
                    need(user, "username or user_id");
                }
            }
            AuthType::Token => {
                need(self.token.is_some(), "token");
                need(
                    self.auth_url.is_some() || self.endpoint.is_some(),
                    "auth_url or endpoint",
                );
            }
            AuthType::NoAuth => need(self.endpoint.is_some(), "endpoint"),
        }
        if !missing.is_empty() {
            return Err(ConfigError::Missing { auth_type, missing });
        }
        for (option, value) in [("auth_url", &self.auth_url), ("endpoint", &self.endpoint)] {
            if let Some(v) = value {
                check_url(option, v)?;
            }
        }
        Ok(())
    }
}

fn check_url(option: &'static str, value: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        _ => Err(ConfigError::InvalidValue {
            option,
            value: value.to_owned(),
            expected: "an http:// or https:// URL",
        }),
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
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<AuthOptions, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthOptions::from_env_with(move |k| map.get(k).cloned())
    }

    #[test]
    fn auth_type_names() {
        for (s, t) in [
            ("password", AuthType::Password),
            ("v3password", AuthType::Password),
            ("v3applicationcredential", AuthType::ApplicationCredential),
            ("applicationcredential", AuthType::ApplicationCredential),
            ("v3_application_credential", AuthType::ApplicationCredential),
            ("token", AuthType::Token),
            ("v3token", AuthType::Token),
            ("none", AuthType::NoAuth),
            ("noauth", AuthType::NoAuth),
            ("NoAuth", AuthType::NoAuth),
        ] {
            assert_eq!(s.parse::<AuthType>().unwrap(), t, "{s}");
        }
        let err = "saml".parse::<AuthType>().unwrap_err();
        assert!(err.to_string().contains("unknown auth_type \"saml\""));
    }

    #[test]
    fn interface_names() {
        assert_eq!(
            "internal".parse::<Interface>().unwrap(),
            Interface::Internal
        );
        assert_eq!("publicURL".parse::<Interface>().unwrap(), Interface::Public);
        assert_eq!("ADMIN".parse::<Interface>().unwrap(), Interface::Admin);
        assert!("private".parse::<Interface>().is_err());
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
        assert_eq!(
            e.to_string(),
            "invalid value \"maybe\" for insecure: expected true or false"
        );
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

    #[test]
    fn inference_of_noauth() {
        let o = AuthOptions {
            endpoint: Some("http://n:9696".into()),
            ..Default::default()
        };
        assert_eq!(o.effective_auth_type(), AuthType::NoAuth);
        assert_eq!(
            AuthOptions::default().effective_auth_type(),
            AuthType::Password
        );
    }

    #[test]
    fn validation_messages() {
        let o = AuthOptions {
            auth_type: Some(AuthType::Password),
            username: Some("u".into()),
            password: Some("p".into()),
            ..Default::default()
        };
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "auth_url is required for auth_type password"
        );
        let o = AuthOptions {
            auth_type: Some(AuthType::NoAuth),
            ..Default::default()
        };
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "endpoint is required for auth_type none"
        );
        let o = AuthOptions {
            auth_type: Some(AuthType::Password),
            ..Default::default()
        };
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "auth_url and username or user_id and password are required for auth_type password"
        );
        let o = AuthOptions {
            auth_type: Some(AuthType::ApplicationCredential),
            auth_url: Some("http://ks".into()),
            application_credential_name: Some("n".into()),
            application_credential_secret: Some("s".into()),
            ..Default::default()
        };
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "username or user_id is required for auth_type v3applicationcredential"
        );
        let o = AuthOptions {
            auth_type: Some(AuthType::Token),
            token: Some("t".into()),
            ..Default::default()
        };
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "auth_url or endpoint is required for auth_type token"
        );
        let o = AuthOptions::noauth("not a url");
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "invalid value \"not a url\" for endpoint: expected an http:// or https:// URL"
        );
    }

    #[test]
    fn merge_self_wins() {
        let a = AuthOptions {
            username: Some("a".into()),
            region_name: None,
            insecure: false,
            ..Default::default()
        };
        let b = AuthOptions {
            username: Some("b".into()),
            region_name: Some("R2".into()),
            password: Some("pw".into()),
            insecure: true,
            ..Default::default()
        };
        let m = a.merge(b);
        assert_eq!(m.username.as_deref(), Some("a"));
        assert_eq!(m.region_name.as_deref(), Some("R2"));
        assert_eq!(m.password.unwrap().expose(), "pw");
        assert!(m.insecure);
    }
}
