//! `kuryr.conf`: upstream Kuryr's option names, sections and defaults where
//! they exist, plus the few options this implementation adds.
//!
//! Every option is listed with its default in docs/configuration.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ini::{parse_bool, parse_list, IniError, IniFile};

/// Where `kuryr.conf` is read from unless `--config-file` says otherwise.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/kuryr/kuryr.conf";

/// Errors from reading the configuration. Each names the file and option.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not INI as oslo.config reads it.
    #[error("config file {path}: {source}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where and what.
        source: IniError,
    },
    /// An option has a value Kuryr cannot use.
    #[error("config option [{section}] {option} = {value:?}: {reason}")]
    Invalid {
        /// Its section.
        section: &'static str,
        /// The option.
        option: String,
        /// The value as written.
        value: String,
        /// Why it is refused.
        reason: String,
    },
}

/// Docker's capability scope for the network driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilityScope {
    /// `local`: networks of this host only.
    Local,
    /// `global`: networks across the Swarm.
    Global,
}

impl CapabilityScope {
    /// The option's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CapabilityScope::Local => "local",
            CapabilityScope::Global => "global",
        }
    }
}

/// `[DEFAULT]`.
#[derive(Debug, Clone)]
pub struct DefaultOptions {
    /// Upstream's `kuryr_uri`: when set, the libnetwork plugin also listens on
    /// this TCP address (for example `http://127.0.0.1:23750`).
    pub kuryr_uri: Option<String>,
    /// Unix socket Docker discovers the plugin on.
    pub plugin_socket: PathBuf,
    /// Kuryr-specific: `ip:port` serving `/metrics` and `/healthz`
    /// (unset: off).
    pub metrics_address: Option<String>,
    /// `capability_scope`: Docker's scope of the driver's networks.
    pub capability_scope: CapabilityScope,
    /// `local_default_address_space`.
    pub local_default_address_space: String,
    /// `global_default_address_space`.
    pub global_default_address_space: String,
    /// `subnetpool_name_prefix`: `kuryrPool` gives `kuryrPool-<cidr>`.
    pub subnetpool_name_prefix: String,
    /// `process_external_connectivity`: exposed ports become security group rules.
    pub process_external_connectivity: bool,
    /// `ip_range_as_subnet` (Kuryr-specific): Docker's `--ip-range` becomes
    /// the Neutron subnet, named after it, as upstream kuryr-libnetwork
    /// makes it, instead of the allocation pool of the `--subnet` subnet.
    pub ip_range_as_subnet: bool,
    /// `binding:host_id` for ports of this host; the hostname when unset.
    pub host: Option<String>,
    /// `debug`: debug logging.
    pub debug: bool,
}

/// `[neutron]`: keystoneauth options plus upstream's Kuryr options.
#[derive(Debug, Clone)]
pub struct NeutronOptions {
    /// keystoneauth options as written (`auth_type`, `auth_url`, `username`…).
    /// Turned into a client configuration by the binary, merged with `OS_*`.
    pub auth: BTreeMap<String, String>,
    /// `enable_dhcp` of the subnets Kuryr makes.
    pub enable_dhcp: bool,
    /// `default_subnetpool_v4`: where a network without `--subnet` is carved from.
    pub default_subnetpool_v4: String,
    /// `default_subnetpool_v6`.
    pub default_subnetpool_v6: String,
    /// `vif_plugging_is_fatal`: a port not ACTIVE in time fails the attach.
    pub vif_plugging_is_fatal: bool,
    /// Seconds to wait for a port to become ACTIVE; 0 disables the wait.
    pub vif_plugging_timeout: u64,
}

/// `[binding]`.
#[derive(Debug, Clone)]
pub struct BindingOptions {
    /// `veth_dst_prefix`: Docker renames the container end to `<prefix><N>`.
    pub veth_dst_prefix: String,
    /// `driver`: `veth` (default) or a nested one (`macvlan`, `ipvlan`, `vlan`), upstream's module paths accepted.
    pub driver: String,
    /// `link_iface`: the VM's NIC, for the nested drivers.
    pub link_iface: Option<String>,
    /// `integration_bridge`: `br-int`.
    pub integration_bridge: String,
    /// `ovsdb_socket`: OVSDB's unix socket.
    pub ovsdb_socket: PathBuf,
}

/// `[vif_pool]`: pre-plugged port pools (upstream kuryr-kubernetes'
/// option names). `ports_pool_min = 0` (the default) turns them off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VifPoolOptions {
    /// `ports_pool_min`: ready ports kept per pool (0: pools off).
    pub ports_pool_min: usize,
    /// 0: no limit.
    pub ports_pool_max: usize,
    /// `ports_pool_batch`: ports made in one bulk POST.
    pub ports_pool_batch: usize,
    /// Seconds between two refills of one pool, at least.
    pub ports_pool_update_frequency: u64,
}

/// `kuryr.conf`, parsed and checked (docs/configuration.md).
#[derive(Debug, Clone)]
pub struct Config {
    /// `[DEFAULT]`.
    pub default: DefaultOptions,
    /// `[neutron]`.
    pub neutron: NeutronOptions,
    /// `[binding]`.
    pub binding: BindingOptions,
    /// `[vif_pool]`.
    pub vif_pool: VifPoolOptions,
    /// Things worth telling the operator that do not stop us (unknown
    /// options, a world-readable file holding a password).
    pub warnings: Vec<String>,
}

/// The keystoneauth option names accepted in `[neutron]`.
pub const NEUTRON_AUTH_KEYS: &[&str] = &[
    "auth_type",
    "auth_url",
    "username",
    "user_id",
    "password",
    "user_domain_name",
    "user_domain_id",
    "project_name",
    "project_id",
    "project_domain_name",
    "project_domain_id",
    "domain_name",
    "domain_id",
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret",
    "token",
    "endpoint",
    "endpoint_override",
    "region_name",
    "endpoint_type",
    "interface",
    "cafile",
    "certfile",
    "keyfile",
    "insecure",
    "timeout",
    "cloud",
];

const SECRET_KEYS: &[&str] = &["password", "application_credential_secret", "token"];

impl Default for Config {
    fn default() -> Self {
        Config {
            default: DefaultOptions {
                kuryr_uri: None,
                plugin_socket: PathBuf::from("/run/docker/plugins/kuryr.sock"),
                metrics_address: None,
                capability_scope: CapabilityScope::Local,
                local_default_address_space: "no_address_space".into(),
                global_default_address_space: "no_address_space".into(),
                subnetpool_name_prefix: "kuryrPool".into(),
                process_external_connectivity: true,
                ip_range_as_subnet: false,
                host: None,
                debug: false,
            },
            neutron: NeutronOptions {
                auth: BTreeMap::new(),
                enable_dhcp: true,
                default_subnetpool_v4: "kuryr".into(),
                default_subnetpool_v6: "kuryr6".into(),
                vif_plugging_is_fatal: true,
                vif_plugging_timeout: 30,
            },
            binding: BindingOptions {
                veth_dst_prefix: "eth".into(),
                driver: "veth".into(),
                link_iface: None,
                integration_bridge: "br-int".into(),
                ovsdb_socket: PathBuf::from("/var/run/openvswitch/db.sock"),
            },
            vif_pool: VifPoolOptions {
                ports_pool_min: 0,
                ports_pool_max: 0,
                ports_pool_batch: 10,
                ports_pool_update_frequency: 1,
            },
            warnings: Vec::new(),
        }
    }
}

impl Config {
    /// Loads `path`. A missing file is an error only when `required` (the
    /// operator named it with `--config-file`); the default path may be absent.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut config = Config::parse(&text).map_err(|e| match e {
                    ConfigError::Syntax { source, .. } => {
                        ConfigError::Syntax { path: path.to_path_buf(), source }
                    }
                    other => other,
                })?;
                config.check_file_mode(path);
                Ok(config)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Config::default())
            }
            Err(source) => Err(ConfigError::Read { path: path.to_path_buf(), source }),
        }
    }

    /// Parses `kuryr.conf` text (unknown options become warnings).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let ini = IniFile::parse(text)
            .map_err(|source| ConfigError::Syntax { path: PathBuf::from("<text>"), source })?;
        let mut config = Config::default();
        config.apply("DEFAULT", ini.section("DEFAULT"), Config::set_default)?;
        config.apply("neutron", ini.section("neutron"), Config::set_neutron)?;
        config.apply("binding", ini.section("binding"), Config::set_binding)?;
        config.apply("vif_pool", ini.section("vif_pool"), Config::set_vif_pool)?;
        let p = &config.vif_pool;
        if p.ports_pool_max > 0 && p.ports_pool_max < p.ports_pool_min {
            return Err(invalid(
                "vif_pool",
                "ports_pool_max",
                &p.ports_pool_max.to_string(),
                "must be 0 (no limit) or at least ports_pool_min",
            ));
        }
        for name in ini.section_names() {
            if !matches!(name, "DEFAULT" | "neutron" | "binding" | "vif_pool") {
                config.warnings.push(format!("ignoring unknown config section [{name}]"));
            }
        }
        Ok(config)
    }

    /// Applies one section's options with `set`; an option `set` does not
    /// know becomes a warning.
    fn apply(
        &mut self,
        section: &str,
        opts: BTreeMap<String, String>,
        set: fn(&mut Config, &str, String) -> Result<bool, ConfigError>,
    ) -> Result<(), ConfigError> {
        for (key, value) in opts {
            if !set(self, &key, value)? {
                self.warnings.push(format!("ignoring unknown option [{section}] {key}"));
            }
        }
        Ok(())
    }

    /// Sets one `[DEFAULT]` option; `Ok(false)` when it is not one Kuryr knows.
    fn set_default(&mut self, key: &str, value: String) -> Result<bool, ConfigError> {
        let d = &mut self.default;
        match key {
            "kuryr_uri" => d.kuryr_uri = non_empty(&value),
            "plugin_socket" => d.plugin_socket = PathBuf::from(&value),
            "metrics_address" => d.metrics_address = non_empty(&value),
            "capability_scope" => {
                d.capability_scope = match value.as_str() {
                    "local" => CapabilityScope::Local,
                    "global" => CapabilityScope::Global,
                    _ => return Err(invalid("DEFAULT", key, &value, "must be local or global")),
                }
            }
            "local_default_address_space" => d.local_default_address_space = value,
            "global_default_address_space" => d.global_default_address_space = value,
            "subnetpool_name_prefix" => d.subnetpool_name_prefix = value,
            "process_external_connectivity" => {
                d.process_external_connectivity = boolean("DEFAULT", key, &value)?
            }
            "ip_range_as_subnet" => d.ip_range_as_subnet = boolean("DEFAULT", key, &value)?,
            "host" => d.host = non_empty(&value),
            "debug" => d.debug = boolean("DEFAULT", key, &value)?,
            // Upstream options that have no meaning here; accepted so an
            // upstream kuryr.conf loads unchanged.
            "bindir"
            | "pybasedir"
            | "deployment_type"
            | "port_driver"
            | "default_port_driver"
            | "enabled_port_drivers"
            | "ssl_cert_file"
            | "ssl_key_file"
            | "enable_ssl"
            | "log_file"
            | "log_dir"
            | "use_stderr"
            | "verbose" => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Sets one `[neutron]` option; `Ok(false)` when it is not one Kuryr knows.
    fn set_neutron(&mut self, key: &str, value: String) -> Result<bool, ConfigError> {
        let n = &mut self.neutron;
        match key {
            "enable_dhcp" => n.enable_dhcp = boolean("neutron", key, &value)?,
            "default_subnetpool_v4" => n.default_subnetpool_v4 = value,
            "default_subnetpool_v6" => n.default_subnetpool_v6 = value,
            "vif_plugging_is_fatal" => n.vif_plugging_is_fatal = boolean("neutron", key, &value)?,
            "vif_plugging_timeout" => {
                n.vif_plugging_timeout = value.parse().map_err(|_| {
                    invalid("neutron", key, &value, "must be a whole number of seconds")
                })?
            }
            k if NEUTRON_AUTH_KEYS.contains(&k) => {
                if !value.is_empty() {
                    n.auth.insert(key.to_string(), value);
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Sets one `[binding]` option; `Ok(false)` when it is not one Kuryr knows.
    fn set_binding(&mut self, key: &str, value: String) -> Result<bool, ConfigError> {
        let b = &mut self.binding;
        match key {
            "veth_dst_prefix" => b.veth_dst_prefix = value,
            "driver" | "default_driver" => b.driver = binding_driver_name(key, &value)?,
            "enabled_drivers" => {
                for name in parse_list(&value) {
                    binding_driver_name(key, &name)?;
                }
            }
            "link_iface" => b.link_iface = non_empty(&value),
            "integration_bridge" => b.integration_bridge = value,
            "ovsdb_socket" => b.ovsdb_socket = PathBuf::from(&value),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Sets one `[vif_pool]` option; `Ok(false)` when it is not one Kuryr knows.
    fn set_vif_pool(&mut self, key: &str, value: String) -> Result<bool, ConfigError> {
        let p = &mut self.vif_pool;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| invalid("vif_pool", key, &value, "must be a whole number"))
        };
        match key {
            "ports_pool_min" => p.ports_pool_min = number()?,
            "ports_pool_max" => p.ports_pool_max = number()?,
            "ports_pool_batch" => {
                p.ports_pool_batch = number()?;
                if p.ports_pool_batch == 0 {
                    return Err(invalid("vif_pool", key, &value, "must be at least 1"));
                }
            }
            "ports_pool_update_frequency" => p.ports_pool_update_frequency = number()? as u64,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A file holding a secret should not be readable by other users.
    fn check_file_mode(&mut self, path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let has_secret = SECRET_KEYS.iter().any(|k| self.neutron.auth.contains_key(*k));
        if !has_secret {
            return;
        }
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o004 != 0 {
                self.warnings.push(format!(
                    "{} holds a secret and is readable by every user: chmod o-r it",
                    path.display()
                ));
            }
        }
    }
}

/// Upstream names drivers by Python module path; accept both spellings.
fn binding_driver_name(key: &str, value: &str) -> Result<String, ConfigError> {
    let short = value.rsplit('.').next().unwrap_or(value);
    match short {
        "veth" | "macvlan" | "vlan" | "ipvlan" | "nested" => Ok(short.to_string()),
        _ => Err(invalid(
            "binding",
            key,
            value,
            "unknown binding driver (expected veth, macvlan, vlan or ipvlan)",
        )),
    }
}

fn non_empty(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_string())
}

fn boolean(section: &'static str, key: &str, value: &str) -> Result<bool, ConfigError> {
    parse_bool(value).ok_or_else(|| invalid(section, key, value, "must be true or false"))
}

fn invalid(section: &'static str, key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        section,
        option: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_upstream() {
        let c = Config::default();
        assert_eq!(c.neutron.default_subnetpool_v4, "kuryr");
        assert_eq!(c.neutron.default_subnetpool_v6, "kuryr6");
        assert_eq!(c.default.subnetpool_name_prefix, "kuryrPool");
        assert_eq!(c.default.capability_scope, CapabilityScope::Local);
        assert_eq!(c.binding.veth_dst_prefix, "eth");
        assert_eq!(c.default.local_default_address_space, "no_address_space");
    }

    #[test]
    fn metrics_address_is_off_unless_set() {
        assert_eq!(Config::default().default.metrics_address, None);
        let c = Config::parse("[DEFAULT]\nmetrics_address = 127.0.0.1:9655\n").expect("valid");
        assert_eq!(c.default.metrics_address.as_deref(), Some("127.0.0.1:9655"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn loads_an_upstream_style_file() {
        let text = "[DEFAULT]\nbindir = /usr/libexec/kuryr\nkuryr_uri = http://127.0.0.1:23750\ncapability_scope = global\n\
            [neutron]\nauth_type = none\nendpoint = http://127.0.0.1:9696\ndefault_subnetpool_v4 = mypool\nvif_plugging_timeout = 5\nvif_plugging_is_fatal = False\n\
            [binding]\ndefault_driver = kuryr.lib.binding.drivers.veth\nlink_iface = eth0\n";
        let c = Config::parse(text).expect("valid");
        assert_eq!(c.default.kuryr_uri.as_deref(), Some("http://127.0.0.1:23750"));
        assert_eq!(c.default.capability_scope, CapabilityScope::Global);
        assert_eq!(c.neutron.auth["auth_type"], "none");
        assert_eq!(c.neutron.auth["endpoint"], "http://127.0.0.1:9696");
        assert_eq!(c.neutron.default_subnetpool_v4, "mypool");
        assert_eq!(c.neutron.vif_plugging_timeout, 5);
        assert!(!c.neutron.vif_plugging_is_fatal);
        assert_eq!(c.binding.driver, "veth");
        assert_eq!(c.binding.link_iface.as_deref(), Some("eth0"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn bad_values_name_the_option() {
        let err = Config::parse("[DEFAULT]\ncapability_scope = galaxy\n").expect_err("bad");
        let msg = err.to_string();
        assert!(msg.contains("[DEFAULT] capability_scope"), "{msg}");
        let err = Config::parse("[neutron]\nvif_plugging_timeout = soon\n").expect_err("bad");
        assert!(err.to_string().contains("vif_plugging_timeout"));
        let err = Config::parse("[binding]\ndriver = sriov\n").expect_err("bad");
        assert!(err.to_string().contains("unknown binding driver"));
    }

    #[test]
    fn unknown_options_warn() {
        let c = Config::parse("[DEFAULT]\nfrobnicate = 1\n[weird]\n").expect("valid");
        assert_eq!(c.warnings.len(), 2);
    }

    #[test]
    fn missing_default_file_is_fine_but_named_file_is_not() {
        let missing = Path::new("/nonexistent/kuryr.conf");
        assert!(Config::load(missing, false).is_ok());
        let err = Config::load(missing, true).expect_err("required");
        assert!(err.to_string().contains("/nonexistent/kuryr.conf"));
    }

    #[test]
    fn world_readable_secret_warns() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kuryr-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("kuryr.conf");
        std::fs::write(&path, "[neutron]\npassword = s3cret\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let c = Config::load(&path, true).expect("valid");
        assert!(c.warnings.iter().any(|w| w.contains("readable")));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let c = Config::load(&path, true).expect("valid");
        assert!(c.warnings.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn vif_pool_section() {
        let c = Config::parse("[DEFAULT]\n").expect("valid");
        assert_eq!(c.vif_pool.ports_pool_min, 0, "pools are off by default");
        assert_eq!(c.vif_pool.ports_pool_batch, 10);
        let c = Config::parse(
            "[vif_pool]\nports_pool_min = 2\nports_pool_max = 8\nports_pool_batch = 4\nports_pool_update_frequency = 3\n",
        )
        .expect("valid");
        assert_eq!(
            c.vif_pool,
            VifPoolOptions {
                ports_pool_min: 2,
                ports_pool_max: 8,
                ports_pool_batch: 4,
                ports_pool_update_frequency: 3,
            }
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        for bad in [
            "ports_pool_min = -1",
            "ports_pool_batch = 0",
            "ports_pool_min = 5\nports_pool_max = 2",
        ] {
            let err = Config::parse(&format!("[vif_pool]\n{bad}\n")).expect_err(bad);
            assert!(err.to_string().contains("vif_pool"), "{err}");
        }
    }
}
