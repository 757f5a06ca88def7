//! [`AuthOptions`]: the fields, merging, the effective auth type and
//! validation.

use std::path::PathBuf;
use std::time::Duration;

use super::clouds::{self, clouds_yaml_candidates, secure_yaml_candidates};
use super::{AuthType, ConfigError, Interface};
use crate::Secret;

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

    /// The credential and scope options, each read from `lookup` by its
    /// keystoneauth name (`auth_url`, `username`, ...); everything else is
    /// left unset.
    ///
    /// Both sources use these names: `clouds.yaml` as keys under `auth:`,
    /// the environment as `OS_` plus the name in upper case. Keeping the list
    /// here means a new credential option cannot be read by one source and
    /// forgotten by the other. `tenant_*` are the older names of `project_*`.
    pub(super) fn credentials_from(lookup: impl Fn(&str) -> Option<String>) -> Self {
        AuthOptions {
            auth_url: lookup("auth_url"),
            username: lookup("username"),
            user_id: lookup("user_id"),
            password: lookup("password").map(Secret::from),
            user_domain_name: lookup("user_domain_name"),
            user_domain_id: lookup("user_domain_id"),
            project_name: lookup("project_name").or_else(|| lookup("tenant_name")),
            project_id: lookup("project_id").or_else(|| lookup("tenant_id")),
            project_domain_name: lookup("project_domain_name"),
            project_domain_id: lookup("project_domain_id"),
            domain_name: lookup("domain_name"),
            domain_id: lookup("domain_id"),
            application_credential_id: lookup("application_credential_id"),
            application_credential_name: lookup("application_credential_name"),
            application_credential_secret: lookup("application_credential_secret")
                .map(Secret::from),
            token: lookup("token").map(Secret::from),
            ..AuthOptions::default()
        }
    }

    /// Loads cloud `cloud_name` from the first `clouds.yaml` found where
    /// openstacksdk looks (`$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
    /// `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`), with
    /// the matching `secure.yaml` (same places, `$OS_CLIENT_SECURE_FILE`
    /// first) merged over it.
    pub fn from_clouds_yaml(cloud_name: &str) -> Result<Self, ConfigError> {
        clouds::load(cloud_name, &clouds_yaml_candidates(), &secure_yaml_candidates())
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
                need(self.application_credential_secret.is_some(), "application_credential_secret");
                if self.application_credential_id.is_none()
                    && self.application_credential_name.is_some()
                {
                    need(user, "username or user_id");
                }
            }
            AuthType::Token => {
                need(self.token.is_some(), "token");
                need(self.auth_url.is_some() || self.endpoint.is_some(), "auth_url or endpoint");
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Options of `auth_type`, nothing else set.
    fn of_type(auth_type: AuthType) -> AuthOptions {
        AuthOptions { auth_type: Some(auth_type), ..Default::default() }
    }

    #[test]
    fn inference_of_noauth() {
        let o = AuthOptions { endpoint: Some("http://n:9696".into()), ..Default::default() };
        assert_eq!(o.effective_auth_type(), AuthType::NoAuth);
        assert_eq!(AuthOptions::default().effective_auth_type(), AuthType::Password);
    }

    #[test]
    fn validation_messages() {
        let cases = [
            (
                AuthOptions {
                    username: Some("u".into()),
                    password: Some("p".into()),
                    ..of_type(AuthType::Password)
                },
                "auth_url is required for auth_type password",
            ),
            (of_type(AuthType::NoAuth), "endpoint is required for auth_type none"),
            (
                of_type(AuthType::Password),
                "auth_url and username or user_id and password are required for auth_type password",
            ),
            (
                AuthOptions {
                    auth_url: Some("http://ks".into()),
                    application_credential_name: Some("n".into()),
                    application_credential_secret: Some("s".into()),
                    ..of_type(AuthType::ApplicationCredential)
                },
                "username or user_id is required for auth_type v3applicationcredential",
            ),
            (
                AuthOptions { token: Some("t".into()), ..of_type(AuthType::Token) },
                "auth_url or endpoint is required for auth_type token",
            ),
            (
                AuthOptions::noauth("not a url"),
                "invalid value \"not a url\" for endpoint: expected an http:// or https:// URL",
            ),
        ];
        for (o, message) in cases {
            assert_eq!(o.validate().unwrap_err().to_string(), message);
        }
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
