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

/// `[cni_daemon]`: the node daemon in Kubernetes mode (upstream
/// kuryr-kubernetes' section; its other options have no meaning here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CniDaemonOptions {
    /// `vif_annotation_timeout`: seconds a CNI ADD waits for its pod's
    /// KuryrPort (and its vif) before failing with error 11.
    pub vif_annotation_timeout: u64,
}

impl Default for CniDaemonOptions {
    fn default() -> Self {
        // Upstream's default.
        CniDaemonOptions { vif_annotation_timeout: 60 }
    }
}

/// Where a pod's Kubernetes service account token is mounted.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Where a pod's Kubernetes service account CA bundle is mounted.
pub const SERVICE_ACCOUNT_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// `[kubernetes] pod_subnets_driver`: which subnet a pod's port is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodSubnetsDriver {
    /// `default`: `[neutron_defaults] pod_subnet`, for every pod.
    Default,
    /// `namespace`: each namespace gets its own network and subnet, from
    /// `[namespace_subnet] pod_subnet_pool`, on `pod_router`.
    Namespace,
}

/// `[kubernetes] pod_vif_driver`: how pods' ports are bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodVifDriver {
    /// `neutron-vif`: bound to the pod's node (bare metal).
    NeutronVif,
    /// `nested-vlan`: a subport of the worker VM's trunk.
    NestedVlan,
    /// `nested-macvlan`: an address pair of the worker VM's port.
    NestedMacvlan,
}

impl PodVifDriver {
    /// The nested binding it asks the node daemon for, if any.
    pub fn nested_mode(self) -> Option<crate::binding::NestedMode> {
        match self {
            PodVifDriver::NeutronVif => None,
            PodVifDriver::NestedVlan => Some(crate::binding::NestedMode::Vlan),
            PodVifDriver::NestedMacvlan => Some(crate::binding::NestedMode::Macvlan),
        }
    }
}

/// `[kubernetes]`: how the controller and the node daemon reach the
/// apiserver, and upstream kuryr-kubernetes' driver choices. Present only
/// when the file has the section (Kubernetes mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesOptions {
    /// `api_root`: the apiserver's URL; unset: the in-cluster service
    /// account, else the kubeconfig (`KUBECONFIG`, `~/.kube/config`).
    pub api_root: Option<String>,
    /// `ssl_client_crt_file`: a client certificate, PEM; checked at load
    /// to come with its key.
    pub ssl_client_crt_file: Option<PathBuf>,
    /// `ssl_client_key_file`: its key, PEM (only with the certificate).
    pub ssl_client_key_file: Option<PathBuf>,
    /// `token_file`: a bearer token, used with `api_root` when it exists.
    pub token_file: PathBuf,
    /// `ssl_ca_crt_file`: the CA bundle the apiserver's certificate is
    /// checked against, used with `api_root` when it exists.
    pub ssl_ca_crt_file: PathBuf,
    /// `ssl_verify_server_crt`: verify the apiserver's certificate (upstream
    /// defaulted to false; here true).
    pub ssl_verify_server_crt: bool,
    /// `controller_ha`: run controllers as active/passive replicas (a Lease).
    pub controller_ha: bool,
    /// `pod_subnets_driver`: a subnet per namespace (the default here) or
    /// one for all pods (upstream's default).
    pub pod_subnets_driver: PodSubnetsDriver,
    /// `pod_vif_driver`.
    pub pod_vif_driver: PodVifDriver,
}

impl Default for KubernetesOptions {
    fn default() -> Self {
        KubernetesOptions {
            api_root: None,
            token_file: PathBuf::from(SERVICE_ACCOUNT_TOKEN),
            ssl_ca_crt_file: PathBuf::from(SERVICE_ACCOUNT_CA),
            ssl_client_crt_file: None,
            ssl_client_key_file: None,
            ssl_verify_server_crt: true,
            controller_ha: false,
            pod_subnets_driver: PodSubnetsDriver::Namespace,
            pod_vif_driver: PodVifDriver::NeutronVif,
        }
    }
}

/// `[neutron_defaults]`: where the Kubernetes controller makes pods' ports
/// (upstream kuryr-kubernetes' names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeutronDefaultsOptions {
    /// `project`: the OpenStack project of what the controller makes
    /// (unset: the credentials' project).
    pub project: Option<String>,
    /// `pod_subnet`: the subnet of every pod (`pod_subnets_driver = default`).
    pub pod_subnet: Option<String>,
    /// `pod_security_groups`: security groups of pods' ports (none:
    /// Neutron's default group).
    pub pod_security_groups: Vec<String>,
    /// `resource_tags`: tags on every Neutron object the controller makes.
    pub resource_tags: Vec<String>,
}

/// `[namespace_subnet]`: a network per namespace
/// (`pod_subnets_driver = namespace`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceSubnetOptions {
    /// `pod_subnet_pool`: the subnetpool namespaces' subnets come from.
    pub pod_subnet_pool: Option<String>,
    /// `pod_router`: the router every namespace's subnet is attached to.
    pub pod_router: Option<String>,
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
    /// `[neutron_defaults]`: where the Kubernetes controller makes pods'
    /// ports.
    pub neutron_defaults: NeutronDefaultsOptions,
    /// `[namespace_subnet]`: where it makes namespaces' subnets (the
    /// `namespace` pod subnets driver).
    pub namespace_subnet: NamespaceSubnetOptions,
    /// `[kubernetes]`, when the file has the section: Kubernetes mode is
    /// on (docs/kubernetes.md).
    pub kubernetes: Option<KubernetesOptions>,
    /// `[cni_daemon]`: the node daemon's waits in Kubernetes mode.
    pub cni_daemon: CniDaemonOptions,
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

/// Neutron's limit on a tag's length.
const TAG_MAX: usize = 60;

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
            kubernetes: None,
            cni_daemon: CniDaemonOptions::default(),
            neutron_defaults: NeutronDefaultsOptions::default(),
            namespace_subnet: NamespaceSubnetOptions::default(),
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
        if ini.section_names().any(|n| n == "kubernetes") {
            config.kubernetes = Some(KubernetesOptions::default());
        }
        config.apply("kubernetes", ini.section("kubernetes"), Config::set_kubernetes)?;
        config.apply(
            "neutron_defaults",
            ini.section("neutron_defaults"),
            Config::set_neutron_defaults,
        )?;
        config.apply(
            "namespace_subnet",
            ini.section("namespace_subnet"),
            Config::set_namespace_subnet,
        )?;
        config.apply("cni_daemon", ini.section("cni_daemon"), Config::set_cni_daemon)?;
        config.check_kubernetes()?;
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
            if !matches!(
                name,
                "DEFAULT"
                    | "neutron"
                    | "binding"
                    | "vif_pool"
                    | "kubernetes"
                    | "neutron_defaults"
                    | "namespace_subnet"
                    | "cni_daemon"
            ) {
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

    /// Sets one `[kubernetes]` option; `Ok(false)` when it is not one Kuryr knows.
    fn set_kubernetes(&mut self, key: &str, value: String) -> Result<bool, ConfigError> {
        let k = self.kubernetes.get_or_insert_with(KubernetesOptions::default);
        let path = |v: &str| non_empty(v).map(PathBuf::from);
        match key {
            "api_root" => {
                k.api_root = non_empty(&value);
                if let Some(root) = &k.api_root {
                    if !(root.starts_with("https://") || root.starts_with("http://")) {
                        return Err(invalid(
                            "kubernetes",
                            key,
                            &value,
                            "must be an http:// or https:// URL",
                        ));
                    }
                }
            }
            "token_file" => k.token_file = PathBuf::from(&value),
            "ssl_ca_crt_file" => k.ssl_ca_crt_file = PathBuf::from(&value),
            "ssl_client_crt_file" => k.ssl_client_crt_file = path(&value),
            "ssl_client_key_file" => k.ssl_client_key_file = path(&value),
            "ssl_verify_server_crt" => {
                k.ssl_verify_server_crt = boolean("kubernetes", key, &value)?
            }
            "controller_ha" => k.controller_ha = boolean("kubernetes", key, &value)?,
            "pod_subnets_driver" => {
                k.pod_subnets_driver = match value.as_str() {
                    "default" => PodSubnetsDriver::Default,
                    "namespace" => PodSubnetsDriver::Namespace,
                    _ => {
                        return Err(invalid(
                            "kubernetes",
                            key,
                            &value,
                            "must be default or namespace",
                        ))
                    }
                }
            }
            "pod_vif_driver" => {
                k.pod_vif_driver = match value.as_str() {
                    "neutron-vif" => PodVifDriver::NeutronVif,
                    "nested-vlan" => PodVifDriver::NestedVlan,
                    "nested-macvlan" => PodVifDriver::NestedMacvlan,
                    _ => {
                        return Err(invalid(
                            "kubernetes",
                            key,
                            &value,
                            "must be neutron-vif, nested-vlan or nested-macvlan",
                        ))
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Sets one `[cni_daemon]` option; `Ok(false)` when it is not one Kuryr
    /// knows. Upstream's options that have no meaning here are accepted,
    /// so an upstream kuryr.conf loads unchanged.
    fn set_cni_daemon(&mut self, key: &str, value: String) -> Result<bool, ConfigError> {
        match key {
            "vif_annotation_timeout" => {
                let seconds: u64 = value.parse().map_err(|_| {
                    invalid("cni_daemon", key, &value, "must be a whole number of seconds")
                })?;
                if seconds == 0 {
                    return Err(invalid("cni_daemon", key, &value, "must be at least 1"));
                }
                self.cni_daemon.vif_annotation_timeout = seconds;
            }
            "daemon_enabled" | "bind_address" | "worker_num" | "pyroute2_timeout"
            | "docker_mode" | "netns_proc_dir" | "cni_failures_count" => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Sets one `[neutron_defaults]` option; `Ok(false)` when it is not one Kuryr knows.
    fn set_neutron_defaults(&mut self, key: &str, value: String) -> Result<bool, ConfigError> {
        let d = &mut self.neutron_defaults;
        match key {
            "project" => d.project = non_empty(&value),
            "pod_subnet" => d.pod_subnet = non_empty(&value),
            "pod_security_groups" => d.pod_security_groups = parse_list(&value),
            "resource_tags" => {
                d.resource_tags = parse_list(&value);
                if let Some(long) = d.resource_tags.iter().find(|t| t.len() > TAG_MAX) {
                    return Err(invalid(
                        "neutron_defaults",
                        key,
                        &value,
                        &format!("tag {long:?} is longer than Neutron's {TAG_MAX} characters"),
                    ));
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Sets one `[namespace_subnet]` option; `Ok(false)` when it is not one Kuryr knows.
    fn set_namespace_subnet(&mut self, key: &str, value: String) -> Result<bool, ConfigError> {
        let slot = match key {
            "pod_subnet_pool" => &mut self.namespace_subnet.pod_subnet_pool,
            "pod_router" => &mut self.namespace_subnet.pod_router,
            _ => return Ok(false),
        };
        *slot = non_empty(&value);
        Ok(true)
    }

    /// With `[kubernetes]`: the options its drivers need are set, and a
    /// client certificate comes with its key.
    fn check_kubernetes(&self) -> Result<(), ConfigError> {
        let Some(k) = &self.kubernetes else { return Ok(()) };
        let required = |section, option: &str, value: &Option<String>, why: &str| match value {
            Some(_) => Ok(()),
            None => Err(invalid(section, option, "", why)),
        };
        match k.pod_subnets_driver {
            PodSubnetsDriver::Default => required(
                "neutron_defaults",
                "pod_subnet",
                &self.neutron_defaults.pod_subnet,
                "is required with [kubernetes] pod_subnets_driver = default",
            )?,
            PodSubnetsDriver::Namespace => {
                let why =
                    "is required with [kubernetes] pod_subnets_driver = namespace (the default)";
                required(
                    "namespace_subnet",
                    "pod_subnet_pool",
                    &self.namespace_subnet.pod_subnet_pool,
                    why,
                )?;
                required("namespace_subnet", "pod_router", &self.namespace_subnet.pod_router, why)?;
            }
        }
        if k.ssl_client_crt_file.is_some() != k.ssl_client_key_file.is_some() {
            return Err(invalid(
                "kubernetes",
                "ssl_client_crt_file",
                "",
                "ssl_client_crt_file and ssl_client_key_file go together",
            ));
        }
        Ok(())
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

    const K8S: &str = "[kubernetes]\n[namespace_subnet]\npod_subnet_pool = sp1\npod_router = r1\n";

    #[test]
    fn kubernetes_mode_is_off_without_its_section() {
        let c = Config::parse("[neutron_defaults]\nproject = p1\n").expect("valid");
        assert_eq!(c.kubernetes, None);
        assert_eq!(c.neutron_defaults.project.as_deref(), Some("p1"));
    }

    #[test]
    fn kubernetes_sections_with_upstream_names() {
        let text = "[kubernetes]\napi_root = https://127.0.0.1:6443\ntoken_file = /etc/kuryr/token\n\
            ssl_ca_crt_file = /etc/kuryr/ca.crt\nssl_client_crt_file = /etc/kuryr/c.crt\n\
            ssl_client_key_file = /etc/kuryr/c.key\nssl_verify_server_crt = False\ncontroller_ha = True\n\
            pod_subnets_driver = default\npod_vif_driver = nested-vlan\n\
            [neutron_defaults]\nproject = p1\npod_subnet = s1\npod_security_groups = sg1, sg2\n\
            resource_tags = k8s, cluster-a\n";
        let c = Config::parse(text).expect("valid");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let k = c.kubernetes.expect("kubernetes mode");
        assert_eq!(k.api_root.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(k.token_file, Path::new("/etc/kuryr/token"));
        assert_eq!(k.ssl_ca_crt_file, Path::new("/etc/kuryr/ca.crt"));
        assert_eq!(k.ssl_client_key_file.as_deref(), Some(Path::new("/etc/kuryr/c.key")));
        assert!(!k.ssl_verify_server_crt);
        assert!(k.controller_ha);
        assert_eq!(k.pod_subnets_driver, PodSubnetsDriver::Default);
        assert_eq!(k.pod_vif_driver.nested_mode(), Some(crate::binding::NestedMode::Vlan));
        let d = c.neutron_defaults;
        assert_eq!(d.pod_subnet.as_deref(), Some("s1"));
        assert_eq!(d.pod_security_groups, ["sg1", "sg2"]);
        assert_eq!(d.resource_tags, ["k8s", "cluster-a"]);
    }

    #[test]
    fn cni_daemon_section() {
        assert_eq!(Config::parse("").expect("empty").cni_daemon.vif_annotation_timeout, 60);
        let c = Config::parse("[cni_daemon]\nvif_annotation_timeout = 5\ndaemon_enabled = true\n")
            .expect("valid");
        assert_eq!(c.cni_daemon.vif_annotation_timeout, 5);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        for bad in ["0", "soon"] {
            let err = Config::parse(&format!("[cni_daemon]\nvif_annotation_timeout = {bad}\n"))
                .expect_err("bad");
            assert!(err.to_string().contains("vif_annotation_timeout"), "{err}");
        }
    }

    #[test]
    fn kubernetes_defaults() {
        let c = Config::parse(K8S).expect("valid");
        let k = c.kubernetes.expect("kubernetes mode");
        assert_eq!(k, KubernetesOptions::default());
        assert_eq!(k.pod_subnets_driver, PodSubnetsDriver::Namespace);
        assert!(k.ssl_verify_server_crt);
        assert_eq!(k.token_file, Path::new(SERVICE_ACCOUNT_TOKEN));
        assert_eq!(c.namespace_subnet.pod_router.as_deref(), Some("r1"));
    }

    #[test]
    fn kubernetes_mode_checks_what_its_drivers_need() {
        for (text, needle) in [
            ("[kubernetes]\n", "pod_subnet_pool"),
            ("[kubernetes]\n[namespace_subnet]\npod_subnet_pool = sp\n", "pod_router"),
            ("[kubernetes]\npod_subnets_driver = default\n", "pod_subnet"),
            (&format!("{K8S}[kubernetes]\nssl_client_crt_file = /c\n"), "go together"),
            (&format!("{K8S}[kubernetes]\napi_root = localhost:6443\n"), "api_root"),
            (&format!("{K8S}[kubernetes]\npod_vif_driver = sriov\n"), "pod_vif_driver"),
            (&format!("{K8S}[kubernetes]\npod_subnets_driver = magic\n"), "pod_subnets_driver"),
            (&format!("{K8S}[kubernetes]\ncontroller_ha = maybe\n"), "controller_ha"),
            (&format!("{K8S}[neutron_defaults]\nresource_tags = {}\n", "t".repeat(61)), "60"),
        ] {
            let err = Config::parse(text).expect_err(text);
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
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
