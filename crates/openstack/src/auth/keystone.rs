//! Keystone v3 `POST /v3/auth/tokens`: request bodies, reply parsing, catalog.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{AuthOptions, AuthType, ConfigError};

/// The domain keystoneauth/osc assume when a name needs a domain and none is
/// given (`OS_DEFAULT_DOMAIN` in osc defaults to it too).
const DEFAULT_DOMAIN_ID: &str = "default";

/// `{auth_url}/v3/auth/tokens`, whether or not `auth_url` ends in `/v3`.
pub(crate) fn tokens_url(auth_url: &str) -> Result<reqwest::Url, ConfigError> {
    let base = auth_url.trim_end_matches('/');
    let base = if base.ends_with("/v3") { base.to_owned() } else { format!("{base}/v3") };
    reqwest::Url::parse(&format!("{base}/auth/tokens")).map_err(|_| ConfigError::InvalidValue {
        option: "auth_url",
        value: auth_url.to_owned(),
        expected: "an http:// or https:// URL",
    })
}

/// `{"id": id}` when the id is set, else `{"name": name}` plus `qualifier`
/// (a name needs its domain, an application credential name its user).
fn by_id_or_name(
    id: &Option<String>,
    name: &Option<String>,
    qualifier: Option<(&str, Value)>,
) -> Map<String, Value> {
    let mut m = Map::new();
    match id {
        Some(id) => {
            m.insert("id".into(), json!(id));
        }
        None => {
            m.insert("name".into(), json!(name));
            if let Some((key, value)) = qualifier {
                m.insert(key.into(), value);
            }
        }
    }
    m
}

/// A domain by id or name; the default domain when neither is set.
fn domain(id: &Option<String>, name: &Option<String>) -> Value {
    if id.is_none() && name.is_none() {
        return json!({ "id": DEFAULT_DOMAIN_ID });
    }
    Value::Object(by_id_or_name(id, name, None))
}

/// The user by id, or by name with its domain.
fn user(o: &AuthOptions) -> Map<String, Value> {
    let domain = domain(&o.user_domain_id, &o.user_domain_name);
    by_id_or_name(&o.user_id, &o.username, Some(("domain", domain)))
}

/// The project (by id, or by name with its domain), else the domain, to
/// scope to; `None` for an unscoped token.
fn scope(o: &AuthOptions) -> Option<Value> {
    if o.project_id.is_some() || o.project_name.is_some() {
        let domain = domain(&o.project_domain_id, &o.project_domain_name);
        let project = by_id_or_name(&o.project_id, &o.project_name, Some(("domain", domain)));
        return Some(json!({ "project": project }));
    }
    if o.domain_id.is_some() || o.domain_name.is_some() {
        let domain = by_id_or_name(&o.domain_id, &o.domain_name, None);
        return Some(json!({ "domain": domain }));
    }
    None
}

/// The JSON body of `POST /v3/auth/tokens` for these options. Holds secrets:
/// never log it.
pub(crate) fn auth_body(o: &AuthOptions) -> Value {
    let (identity, scoped) = match o.effective_auth_type() {
        AuthType::ApplicationCredential => {
            let mut ac = by_id_or_name(
                &o.application_credential_id,
                &o.application_credential_name,
                Some(("user", Value::Object(user(o)))),
            );
            let secret = o.application_credential_secret.as_ref().map(|s| s.expose());
            ac.insert("secret".into(), json!(secret));
            // An application credential carries its own scope.
            (json!({ "methods": ["application_credential"], "application_credential": ac }), false)
        }
        AuthType::Token => {
            let token = o.token.as_ref().map(|t| t.expose());
            (json!({ "methods": ["token"], "token": { "id": token } }), true)
        }
        AuthType::Password | AuthType::NoAuth => {
            let mut u = user(o);
            let password = o.password.as_ref().map(|p| p.expose());
            u.insert("password".into(), json!(password));
            (json!({ "methods": ["password"], "password": { "user": u } }), true)
        }
    };
    let mut auth = Map::new();
    auth.insert("identity".into(), identity);
    if scoped {
        if let Some(s) = scope(o) {
            auth.insert("scope".into(), s);
        }
    }
    json!({ "auth": auth })
}

/// One service in the catalog.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CatalogEntry {
    #[serde(rename = "type", default)]
    pub service_type: String,
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

/// One endpoint of a service.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CatalogEndpoint {
    #[serde(default)]
    pub interface: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub region_id: Option<String>,
    pub url: String,
}

#[derive(Debug, Deserialize)]
struct TokenReply {
    token: TokenBody,
}

#[derive(Debug, Deserialize)]
struct TokenBody {
    expires_at: Option<String>,
    issued_at: Option<String>,
    #[serde(default)]
    catalog: Option<Vec<CatalogEntry>>,
}

/// What the client keeps from a token reply (the token itself comes from the
/// `X-Subject-Token` header).
#[derive(Debug)]
pub(crate) struct TokenInfo {
    /// How long the token is valid, measured from when it was issued. Using
    /// the token's own issued/expiry pair makes renewal immune to clock skew
    /// between this host and Keystone.
    pub lifetime: Option<Duration>,
    pub catalog: Vec<CatalogEntry>,
}

pub(crate) fn parse_token_reply(body: &[u8]) -> Result<TokenInfo, String> {
    let reply: TokenReply = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let expires = reply.token.expires_at.as_deref().and_then(crate::time::parse_timestamp);
    let issued = reply
        .token
        .issued_at
        .as_deref()
        .and_then(crate::time::parse_timestamp)
        .or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64()));
    let lifetime = match (expires, issued) {
        (Some(e), Some(i)) => Some(Duration::from_secs_f64((e - i).max(0.0))),
        _ => None,
    };
    Ok(TokenInfo { lifetime, catalog: reply.token.catalog.unwrap_or_default() })
}

/// The URL of the first endpoint of `service_type` with this interface (and
/// region, when given).
pub(crate) fn find_endpoint<'a>(
    catalog: &'a [CatalogEntry],
    service_type: &str,
    interface: &str,
    region: Option<&str>,
) -> Option<&'a str> {
    catalog
        .iter()
        .filter(|s| s.service_type == service_type)
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.interface == interface)
        .find(|e| match region {
            None => true,
            Some(r) => e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r),
        })
        .map(|e| e.url.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_url_variants() {
        for u in ["http://ks:5000", "http://ks:5000/", "http://ks:5000/v3", "http://ks:5000/v3/"] {
            assert_eq!(tokens_url(u).unwrap().as_str(), "http://ks:5000/v3/auth/tokens");
        }
        assert_eq!(
            tokens_url("https://h/identity").unwrap().as_str(),
            "https://h/identity/v3/auth/tokens"
        );
    }

    #[test]
    fn password_body_with_project_scope_and_default_domains() {
        let o = AuthOptions {
            auth_url: Some("http://ks".into()),
            username: Some("kuryr".into()),
            password: Some("pw".into()),
            project_name: Some("service".into()),
            ..Default::default()
        };
        assert_eq!(
            auth_body(&o),
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "kuryr", "domain": {"id": "default"}, "password": "pw"}}},
                "scope": {"project": {"name": "service", "domain": {"id": "default"}}}
            }})
        );
    }

    #[test]
    fn password_body_with_ids_and_domain_scope() {
        let o = AuthOptions {
            user_id: Some("u1".into()),
            username: Some("ignored".into()),
            password: Some("pw".into()),
            domain_name: Some("D".into()),
            ..Default::default()
        };
        assert_eq!(
            auth_body(&o),
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "id": "u1", "password": "pw"}}},
                "scope": {"domain": {"name": "D"}}
            }})
        );
        let o = AuthOptions {
            username: Some("u".into()),
            user_domain_name: Some("UD".into()),
            password: Some("pw".into()),
            project_id: Some("p1".into()),
            project_name: Some("ignored".into()),
            ..Default::default()
        };
        let b = auth_body(&o);
        assert_eq!(b["auth"]["scope"], json!({"project": {"id": "p1"}}));
        assert_eq!(b["auth"]["identity"]["password"]["user"]["domain"], json!({"name": "UD"}));
    }

    #[test]
    fn app_credential_bodies_are_unscoped() {
        let o = AuthOptions {
            auth_type: Some(AuthType::ApplicationCredential),
            application_credential_id: Some("ac1".into()),
            application_credential_secret: Some("s".into()),
            project_name: Some("ignored".into()),
            ..Default::default()
        };
        assert_eq!(
            auth_body(&o),
            json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": "ac1", "secret": "s"}}}})
        );
        let o = AuthOptions {
            auth_type: Some(AuthType::ApplicationCredential),
            application_credential_name: Some("mine".into()),
            application_credential_secret: Some("s".into()),
            username: Some("u".into()),
            user_domain_id: Some("d".into()),
            ..Default::default()
        };
        assert_eq!(
            auth_body(&o)["auth"]["identity"]["application_credential"],
            json!({"name": "mine", "secret": "s", "user": {"name": "u", "domain": {"id": "d"}}})
        );
    }

    #[test]
    fn token_body() {
        let o = AuthOptions {
            token: Some("tok".into()),
            project_id: Some("p".into()),
            ..Default::default()
        };
        assert_eq!(
            auth_body(&o),
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "tok"}},
                "scope": {"project": {"id": "p"}}}})
        );
    }

    #[test]
    fn catalog_lookup() {
        let reply = br#"{"token": {
            "expires_at": "2026-11-28T03:00:00.000000Z",
            "issued_at": "2026-11-28T02:00:00.000000Z",
            "catalog": [
              {"type": "identity", "endpoints": [{"interface": "public", "region_id": "R1", "url": "http://ks"}]},
              {"type": "network", "name": "neutron", "endpoints": [
                {"interface": "public", "region_id": "R1", "region": "R1", "url": "http://n1-pub"},
                {"interface": "internal", "region_id": "R1", "url": "http://n1-int"},
                {"interface": "public", "region_id": "R2", "url": "http://n2-pub"}
              ]}
            ],
            "extra": {"ignored": true}
        }}"#;
        let info = parse_token_reply(reply).unwrap();
        assert_eq!(info.lifetime, Some(Duration::from_secs(3600)));
        let c = &info.catalog;
        assert_eq!(find_endpoint(c, "network", "public", None), Some("http://n1-pub"));
        assert_eq!(find_endpoint(c, "network", "public", Some("R2")), Some("http://n2-pub"));
        assert_eq!(find_endpoint(c, "network", "internal", Some("R1")), Some("http://n1-int"));
        assert_eq!(find_endpoint(c, "network", "admin", None), None);
        assert_eq!(find_endpoint(c, "compute", "public", None), None);
    }

    #[test]
    fn unscoped_token_has_empty_catalog() {
        let info = parse_token_reply(br#"{"token": {"expires_at": null}}"#).unwrap();
        assert!(info.catalog.is_empty());
        assert_eq!(info.lifetime, None);
        assert!(parse_token_reply(b"{}").is_err());
    }
}
