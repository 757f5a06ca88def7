//! Network configurations: the configuration list a runtime loads
//! ([`NetConfList`]) and the per-plugin request configuration it derives
//! and writes to the plugin's stdin ([`NetConf`]), with Kuryr's `neutron`
//! section.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::env::{validate_network_name, CniCommand};
use super::error::CniError;
use super::result::{AddResult, Dns};
use super::version::CniVersion;

/// Key of the still-valid attachments in a `GC` request configuration.
pub const VALID_ATTACHMENTS_KEY: &str = "cni.dev/valid-attachments";
/// The same list under the name the 1.1.0 text first used; libcni sends
/// both, so either is accepted.
pub const ATTACHMENTS_KEY: &str = "cni.dev/attachments";

/// The request configuration a plugin reads on stdin.
///
/// Well-known keys are typed; every other key (plugin specific ones) is
/// kept in [`extra`](Self::extra), so a configuration serializes back to
/// the same JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    /// Protocol version selected by the runtime. Kept as text so that an
    /// unsupported version is error 1, not a decoding error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_version: Option<String>,
    /// Network name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Plugin binary name (`kuryr-cni`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub plugin_type: Option<String>,
    /// Structured runtime arguments (`args.cni.labels`, `args.cni.ips`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Map<String, Value>>,
    /// Masquerade traffic leaving the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_masq: Option<bool>,
    /// Delegated IPAM plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    /// DNS settings known to the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// Capability arguments from the runtime (`portMappings`, `mac`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_config: Option<Map<String, Value>>,
    /// Declared capabilities; runtimes must not pass them, but hand-written
    /// configurations (cnitool) may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<BTreeMap<String, bool>>,
    /// Result of the previous plugin (ADD) or of the whole chain (DEL,
    /// CHECK), raw; see [`NetConf::prev_result`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_result: Option<Value>,
    /// Kuryr: which Neutron network, subnet, security groups and project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutron: Option<NeutronConfig>,
    /// `GC`: attachments still in use. `null` (how Go encodes an empty
    /// list) is an empty list; absent is `None`.
    #[serde(
        default,
        rename = "cni.dev/valid-attachments",
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_attachments: Option<Vec<GcAttachment>>,
    /// `GC`: the same list under its older name.
    #[serde(
        default,
        rename = "cni.dev/attachments",
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub attachments: Option<Vec<GcAttachment>>,
    /// Every other key, unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `ipam` section: a delegated IPAM plugin and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ipam {
    /// IPAM plugin binary name.
    #[serde(rename = "type")]
    pub ipam_type: String,
    /// IPAM specific keys.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Kuryr's `neutron` section:
/// `{"network": ..., "subnet": ..., "security_groups": [...], "project": ...}`.
///
/// Every key is optional. Unknown keys are kept when decoding and
/// rejected by [`NeutronConfig::validate`] (error 2), so a typo is reported
/// instead of ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NeutronConfig {
    /// Network name or UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Subnet name or UUID (of that network) to take addresses from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Security group names or UUIDs. Absent: Neutron's default group;
    /// empty: no security group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    /// Project (tenant) name or UUID owning the ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Kubernetes namespace (`K8S_POD_NAMESPACE` in `CNI_ARGS`) to network
    /// name or UUID; a namespace listed here overrides `network`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_networks: Option<BTreeMap<String, String>>,
    /// Unknown keys (rejected by validation).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NeutronConfig {
    /// The keys this version understands.
    pub const KEYS: [&'static str; 5] =
        ["network", "subnet", "security_groups", "project", "namespace_networks"];

    /// Error 2 for an unknown key (naming key and value), error 7 for an
    /// empty name.
    pub fn validate(&self) -> Result<(), CniError> {
        if let Some((key, value)) = self.extra.iter().next() {
            return Err(CniError::unsupported_field(
                &format!("neutron.{key}"),
                value,
                format!("the neutron section accepts: {}", Self::KEYS.join(", ")),
            ));
        }
        let names =
            [("network", &self.network), ("subnet", &self.subnet), ("project", &self.project)];
        for (key, value) in names {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(CniError::invalid_config(format!("neutron.{key} must not be empty")));
            }
        }
        if let Some((ns, _)) = self
            .namespace_networks
            .iter()
            .flatten()
            .find(|(ns, net)| ns.trim().is_empty() || net.trim().is_empty())
        {
            return Err(CniError::invalid_config(format!(
                "neutron.namespace_networks[{ns:?}]: namespace and network must not be empty"
            )));
        }
        if let Some(i) = self.security_groups.iter().flatten().position(|sg| sg.trim().is_empty()) {
            return Err(CniError::invalid_config(format!(
                "neutron.security_groups[{i}] must not be empty"
            )));
        }
        Ok(())
    }
}

/// An attachment still in use, as listed in a `GC` request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GcAttachment {
    /// `CNI_CONTAINERID` given on ADD.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// `CNI_IFNAME` given on ADD.
    pub ifname: String,
}

/// `null` as an empty list, so that absent (`None`) and empty differ.
fn null_as_empty<'de, D>(d: D) -> Result<Option<Vec<GcAttachment>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Some(Option::<Vec<GcAttachment>>::deserialize(d)?.unwrap_or_default()))
}

impl NetConf {
    /// Decodes a request configuration; error 6 when it is not a JSON
    /// object of the right shape.
    pub fn from_value(value: &Value) -> Result<Self, CniError> {
        if !value.is_object() {
            return Err(CniError::decode("network configuration must be a JSON object"));
        }
        super::decode(value, "network configuration")
    }

    /// The configuration's version. A missing `cniVersion` means 0.1.0 to
    /// libcni, which kuryr-cni does not speak: error 1, as for any version
    /// it does not support.
    pub fn version(&self) -> Result<CniVersion, CniError> {
        match self.cni_version.as_deref() {
            Some(v) => CniVersion::parse_config_version(v),
            None => Err(CniError::incompatible_version(
                "network configuration has no cniVersion (that means 0.1.0)",
                "set cniVersion to one of 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0",
            )),
        }
    }

    /// The spec's checks for `command`: a supported version that has the
    /// command (CHECK needs 0.4.0, GC and STATUS 1.1.0; error 1) and a
    /// valid network name (error 7). Returns the version.
    pub fn validate_for(&self, command: CniCommand) -> Result<CniVersion, CniError> {
        let version = self.version()?;
        let needs = match command {
            CniCommand::Check if !version.has_check() => Some(CniVersion::V0_4_0),
            CniCommand::Gc | CniCommand::Status if !version.has_gc_and_status() => {
                Some(CniVersion::V1_1_0)
            }
            _ => None,
        };
        if let Some(needed) = needs {
            return Err(CniError::incompatible_version(
                format!("{command} is not part of CNI {version}"),
                format!("{command} needs cniVersion {needed} or later"),
            ));
        }
        match self.name.as_deref() {
            None | Some("") => {
                return Err(CniError::invalid_config("network configuration has no name"))
            }
            Some(name) => validate_network_name(name)?,
        }
        Ok(version)
    }

    /// The `prevResult`, decoded and converted to 1.1.0; error 6 (or 1 for
    /// an unsupported version) when it is malformed.
    pub fn prev_result(&self, version: CniVersion) -> Result<Option<AddResult>, CniError> {
        match &self.prev_result {
            None | Some(Value::Null) => Ok(None),
            Some(value) => AddResult::parse_as_latest(value, version)
                .map(Some)
                .map_err(|e| CniError { msg: format!("prevResult: {}", e.msg), ..e }),
        }
    }

    /// The `GC` list of valid attachments (`cni.dev/valid-attachments`,
    /// else `cni.dev/attachments`), if given.
    pub fn gc_attachments(&self) -> Option<&[GcAttachment]> {
        self.valid_attachments.as_deref().or(self.attachments.as_deref())
    }
}

/// A network configuration list (a `.conflist` file).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConfList {
    /// Version all plugin configurations conform to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_version: Option<String>,
    /// All versions this configuration supports (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_versions: Option<Vec<String>>,
    /// Network name.
    pub name: String,
    /// Runtimes must not call CHECK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_check: Option<bool>,
    /// Runtimes must not call GC.
    #[serde(default, rename = "disableGC", skip_serializing_if = "Option::is_none")]
    pub disable_gc: Option<bool>,
    /// Ignore plugin configurations from other sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_only_inlined_plugins: Option<bool>,
    /// Plugins, in ADD order.
    #[serde(default)]
    pub plugins: Vec<PluginConf>,
    /// Any other key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One plugin configuration object of a list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginConf {
    /// Plugin binary name.
    #[serde(rename = "type")]
    pub plugin_type: String,
    /// Capabilities the plugin accepts in `runtimeConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<BTreeMap<String, bool>>,
    /// Plugin specific keys.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl NetConfList {
    /// The version a runtime selects: the highest supported one among
    /// `cniVersion` and `cniVersions`; error 1 if there is none.
    pub fn select_version(&self) -> Result<CniVersion, CniError> {
        self.cni_version
            .iter()
            .chain(self.cni_versions.iter().flatten())
            .filter_map(|v| v.parse::<CniVersion>().ok())
            .max()
            .ok_or_else(|| {
                CniError::incompatible_version(
                    format!(
                        "network configuration list {:?} has no supported CNI version",
                        self.name
                    ),
                    "supported versions: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0",
                )
            })
    }

    /// The request configuration of plugin `index` (spec section 3): the
    /// plugin object without `capabilities` and `cni.dev/` keys, plus
    /// `cniVersion`, `name`, a `runtimeConfig` of the capability arguments
    /// the plugin declares, and `prevResult` when given.
    pub fn request_config(
        &self,
        index: usize,
        capability_args: &Map<String, Value>,
        prev_result: Option<&Value>,
    ) -> Result<Value, CniError> {
        let plugin = self.plugins.get(index).ok_or_else(|| {
            CniError::invalid_config(format!(
                "network configuration list {:?} has no plugin #{index}",
                self.name
            ))
        })?;
        let mut config: Map<String, Value> = plugin
            .rest
            .iter()
            .filter(|(k, _)| !k.starts_with("cni.dev/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        config.insert("type".into(), Value::String(plugin.plugin_type.clone()));
        config
            .insert("cniVersion".into(), Value::String(self.select_version()?.as_str().to_owned()));
        config.insert("name".into(), Value::String(self.name.clone()));
        let runtime_config: Map<String, Value> = plugin
            .capabilities
            .iter()
            .flatten()
            .filter(|(_, enabled)| **enabled)
            .filter_map(|(cap, _)| capability_args.get(cap).map(|v| (cap.clone(), v.clone())))
            .collect();
        if !runtime_config.is_empty() {
            config.insert("runtimeConfig".into(), Value::Object(runtime_config));
        }
        if let Some(prev) = prev_result {
            config.insert("prevResult".into(), prev.clone());
        }
        Ok(Value::Object(config))
    }

    /// The `GC` request configuration of plugin `index`: as
    /// [`request_config`](Self::request_config) without attachment
    /// fields, plus `cni.dev/valid-attachments`.
    pub fn gc_config(&self, index: usize, valid: &[GcAttachment]) -> Result<Value, CniError> {
        let mut config = self.request_config(index, &Map::new(), None)?;
        let list = serde_json::to_value(valid)
            .map_err(|e| CniError::internal(format!("cannot encode attachments: {e}")))?;
        if let Value::Object(map) = &mut config {
            map.insert(VALID_ATTACHMENTS_KEY.into(), list);
        }
        Ok(config)
    }
}
