//! The `ADD` success result (also what `prevResult` carries), and its
//! conversion between spec versions.
//!
//! One type holds the union of all versions' fields. [`AddResult::to_version`]
//! produces the exact shape of a version:
//!
//! | Field | 0.3.0 / 0.3.1 / 0.4.0 | 1.0.0 | 1.1.0 |
//! |---|---|---|---|
//! | `ips[].version` (`"4"`/`"6"`) | yes | no | no |
//! | `interfaces[].mtu`, `socketPath`, `pciID` | no | no | yes |
//! | `routes[].mtu`, `advmss`, `priority`, `table`, `scope` | no | no | yes |
//!
//! (The 0.3.0 text calls the list `ip`; libcni and every runtime use `ips`
//! for all versions, and so does this crate.)

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::error::CniError;
use super::version::CniVersion;

/// The result of `ADD`: interfaces, addresses, routes and DNS.
///
/// Empty lists and an empty `dns` are omitted on output, as libcni does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddResult {
    /// The version this result is expressed in. Results nested as
    /// `prevResult` often omit it; the configuration's version applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_version: Option<String>,
    /// Interfaces created, host-side ones included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// Addresses assigned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    /// Routes created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// DNS settings.
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

/// An interface created by the attachment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Hardware address, if meaningful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// MTU (1.1.0+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Netns path for interfaces inside the container; absent on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Socket file of the interface, e.g. vhost-user (1.1.0+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    /// PCI id of the device (1.1.0+).
    #[serde(default, rename = "pciID", skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

/// An address assigned by the attachment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// `"4"` or `"6"`; only before 1.0.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Address with prefix length, e.g. `10.1.0.5/16`.
    pub address: IpNet,
    /// The subnet's default gateway, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`; absent in IPAM results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<u32>,
}

impl IpConfig {
    /// An address on interface `interface`, without the version field.
    pub fn new(address: IpNet, gateway: Option<IpAddr>, interface: Option<u32>) -> Self {
        Self { version: None, address, gateway, interface }
    }

    /// `"4"` or `"6"` for the address family.
    pub fn family(&self) -> &'static str {
        match self.address {
            IpNet::V4(_) => "4",
            IpNet::V6(_) => "6",
        }
    }
}

/// A route created by the attachment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination, in CIDR notation.
    pub dst: IpNet,
    /// Next hop; when absent the `ips` gateway may be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// Path MTU (1.1.0+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// TCP MSS to advertise (1.1.0+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    /// Route priority, lower is preferred (1.1.0+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Routing table (1.1.0+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// Scope: global 0, link 253, host 254 (1.1.0+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u32>,
}

impl Route {
    /// A route to `dst` via `gw`, with no 1.1.0 attributes.
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Self {
        Self { dst, gw, mtu: None, advmss: None, priority: None, table: None, scope: None }
    }

    fn strip_extended(&mut self) {
        self.mtu = None;
        self.advmss = None;
        self.priority = None;
        self.table = None;
        self.scope = None;
    }
}

/// DNS settings (in results and in network configurations).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers, in priority order (IPv4 or IPv6 address strings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain for short names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains, in priority order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    /// Whether nothing is set (then `dns` is omitted).
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

impl AddResult {
    /// Parses a result (e.g. a `prevResult`) written in any supported
    /// version. Its own `cniVersion` wins over `default_version` (the
    /// configuration's). Checks that `ips[].version` matches each address
    /// and that `interface` indexes exist.
    pub fn parse(value: &serde_json::Value, default_version: CniVersion) -> Result<Self, CniError> {
        let result: AddResult = super::decode(value, "result")?;
        let version = match result.cni_version.as_deref() {
            Some(v) => CniVersion::parse_config_version(v)?,
            None => default_version,
        };
        result.check_consistency(version)?;
        Ok(result)
    }

    /// Parses and converts to the internal 1.1.0 form.
    pub fn parse_as_latest(
        value: &serde_json::Value,
        default_version: CniVersion,
    ) -> Result<Self, CniError> {
        Ok(Self::parse(value, default_version)?.to_version(CniVersion::LATEST))
    }

    fn check_consistency(&self, version: CniVersion) -> Result<(), CniError> {
        for (i, ip) in self.ips.iter().enumerate() {
            if let Some(v) = &ip.version {
                if !version.has_ip_version_field() {
                    return Err(CniError::decode(format!(
                        "ips[{i}]: \"version\" is not part of CNI {version} results"
                    )));
                }
                if v != ip.family() {
                    return Err(CniError::decode(format!(
                        "ips[{i}]: version {v:?} does not match address {}",
                        ip.address
                    )));
                }
            }
            if let Some(gw) = ip.gateway {
                if gw.is_ipv4() != ip.address.addr().is_ipv4() {
                    return Err(CniError::decode(format!(
                        "ips[{i}]: gateway {gw} is not in the family of {}",
                        ip.address
                    )));
                }
            }
            if let Some(index) = ip.interface {
                if !self.interfaces.is_empty() && index as usize >= self.interfaces.len() {
                    return Err(CniError::decode(format!(
                        "ips[{i}]: interface index {index} out of range ({} interfaces)",
                        self.interfaces.len()
                    )));
                }
            }
        }
        Ok(())
    }

    /// This result in the exact shape of `version`: `cniVersion` set,
    /// `ips[].version` added before 1.0.0 and removed after, 1.1.0-only
    /// fields dropped before 1.1.0.
    pub fn to_version(&self, version: CniVersion) -> Self {
        let mut out = self.clone();
        out.cni_version = Some(version.as_str().to_owned());
        for ip in &mut out.ips {
            ip.version = version.has_ip_version_field().then(|| ip.family().to_owned());
        }
        if !version.has_extended_fields() {
            for iface in &mut out.interfaces {
                iface.mtu = None;
                iface.socket_path = None;
                iface.pci_id = None;
            }
            for route in &mut out.routes {
                route.strip_extended();
            }
        }
        out
    }

    /// The JSON of this result in `version`.
    pub fn to_json(&self, version: CniVersion) -> serde_json::Value {
        serde_json::to_value(self.to_version(version))
            .expect("a result holds only strings, numbers and lists, which always serialize")
    }

    /// Appends `other` after this result, as a chained plugin that adds
    /// interfaces does: `other`'s interface indexes are shifted past ours,
    /// and its DNS settings fill in what ours leave empty.
    pub fn append(&mut self, other: AddResult) {
        let offset = u32::try_from(self.interfaces.len()).unwrap_or(u32::MAX);
        self.interfaces.extend(other.interfaces);
        self.ips.extend(other.ips.into_iter().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i.saturating_add(offset));
            ip
        }));
        self.routes.extend(other.routes);
        let dns = other.dns;
        if self.dns.nameservers.is_empty() {
            self.dns.nameservers = dns.nameservers;
        }
        if self.dns.domain.is_none() {
            self.dns.domain = dns.domain;
        }
        if self.dns.search.is_empty() {
            self.dns.search = dns.search;
        }
        if self.dns.options.is_empty() {
            self.dns.options = dns.options;
        }
    }
}
