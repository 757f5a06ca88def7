//! `NetworkDriver.*` requests and responses.
//!
//! Field names are Go's (`NetworkID`, `IPv4Data`, ...); see
//! libnetwork's `drivers/remote/api` package for the other side.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::de::{
    is_empty, is_none, lenient_bool, non_empty_string, null_as_default, nullable, opt_text, text,
};
use super::values::{MacAddress, Protocol, RouteType, Scope};

/// Option key: the `-o key=value` driver options of `docker network create`.
pub const OPT_GENERIC: &str = "com.docker.network.generic";
/// Option key: whether the network has IPv6 enabled (`--ipv6`).
pub const OPT_ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
/// Option key: the container's exposed ports (`EXPOSE`, `--expose`).
pub const OPT_EXPOSED_PORTS: &str = "com.docker.network.endpoint.exposedports";
/// Option key: the container's published ports (`-p`).
pub const OPT_PORT_MAP: &str = "com.docker.network.portmap";
/// Option key: the user-chosen MAC address (`--mac-address`).
pub const OPT_MAC_ADDRESS: &str = "com.docker.network.endpoint.macaddress";

/// Reply to `NetworkDriver.GetCapabilities`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkCapabilities {
    /// Where network state lives: `local` (this host) or `global`.
    #[serde(rename = "Scope")]
    pub scope: Scope,
    /// Reach of the network's connectivity; Docker uses `Scope` when unset.
    #[serde(
        rename = "ConnectivityScope",
        default,
        with = "opt_text",
        skip_serializing_if = "is_none"
    )]
    pub connectivity_scope: Option<Scope>,
}

/// One address pool of a network, as chosen by the IPAM driver
/// (libnetwork's `driverapi.IPAMData`). Docker omits unset fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamData {
    /// The IPAM address space the pool was taken from.
    #[serde(rename = "AddressSpace", default, deserialize_with = "null_as_default")]
    pub address_space: String,
    /// The pool, e.g. `10.98.1.0/24`.
    #[serde(rename = "Pool", default, with = "opt_text", skip_serializing_if = "is_none")]
    pub pool: Option<IpNet>,
    /// The gateway with the pool's prefix length, e.g. `10.98.1.1/24`.
    #[serde(rename = "Gateway", default, with = "opt_text", skip_serializing_if = "is_none")]
    pub gateway: Option<IpNet>,
    /// Reserved addresses (`--aux-address name=ip`), each as `ip/len`.
    #[serde(
        rename = "AuxAddresses",
        default,
        deserialize_with = "aux_addresses",
        skip_serializing_if = "is_empty"
    )]
    pub aux_addresses: BTreeMap<String, IpNet>,
}

fn aux_addresses<'de, D>(d: D) -> Result<BTreeMap<String, IpNet>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Prefix(#[serde(with = "text")] IpNet);
    let map: Option<BTreeMap<String, Prefix>> = Option::deserialize(d)?;
    Ok(map.unwrap_or_default().into_iter().map(|(k, Prefix(v))| (k, v)).collect())
}

/// The `Options` map of `CreateNetwork`.
///
/// The well-known keys are typed; everything else Docker sends is kept in
/// [`other`](Self::other).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkOptions {
    /// `com.docker.network.generic`: the `-o key=value` driver options.
    #[serde(rename = "com.docker.network.generic", default, skip_serializing_if = "is_none")]
    pub generic: Option<BTreeMap<String, String>>,
    /// `com.docker.network.enable_ipv6`.
    #[serde(
        rename = "com.docker.network.enable_ipv6",
        default,
        with = "lenient_bool",
        skip_serializing_if = "is_none"
    )]
    pub enable_ipv6: Option<bool>,
    /// Every other key, untouched.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

static EMPTY_STRING_MAP: BTreeMap<String, String> = BTreeMap::new();

impl NetworkOptions {
    /// The `-o key=value` driver options (empty when none were given).
    pub fn generic(&self) -> &BTreeMap<String, String> {
        self.generic.as_ref().unwrap_or(&EMPTY_STRING_MAP)
    }

    /// One `-o` driver option, e.g. `neutron.net.uuid`.
    pub fn generic_option(&self, key: &str) -> Option<&str> {
        self.generic().get(key).map(String::as_str)
    }

    /// Whether the user asked for IPv6 (`false` when Docker did not say).
    pub fn enable_ipv6(&self) -> bool {
        self.enable_ipv6.unwrap_or(false)
    }
}

/// Request body of `NetworkDriver.CreateNetwork`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateNetworkRequest {
    /// Docker's network ID (64 hex characters).
    #[serde(rename = "NetworkID", deserialize_with = "non_empty_string")]
    pub network_id: String,
    /// Network options; see [`NetworkOptions`].
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: NetworkOptions,
    /// IPv4 pools and gateways, from IPAM.
    #[serde(rename = "IPv4Data", default, deserialize_with = "null_as_default")]
    pub ipv4_data: Vec<IpamData>,
    /// IPv6 pools and gateways, from IPAM.
    #[serde(rename = "IPv6Data", default, deserialize_with = "null_as_default")]
    pub ipv6_data: Vec<IpamData>,
}

/// A request naming only a network: `DeleteNetwork`, `FreeNetwork`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkIdRequest {
    /// Docker's network ID.
    #[serde(rename = "NetworkID", deserialize_with = "non_empty_string")]
    pub network_id: String,
}

/// Request body of `NetworkDriver.DeleteNetwork`.
pub type DeleteNetworkRequest = NetworkIdRequest;
/// Request body of `NetworkDriver.FreeNetwork`.
pub type FreeNetworkRequest = NetworkIdRequest;

/// Request body of `NetworkDriver.AllocateNetwork` (swarm managers with a
/// global-scope driver only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateNetworkRequest {
    /// Docker's network ID.
    #[serde(rename = "NetworkID", deserialize_with = "non_empty_string")]
    pub network_id: String,
    /// Free-form driver options.
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    /// IPv4 pools and gateways.
    #[serde(rename = "IPv4Data", default, deserialize_with = "null_as_default")]
    pub ipv4_data: Vec<IpamData>,
    /// IPv6 pools and gateways.
    #[serde(rename = "IPv6Data", default, deserialize_with = "null_as_default")]
    pub ipv6_data: Vec<IpamData>,
}

/// Reply to `NetworkDriver.AllocateNetwork`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateNetworkResponse {
    /// Options handed to `CreateNetwork` on every node.
    #[serde(rename = "Options", default, with = "nullable", skip_serializing_if = "is_empty")]
    pub options: BTreeMap<String, String>,
}

/// A request naming an endpoint: `DeleteEndpoint`, `EndpointOperInfo`,
/// `Leave`, `RevokeExternalConnectivity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointIdRequest {
    /// Docker's network ID.
    #[serde(rename = "NetworkID", deserialize_with = "non_empty_string")]
    pub network_id: String,
    /// Docker's endpoint ID (64 hex characters).
    #[serde(rename = "EndpointID", deserialize_with = "non_empty_string")]
    pub endpoint_id: String,
}

/// Request body of `NetworkDriver.DeleteEndpoint`.
pub type DeleteEndpointRequest = EndpointIdRequest;
/// Request body of `NetworkDriver.EndpointOperInfo`.
pub type EndpointOperInfoRequest = EndpointIdRequest;
/// Request body of `NetworkDriver.Leave`.
pub type LeaveRequest = EndpointIdRequest;
/// Request body of `NetworkDriver.RevokeExternalConnectivity`.
pub type RevokeExternalConnectivityRequest = EndpointIdRequest;

/// An endpoint's addresses (`Interface` in CreateEndpoint request and reply).
///
/// In a request, Docker sends `""` for what it has not assigned. In a reply,
/// only the fields the driver sets are sent, and Docker rejects any value
/// that differs from one it already chose ("driver modified interface ...").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInterface {
    /// IPv4 address with prefix length, e.g. `10.98.1.2/24`.
    #[serde(rename = "Address", default, with = "opt_text", skip_serializing_if = "is_none")]
    pub address: Option<IpNet>,
    /// IPv6 address with prefix length.
    #[serde(rename = "AddressIPv6", default, with = "opt_text", skip_serializing_if = "is_none")]
    pub address_ipv6: Option<IpNet>,
    /// MAC address, `aa:bb:cc:dd:ee:ff`.
    #[serde(rename = "MacAddress", default, with = "opt_text", skip_serializing_if = "is_none")]
    pub mac_address: Option<MacAddress>,
}

impl EndpointInterface {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.address.is_none() && self.address_ipv6.is_none() && self.mac_address.is_none()
    }
}

/// A container port (`Proto`/`Port`), from `exposedports`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TransportPort {
    /// IP protocol.
    #[serde(rename = "Proto", default)]
    pub proto: Protocol,
    /// Container port.
    #[serde(rename = "Port", default)]
    pub port: u16,
}

/// A published port (`-p`), from `portmap` (libnetwork's `PortBinding`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// IP protocol.
    #[serde(rename = "Proto", default)]
    pub proto: Protocol,
    /// Container address, usually unset.
    #[serde(rename = "IP", default, with = "opt_text", skip_serializing_if = "is_none")]
    pub ip: Option<IpAddr>,
    /// Container port.
    #[serde(rename = "Port", default)]
    pub port: u16,
    /// Host address to bind, unset for all.
    #[serde(rename = "HostIP", default, with = "opt_text", skip_serializing_if = "is_none")]
    pub host_ip: Option<IpAddr>,
    /// First host port (0 = Docker picks).
    #[serde(rename = "HostPort", default)]
    pub host_port: u16,
    /// Last host port of a range (0 or equal to `HostPort` for one port).
    #[serde(rename = "HostPortEnd", default)]
    pub host_port_end: u16,
}

/// The `Options` map of `CreateEndpoint`, `Join` and
/// `ProgramExternalConnectivity`.
///
/// The well-known keys are typed; everything else is kept in
/// [`other`](Self::other).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointOptions {
    /// `com.docker.network.endpoint.exposedports`.
    #[serde(
        rename = "com.docker.network.endpoint.exposedports",
        default,
        with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exposed_ports: Vec<TransportPort>,
    /// `com.docker.network.portmap`.
    #[serde(
        rename = "com.docker.network.portmap",
        default,
        with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub port_map: Vec<PortBinding>,
    /// `com.docker.network.endpoint.macaddress`, sent only with
    /// `--mac-address`, as base64 of the raw bytes (Go's `[]byte`); decoded.
    #[serde(
        rename = "com.docker.network.endpoint.macaddress",
        default,
        with = "mac_base64",
        skip_serializing_if = "is_none"
    )]
    pub mac_address: Option<MacAddress>,
    /// Every other key, untouched.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl EndpointOptions {
    /// The container's exposed ports.
    pub fn exposed_ports(&self) -> &[TransportPort] {
        &self.exposed_ports
    }

    /// The container's published ports.
    pub fn port_map(&self) -> &[PortBinding] {
        &self.port_map
    }

    /// The MAC address the user asked for, decoded from Docker's base64.
    pub fn mac_address(&self) -> Option<&MacAddress> {
        self.mac_address.as_ref()
    }
}

/// Endpoint options carry Go's `net.HardwareAddr` through a
/// `map[string]interface{}`, so encoding/json writes it as base64.
mod mac_base64 {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::MacAddress;

    pub(super) fn deserialize<'de, D>(d: D) -> Result<Option<MacAddress>, D::Error>
    where
        D: Deserializer<'de>,
    {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => MacAddress::from_base64_or_text(&s)
                .map(Some)
                .map_err(|e| D::Error::custom(format_args!("invalid MAC address {s:?}: {e}"))),
        }
    }

    pub(super) fn serialize<S>(value: &Option<MacAddress>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
    {
        match value {
            Some(mac) => s.serialize_str(&mac.to_base64()),
            None => s.serialize_none(),
        }
    }
}

/// Request body of `NetworkDriver.CreateEndpoint`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateEndpointRequest {
    /// Docker's network ID.
    #[serde(rename = "NetworkID", deserialize_with = "non_empty_string")]
    pub network_id: String,
    /// Docker's endpoint ID.
    #[serde(rename = "EndpointID", deserialize_with = "non_empty_string")]
    pub endpoint_id: String,
    /// Addresses Docker already assigned (through IPAM).
    #[serde(rename = "Interface", default, deserialize_with = "null_as_default")]
    pub interface: EndpointInterface,
    /// Endpoint options; see [`EndpointOptions`].
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: EndpointOptions,
}

/// Reply to `NetworkDriver.CreateEndpoint`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEndpointResponse {
    /// Only what Docker did not set itself (with `RequiresMACAddress`, it
    /// sets both address and MAC, so this stays `None`).
    #[serde(rename = "Interface", default, skip_serializing_if = "is_none")]
    pub interface: Option<EndpointInterface>,
}

/// Reply to `NetworkDriver.EndpointOperInfo`: free-form data shown by
/// `docker network inspect`-like tooling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointOperInfoResponse {
    /// Operational data, e.g. `{"status": "ACTIVE"}`.
    #[serde(rename = "Value", default, deserialize_with = "null_as_default")]
    pub value: BTreeMap<String, serde_json::Value>,
}

/// Request body of `NetworkDriver.Join`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Docker's network ID.
    #[serde(rename = "NetworkID", deserialize_with = "non_empty_string")]
    pub network_id: String,
    /// Docker's endpoint ID.
    #[serde(rename = "EndpointID", deserialize_with = "non_empty_string")]
    pub endpoint_id: String,
    /// Path of the container's network namespace, e.g.
    /// `/var/run/docker/netns/22e67db7125f`.
    #[serde(rename = "SandboxKey", deserialize_with = "non_empty_string")]
    pub sandbox_key: String,
    /// Endpoint options; see [`EndpointOptions`].
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: EndpointOptions,
}

/// The host-side interface Docker moves into the container, and the name
/// prefix it gets there (`eth` makes `eth0`, `eth1`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceName {
    /// Name of the interface in the host namespace.
    #[serde(rename = "SrcName")]
    pub src_name: String,
    /// Prefix of its name inside the container.
    #[serde(rename = "DstPrefix")]
    pub dst_prefix: String,
}

/// A route Docker adds in the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticRoute {
    /// Destination prefix.
    #[serde(rename = "Destination", with = "text")]
    pub destination: IpNet,
    /// Next hop or connected.
    #[serde(rename = "RouteType", default)]
    pub route_type: RouteType,
    /// Next hop, for [`RouteType::NextHop`].
    #[serde(rename = "NextHop", default, with = "opt_text", skip_serializing_if = "is_none")]
    pub next_hop: Option<IpAddr>,
}

/// Reply to `NetworkDriver.Join`.
///
/// Without a gateway, a default static route or `DisableGatewayService`,
/// Docker also attaches the container to `docker_gwbridge`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The interface to move into the container.
    #[serde(rename = "InterfaceName", default, skip_serializing_if = "is_none")]
    pub interface_name: Option<InterfaceName>,
    /// IPv4 default gateway.
    #[serde(rename = "Gateway", default, with = "opt_text", skip_serializing_if = "is_none")]
    pub gateway: Option<IpAddr>,
    /// IPv6 default gateway.
    #[serde(rename = "GatewayIPv6", default, with = "opt_text", skip_serializing_if = "is_none")]
    pub gateway_ipv6: Option<IpAddr>,
    /// Extra routes.
    #[serde(
        rename = "StaticRoutes",
        default,
        with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub static_routes: Vec<StaticRoute>,
    /// Keep Docker from adding its own gateway network.
    #[serde(rename = "DisableGatewayService", default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_gateway_service: bool,
}

/// Request body of `NetworkDriver.ProgramExternalConnectivity`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgramExternalConnectivityRequest {
    /// Docker's network ID.
    #[serde(rename = "NetworkID", deserialize_with = "non_empty_string")]
    pub network_id: String,
    /// Docker's endpoint ID.
    #[serde(rename = "EndpointID", deserialize_with = "non_empty_string")]
    pub endpoint_id: String,
    /// Endpoint options, with the exposed and published ports.
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: EndpointOptions,
}

/// Discovery type of node join/leave events, the only type Docker forwards.
pub const NODE_DISCOVERY: i64 = 1;

/// Request body of `NetworkDriver.DiscoverNew` and `DiscoverDelete`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryNotification {
    /// 1 = node discovery (the only type Docker forwards to remote drivers).
    #[serde(rename = "DiscoveryType")]
    pub discovery_type: i64,
    /// The node, for node discovery.
    #[serde(rename = "DiscoveryData", default, with = "nullable")]
    pub discovery_data: NodeDiscoveryData,
}

/// A swarm node, in a node discovery notification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDiscoveryData {
    /// The node's advertised address.
    #[serde(rename = "Address", default, deserialize_with = "null_as_default")]
    pub address: String,
    /// The node's bind address.
    #[serde(rename = "BindAddress", default, deserialize_with = "null_as_default")]
    pub bind_address: String,
    /// Whether this is the local node.
    #[serde(rename = "Self", default)]
    pub is_self: bool,
}
