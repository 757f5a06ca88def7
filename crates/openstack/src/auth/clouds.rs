//! `clouds.yaml` / `secure.yaml` loading, following openstacksdk's layout.

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::{parse_bool, parse_seconds, AuthOptions, ConfigError};

const FILE_NAMES_CLOUDS: &[&str] = &["clouds.yaml", "clouds.yml"];
const FILE_NAMES_SECURE: &[&str] = &["secure.yaml", "secure.yml"];

/// Where `clouds.yaml` is looked for, in order (openstacksdk's order).
pub fn clouds_yaml_candidates() -> Vec<PathBuf> {
    candidates("OS_CLIENT_CONFIG_FILE", FILE_NAMES_CLOUDS)
}

/// Where `secure.yaml` is looked for, in order.
pub fn secure_yaml_candidates() -> Vec<PathBuf> {
    candidates("OS_CLIENT_SECURE_FILE", FILE_NAMES_SECURE)
}

fn candidates(env_var: &str, names: &[&str]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd);
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        dirs.push(PathBuf::from(home).join(".config/openstack"));
    }
    dirs.push(PathBuf::from("/etc/openstack"));

    let mut out = Vec::new();
    if let Some(file) = std::env::var_os(env_var).filter(|f| !f.is_empty()) {
        out.push(PathBuf::from(file));
    }
    for dir in dirs {
        for name in names {
            out.push(dir.join(name));
        }
    }
    out
}

pub(super) fn load(
    cloud: &str,
    clouds_files: &[PathBuf],
    secure_files: &[PathBuf],
) -> Result<AuthOptions, ConfigError> {
    let path = clouds_files
        .iter()
        .find(|p| p.is_file())
        .ok_or_else(|| ConfigError::CloudsYamlNotFound { searched: clouds_files.to_vec() })?;
    let mut entry = cloud_entry(&read_yaml(path)?, cloud).ok_or_else(|| {
        ConfigError::CloudNotFound { cloud: cloud.to_owned(), path: path.clone() }
    })?;
    if let Some(secure_path) = secure_files.iter().find(|p| p.is_file()) {
        if let Some(secret_entry) = cloud_entry(&read_yaml(secure_path)?, cloud) {
            deep_merge(&mut entry, secret_entry);
        }
    }
    from_cloud_entry(&entry)
}

fn read_yaml(path: &Path) -> Result<Value, ConfigError> {
    let file_error = |message: String| ConfigError::File { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    serde_yaml_ng::from_str(&text).map_err(|e| file_error(e.to_string()))
}

fn cloud_entry(doc: &Value, cloud: &str) -> Option<Value> {
    doc.get("clouds")?.get(cloud).cloned()
}

/// Values of `overlay` win; mappings are merged recursively.
fn deep_merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// A scalar as a string (YAML may give numbers or booleans for ids and
/// passwords).
fn scalar(map: &Mapping, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn from_cloud_entry(entry: &Value) -> Result<AuthOptions, ConfigError> {
    let empty = Mapping::new();
    let top = entry.as_mapping().unwrap_or(&empty);
    let auth = top.get("auth").and_then(Value::as_mapping).unwrap_or(&empty);
    // openstacksdk accepts some auth keys at the top level of a cloud too.
    let a = |key: &str| scalar(auth, key).or_else(|| scalar(top, key));
    let t = |key: &str| scalar(top, key);

    let insecure = match (t("insecure"), t("verify")) {
        (Some(v), _) => parse_bool("insecure", &v)?,
        (None, Some(v)) => !parse_bool("verify", &v)?,
        (None, None) => false,
    };
    let region_name = t("region_name").or_else(|| {
        top.get("regions").and_then(Value::as_sequence).and_then(|r| r.first()).and_then(
            |r| match r {
                Value::String(s) => Some(s.clone()),
                Value::Mapping(m) => scalar(m, "name"),
                _ => None,
            },
        )
    });

    Ok(AuthOptions {
        auth_type: t("auth_type").map(|v| v.parse()).transpose()?,
        endpoint: t("network_endpoint_override").or_else(|| a("endpoint")),
        region_name,
        interface: t("interface").or_else(|| t("endpoint_type")).map(|v| v.parse()).transpose()?,
        cafile: t("cacert").map(PathBuf::from),
        certfile: t("cert").map(PathBuf::from),
        keyfile: t("key").map(PathBuf::from),
        insecure,
        timeout: t("api_timeout").map(|v| parse_seconds("api_timeout", &v)).transpose()?,
        ..AuthOptions::credentials_from(a)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthType, Interface};
    use std::time::Duration;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "openstack-clouds-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn write(&self, name: &str, text: &str) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, text).unwrap();
            p
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const CLOUDS: &str = r#"
clouds:
  devstack:
    auth_type: password
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: kuryr
      project_name: service
      user_domain_name: Default
      project_domain_id: default
    region_name: RegionOne
    interface: internal
    cacert: /etc/ssl/ca.pem
    cert: /etc/ssl/client.pem
    key: /etc/ssl/client.key
    verify: true
    api_timeout: 30
  local:
    auth_type: none
    auth:
      endpoint: http://127.0.0.1:9696
    verify: false
  appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example/v3
      application_credential_id: 1234
      application_credential_secret: sekrit
    regions:
      - name: RegionTwo
"#;

    #[test]
    fn first_existing_file_wins_and_secure_merges() {
        let dir = TempDir::new("merge");
        let clouds = dir.write("clouds.yaml", CLOUDS);
        let secure =
            dir.write("secure.yaml", "clouds:\n  devstack:\n    auth:\n      password: pw123\n");
        let missing = dir.0.join("nope.yaml");
        let o = AuthOptions::from_clouds_yaml_in(
            "devstack",
            &[missing.clone(), clouds],
            &[missing, secure],
        )
        .unwrap();
        assert_eq!(o.auth_type, Some(AuthType::Password));
        assert_eq!(o.auth_url.as_deref(), Some("http://127.0.0.1:5000/v3"));
        assert_eq!(o.username.as_deref(), Some("kuryr"));
        assert_eq!(o.password.as_ref().map(|p| p.expose()), Some("pw123"));
        assert_eq!(o.project_domain_id.as_deref(), Some("default"));
        assert_eq!(o.region_name.as_deref(), Some("RegionOne"));
        assert_eq!(o.interface, Some(Interface::Internal));
        assert_eq!(o.cafile, Some(PathBuf::from("/etc/ssl/ca.pem")));
        assert_eq!(o.keyfile, Some(PathBuf::from("/etc/ssl/client.key")));
        assert!(!o.insecure);
        assert_eq!(o.timeout, Some(Duration::from_secs(30)));
        o.validate().unwrap();
    }

    #[test]
    fn noauth_and_appcred_clouds() {
        let dir = TempDir::new("kinds");
        let clouds = dir.write("clouds.yaml", CLOUDS);
        let o =
            AuthOptions::from_clouds_yaml_in("local", std::slice::from_ref(&clouds), &[]).unwrap();
        assert_eq!(o.auth_type, Some(AuthType::NoAuth));
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:9696"));
        assert!(o.insecure, "verify: false means insecure");
        o.validate().unwrap();

        let o = AuthOptions::from_clouds_yaml_in("appcred", &[clouds], &[]).unwrap();
        assert_eq!(o.application_credential_id.as_deref(), Some("1234"));
        assert_eq!(o.region_name.as_deref(), Some("RegionTwo"));
        o.validate().unwrap();
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let dir = TempDir::new("errors");
        let clouds = dir.write("clouds.yaml", CLOUDS);
        let e = AuthOptions::from_clouds_yaml_in("nope", &[clouds], &[]).unwrap_err();
        assert!(matches!(e, ConfigError::CloudNotFound { .. }));
        assert!(e.to_string().starts_with("cloud \"nope\" not found in "));

        let e = AuthOptions::from_clouds_yaml_in("x", &[dir.0.join("a.yaml")], &[]).unwrap_err();
        assert!(e.to_string().starts_with("no clouds.yaml found (searched: "));

        let bad = dir.write("bad.yaml", "clouds: [unterminated");
        let e = AuthOptions::from_clouds_yaml_in("x", &[bad], &[]).unwrap_err();
        assert!(matches!(e, ConfigError::File { .. }), "{e}");
    }

    #[test]
    fn candidate_order() {
        let c = clouds_yaml_candidates();
        let etc = c.iter().position(|p| p == Path::new("/etc/openstack/clouds.yaml")).unwrap();
        let cwd =
            c.iter().position(|p| p.ends_with("clouds.yaml") && !p.starts_with("/etc")).unwrap();
        assert!(cwd < etc);
    }
}
