//! Neutron resources as returned by the API, and the request bodies.
//!
//! Reply types accept missing fields (so `fields=` selections parse), `null`
//! where a value is expected (it becomes the default), numbers sent as
//! strings where Neutron does that, and ignore unknown fields. Request types
//! serialize only the fields that are set; each has an `extra` map for
//! attributes this crate does not model. Neutron 29 accepts `tags` in the
//! create body of ports only (with the `tag_ports_during_bulk_creation`
//! extension driver); tag other resources with
//! [`Neutron::replace_tags`](super::Neutron::replace_tags) after creating them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::de::{nd, opt_u32};
use super::ids::{
    AddressScopeId, FloatingIpId, NetworkId, PortId, PortStatus, ProjectId, RouterId,
    SecurityGroupId, SecurityGroupRuleId, SubnetId, SubnetPoolId, TrunkId, VifType,
};

fn is_empty_map(m: &Map<String, Value>) -> bool {
    m.is_empty()
}

// ---------------------------------------------------------------- replies

/// Defines a reply struct whose every field is lenient: missing or `null`
/// gives the field's default, and an `Option<u32>` also takes a numeric
/// string (Neutron sends some counts as `"24"`). The fields are munched one
/// at a time because that choice of deserializer depends on the type.
macro_rules! reply {
    ($(#[$meta:meta])* $name:ident { $($fields:tt)* }) => {
        reply! { @munch [$(#[$meta])* $name] [] $($fields)* }
    };
    (@munch $head:tt [$($done:tt)*]
        $(#[$fmeta:meta])* $field:ident: Option<u32>, $($rest:tt)*
    ) => {
        reply! { @munch $head [$($done)*
            $(#[$fmeta])* #[serde(deserialize_with = "opt_u32")] pub $field: Option<u32>,
        ] $($rest)* }
    };
    (@munch $head:tt [$($done:tt)*]
        $(#[$fmeta:meta])* $field:ident: $ty:ty, $($rest:tt)*
    ) => {
        reply! { @munch $head [$($done)*
            $(#[$fmeta])* #[serde(deserialize_with = "nd")] pub $field: $ty,
        ] $($rest)* }
    };
    (@munch [$(#[$meta:meta])* $name:ident] [$($done:tt)*]) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name { $($done)* }
    };
}

reply! {
    /// An API extension (`GET /v2.0/extensions`).
    Extension {
        /// Alias used to check for the extension (e.g. `trunk`).
        alias: String,
        /// Human name.
        name: String,
        /// Description.
        description: String,
        /// Last update timestamp.
        updated: String,
    }
}

reply! {
    /// A network.
    Network {
        /// UUID.
        id: NetworkId,
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// `ACTIVE`, `DOWN`, `BUILD` or `ERROR`.
        status: String,
        /// Subnet ids.
        subnets: Vec<SubnetId>,
        /// Tags.
        tags: Vec<String>,
        /// MTU.
        mtu: Option<u32>,
        /// Shared with all projects.
        shared: bool,
        /// Owner project.
        project_id: Option<ProjectId>,
        /// Administrative state.
        admin_state_up: bool,
        /// `provider:network_type` (admin only).
        #[serde(rename = "provider:network_type")]
        network_type: Option<String>,
        /// `provider:physical_network` (admin only).
        #[serde(rename = "provider:physical_network")]
        physical_network: Option<String>,
        /// `provider:segmentation_id` (admin only).
        #[serde(rename = "provider:segmentation_id")]
        segmentation_id: Option<u32>,
        /// `router:external`.
        #[serde(rename = "router:external")]
        router_external: bool,
        /// Default port security of new ports.
        port_security_enabled: Option<bool>,
        /// Revision, bumped on every change.
        revision_number: Option<u64>,
    }
}

/// An allocation pool of a subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPool {
    /// First address.
    pub start: IpAddr,
    /// Last address.
    pub end: IpAddr,
}

/// A static route of a subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    /// Destination CIDR.
    pub destination: String,
    /// Next hop.
    pub nexthop: IpAddr,
}

reply! {
    /// A subnet.
    Subnet {
        /// UUID.
        id: SubnetId,
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Network id.
        network_id: NetworkId,
        /// CIDR, e.g. `10.0.0.0/24`.
        cidr: String,
        /// 4 or 6.
        ip_version: Option<u32>,
        /// Gateway, or `None` when the subnet has none.
        gateway_ip: Option<IpAddr>,
        /// Allocation pools.
        allocation_pools: Vec<AllocationPool>,
        /// Static routes.
        host_routes: Vec<HostRoute>,
        /// DNS servers.
        dns_nameservers: Vec<String>,
        /// DHCP enabled.
        enable_dhcp: bool,
        /// The subnetpool the CIDR came from.
        subnetpool_id: Option<SubnetPoolId>,
        /// IPv6 address mode.
        ipv6_address_mode: Option<String>,
        /// IPv6 router advertisement mode.
        ipv6_ra_mode: Option<String>,
        /// Tags.
        tags: Vec<String>,
        /// Owner project.
        project_id: Option<ProjectId>,
        /// Revision.
        revision_number: Option<u64>,
    }
}

reply! {
    /// A subnetpool.
    SubnetPool {
        /// UUID.
        id: SubnetPoolId,
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Prefixes (CIDRs) of the pool.
        prefixes: Vec<String>,
        /// Default prefix length (Neutron sends it as a string).
        default_prefixlen: Option<u32>,
        /// Minimum prefix length.
        min_prefixlen: Option<u32>,
        /// Maximum prefix length.
        max_prefixlen: Option<u32>,
        /// 4 or 6.
        ip_version: Option<u32>,
        /// Shared with all projects.
        shared: bool,
        /// The default pool.
        is_default: bool,
        /// Address scope.
        address_scope_id: Option<AddressScopeId>,
        /// Tags.
        tags: Vec<String>,
        /// Owner project.
        project_id: Option<ProjectId>,
        /// Revision.
        revision_number: Option<u64>,
    }
}

/// An address of a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    /// Subnet id.
    pub subnet_id: SubnetId,
    /// Address.
    pub ip_address: IpAddr,
}

/// An allowed address pair of a port (request and reply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPair {
    /// Address or CIDR.
    pub ip_address: String,
    /// MAC; the port's own when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
}

reply! {
    /// A subport of a trunk (request and reply).
    #[derive(Eq)]
    SubPort {
        /// The subport's port id.
        port_id: PortId,
        /// `vlan` (or `inherit`).
        segmentation_type: String,
        /// VLAN id.
        #[serde(skip_serializing_if = "Option::is_none")]
        segmentation_id: Option<u32>,
        /// MAC of the subport (only in a port's `trunk_details`; never sent).
        #[serde(skip_serializing)]
        mac_address: Option<String>,
    }
}

impl SubPort {
    /// A VLAN subport, as sent to `add_subports`.
    pub fn vlan(port_id: impl Into<PortId>, vlan_id: u32) -> Self {
        SubPort {
            port_id: port_id.into(),
            segmentation_type: "vlan".into(),
            segmentation_id: Some(vlan_id),
            mac_address: None,
        }
    }
}

reply! {
    /// `trunk_details` of a trunk's parent port.
    #[derive(Eq)]
    TrunkDetails {
        /// Trunk id.
        trunk_id: TrunkId,
        /// Subports.
        sub_ports: Vec<SubPort>,
    }
}

reply! {
    /// A port.
    Port {
        /// UUID.
        id: PortId,
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Network id.
        network_id: NetworkId,
        /// MAC address.
        mac_address: String,
        /// Addresses.
        fixed_ips: Vec<FixedIp>,
        /// Owner kind, e.g. `compute:kuryr`.
        device_owner: String,
        /// Owner id.
        device_id: String,
        /// `ACTIVE`, `DOWN`, `BUILD` or `ERROR` (read-only).
        status: PortStatus,
        /// Tags.
        tags: Vec<String>,
        /// Administrative state.
        admin_state_up: bool,
        /// `binding:host_id` (admin only).
        #[serde(rename = "binding:host_id")]
        binding_host_id: String,
        /// `binding:vif_type`, e.g. `ovs`, `unbound`, `binding_failed`.
        #[serde(rename = "binding:vif_type")]
        binding_vif_type: VifType,
        /// `binding:vif_details`.
        #[serde(rename = "binding:vif_details")]
        binding_vif_details: Value,
        /// `binding:vnic_type`, e.g. `normal`.
        #[serde(rename = "binding:vnic_type")]
        binding_vnic_type: String,
        /// `binding:profile`.
        #[serde(rename = "binding:profile")]
        binding_profile: Value,
        /// Allowed address pairs.
        allowed_address_pairs: Vec<AddressPair>,
        /// Security group ids.
        security_groups: Vec<SecurityGroupId>,
        /// Port security.
        port_security_enabled: Option<bool>,
        /// Revision, for `If-Match: revision_number=N`.
        revision_number: Option<u64>,
        /// Set when the port is a trunk parent.
        trunk_details: Option<TrunkDetails>,
        /// Owner project.
        project_id: Option<ProjectId>,
    }
}

reply! {
    /// A trunk.
    Trunk {
        /// UUID.
        id: TrunkId,
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Parent port id.
        port_id: PortId,
        /// `ACTIVE`, `DOWN`, `BUILD`, `DEGRADED` or `ERROR`.
        status: String,
        /// Administrative state.
        admin_state_up: bool,
        /// Subports.
        sub_ports: Vec<SubPort>,
        /// Tags.
        tags: Vec<String>,
        /// Owner project.
        project_id: Option<ProjectId>,
        /// Revision.
        revision_number: Option<u64>,
    }
}

reply! {
    /// A security group rule.
    SecurityGroupRule {
        /// UUID.
        id: SecurityGroupRuleId,
        /// Group id.
        security_group_id: SecurityGroupId,
        /// `ingress` or `egress`.
        direction: String,
        /// `IPv4` or `IPv6`.
        ethertype: String,
        /// Protocol name or number; `None` for any.
        protocol: Option<String>,
        /// Lowest port.
        port_range_min: Option<u32>,
        /// Highest port.
        port_range_max: Option<u32>,
        /// Remote CIDR.
        remote_ip_prefix: Option<String>,
        /// Remote group.
        remote_group_id: Option<SecurityGroupId>,
        /// Description.
        description: String,
        /// Owner project.
        project_id: Option<ProjectId>,
        /// Revision.
        revision_number: Option<u64>,
    }
}

reply! {
    /// A security group.
    SecurityGroup {
        /// UUID.
        id: SecurityGroupId,
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Rules.
        security_group_rules: Vec<SecurityGroupRule>,
        /// Stateful.
        stateful: Option<bool>,
        /// Tags.
        tags: Vec<String>,
        /// Owner project.
        project_id: Option<ProjectId>,
        /// Revision.
        revision_number: Option<u64>,
    }
}

reply! {
    /// A floating IP.
    FloatingIp {
        /// UUID.
        id: FloatingIpId,
        /// The floating address.
        floating_ip_address: Option<IpAddr>,
        /// External network id.
        floating_network_id: NetworkId,
        /// Associated port.
        port_id: Option<PortId>,
        /// Associated fixed address.
        fixed_ip_address: Option<IpAddr>,
        /// Router.
        router_id: Option<RouterId>,
        /// `ACTIVE`, `DOWN` or `ERROR`.
        status: String,
        /// Description.
        description: String,
        /// Tags.
        tags: Vec<String>,
        /// Owner project.
        project_id: Option<ProjectId>,
        /// Revision.
        revision_number: Option<u64>,
    }
}

/// Defines [`Quota`]: a limit a resource, sent in an update only when set.
macro_rules! quota {
    ($($(#[$fmeta:meta])* $field:ident,)*) => {
        /// Quotas of a project (reply, and body of an update: only set fields
        /// are sent). `-1` means unlimited.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Quota {
            $(
                $(#[$fmeta])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $field: Option<i64>,
            )*
            /// Other quotas (e.g. `rbac_policy`, `trunk`).
            #[serde(flatten)]
            pub other: BTreeMap<String, Value>,
        }
    };
}

quota! {
    /// Networks.
    network,
    /// Subnets.
    subnet,
    /// Subnetpools.
    subnetpool,
    /// Ports.
    port,
    /// Routers.
    router,
    /// Floating IPs.
    floatingip,
    /// Security groups.
    security_group,
    /// Security group rules.
    security_group_rule,
}

// ---------------------------------------------------------------- requests

/// Defines a request body: the first field list is always sent, the second
/// (each an `Option`) only when set, and `extra` is flattened in.
macro_rules! body {
    (
        $(#[$meta:meta])* $name:ident
        { $( $(#[$rmeta:meta])* $req:ident: $rty:ty, )* }
        { $( $(#[$ometa:meta])* $opt:ident: $oty:ty, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize)]
        pub struct $name {
            $( $(#[$rmeta])* pub $req: $rty, )*
            $(
                $(#[$ometa])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $opt: $oty,
            )*
            /// Other attributes, sent as is.
            #[serde(flatten, skip_serializing_if = "is_empty_map")]
            pub extra: Map<String, Value>,
        }
    };
}

/// Defines the create and the update body of a resource: `create` has its
/// required fields and its own optional ones, `update` its own optional
/// ones, and the `shared` optional fields are written once for both.
macro_rules! bodies {
    (
        $(#[$cmeta:meta])* create $create:ident { $($creq:tt)* } { $($copt:tt)* }
        $(#[$umeta:meta])* update $update:ident { $($uopt:tt)* }
        shared { $($shared:tt)* }
    ) => {
        body! { $(#[$cmeta])* $create { $($creq)* } { $($shared)* $($copt)* } }
        body! { $(#[$umeta])* $update {} { $($shared)* $($uopt)* } }
    };
}

/// An address asked for in a port create/update: a subnet, an address, or
/// both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FixedIpRequest {
    /// Subnet to allocate from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<SubnetId>,
    /// Exact address wanted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<IpAddr>,
}

impl FixedIpRequest {
    /// Any address from `subnet_id`.
    pub fn subnet(subnet_id: impl Into<SubnetId>) -> Self {
        FixedIpRequest { subnet_id: Some(subnet_id.into()), ip_address: None }
    }

    /// Exactly `ip` (from `subnet_id` when given).
    pub fn address(ip: IpAddr, subnet_id: Option<SubnetId>) -> Self {
        FixedIpRequest { subnet_id, ip_address: Some(ip) }
    }
}

bodies! {
    /// Body of a network create. Only set fields are sent.
    create NetworkCreate {} {
        /// `provider:network_type`.
        #[serde(rename = "provider:network_type")]
        network_type: Option<String>,
        /// `provider:physical_network`.
        #[serde(rename = "provider:physical_network")]
        physical_network: Option<String>,
        /// `provider:segmentation_id`.
        #[serde(rename = "provider:segmentation_id")]
        segmentation_id: Option<u32>,
        /// Owner project (admin).
        project_id: Option<ProjectId>,
    }
    /// Body of a network update. Only set fields are sent.
    update NetworkUpdate {}
    shared {
        /// Name.
        name: Option<String>,
        /// Description.
        description: Option<String>,
        /// Administrative state.
        admin_state_up: Option<bool>,
        /// Shared.
        shared: Option<bool>,
        /// MTU.
        mtu: Option<u32>,
        /// `router:external`.
        #[serde(rename = "router:external")]
        router_external: Option<bool>,
        /// Default port security.
        port_security_enabled: Option<bool>,
    }
}

bodies! {
    /// Body of a subnet create. Only set fields are sent.
    create SubnetCreate {
        /// Network id (required).
        network_id: NetworkId,
        /// 4 or 6 (required).
        ip_version: u8,
    } {
        /// CIDR; may be omitted with `subnetpool_id`.
        cidr: Option<String>,
        /// Allocate the CIDR from this pool.
        subnetpool_id: Option<SubnetPoolId>,
        /// Prefix length wanted from the pool.
        prefixlen: Option<u32>,
        /// IPv6 address mode.
        ipv6_address_mode: Option<String>,
        /// IPv6 RA mode.
        ipv6_ra_mode: Option<String>,
        /// Owner project (admin).
        project_id: Option<ProjectId>,
    }
    /// Body of a subnet update. Only set fields are sent.
    update SubnetUpdate {}
    shared {
        /// Name.
        name: Option<String>,
        /// Description.
        description: Option<String>,
        /// `Some(None)` sends `null`: no gateway (an update removes it).
        gateway_ip: Option<Option<IpAddr>>,
        /// Allocation pools.
        allocation_pools: Option<Vec<AllocationPool>>,
        /// Static routes.
        host_routes: Option<Vec<HostRoute>>,
        /// DNS servers.
        dns_nameservers: Option<Vec<String>>,
        /// DHCP.
        enable_dhcp: Option<bool>,
    }
}

impl SubnetCreate {
    /// A subnet of `cidr` on `network_id`; the IP version follows the CIDR.
    pub fn new(network_id: impl Into<NetworkId>, cidr: impl Into<String>) -> Self {
        let cidr = cidr.into();
        SubnetCreate {
            network_id: network_id.into(),
            ip_version: if cidr.contains(':') { 6 } else { 4 },
            cidr: Some(cidr),
            ..SubnetCreate::default()
        }
    }
}

bodies! {
    /// Body of a subnetpool create. Only set fields are sent.
    create SubnetPoolCreate {
        /// Name (required by Neutron).
        name: String,
        /// Prefixes (required).
        prefixes: Vec<String>,
    } {
        /// Shared.
        shared: Option<bool>,
        /// Default pool.
        is_default: Option<bool>,
        /// Address scope.
        address_scope_id: Option<AddressScopeId>,
        /// Owner project (admin).
        project_id: Option<ProjectId>,
    }
    /// Body of a subnetpool update. Only set fields are sent.
    update SubnetPoolUpdate {
        /// Name.
        name: Option<String>,
        /// Prefixes (may only grow).
        prefixes: Option<Vec<String>>,
    }
    shared {
        /// Description.
        description: Option<String>,
        /// Default prefix length.
        default_prefixlen: Option<u32>,
        /// Minimum prefix length.
        min_prefixlen: Option<u32>,
        /// Maximum prefix length.
        max_prefixlen: Option<u32>,
    }
}

bodies! {
    /// Body of a port create. Only set fields are sent.
    create PortCreate {
        /// Network id (required).
        network_id: NetworkId,
    } {
        /// `binding:vnic_type`.
        #[serde(rename = "binding:vnic_type")]
        binding_vnic_type: Option<String>,
        /// Tags (bulk creation needs the `tag_ports_during_bulk_creation` driver).
        tags: Option<Vec<String>>,
        /// Owner project (admin).
        project_id: Option<ProjectId>,
    }
    /// Body of a port update. Only set fields are sent.
    update PortUpdate {}
    shared {
        /// Name.
        name: Option<String>,
        /// Description.
        description: Option<String>,
        /// MAC address.
        mac_address: Option<String>,
        /// Addresses wanted (an update replaces all).
        fixed_ips: Option<Vec<FixedIpRequest>>,
        /// Owner kind.
        device_owner: Option<String>,
        /// Owner id.
        device_id: Option<String>,
        /// `binding:host_id` (admin by default policy; `""` unbinds).
        #[serde(rename = "binding:host_id")]
        binding_host_id: Option<String>,
        /// `binding:profile`.
        #[serde(rename = "binding:profile")]
        binding_profile: Option<Value>,
        /// Administrative state.
        admin_state_up: Option<bool>,
        /// Security groups (`Some(vec![])` for none at all; an update
        /// replaces all).
        security_groups: Option<Vec<SecurityGroupId>>,
        /// Allowed address pairs (an update replaces all).
        allowed_address_pairs: Option<Vec<AddressPair>>,
        /// Port security.
        port_security_enabled: Option<bool>,
    }
}

impl PortCreate {
    /// A port on `network_id` with everything else left to Neutron.
    pub fn new(network_id: impl Into<NetworkId>) -> Self {
        PortCreate { network_id: network_id.into(), ..PortCreate::default() }
    }
}

bodies! {
    /// Body of a trunk create. Only set fields are sent.
    create TrunkCreate {
        /// Parent port (required; create the trunk before binding it).
        port_id: PortId,
    } {
        /// Initial subports.
        sub_ports: Option<Vec<SubPort>>,
        /// Owner project (admin).
        project_id: Option<ProjectId>,
    }
    /// Body of a trunk update. Only set fields are sent.
    update TrunkUpdate {}
    shared {
        /// Name.
        name: Option<String>,
        /// Description.
        description: Option<String>,
        /// Administrative state.
        admin_state_up: Option<bool>,
    }
}

body! {
    /// Body of a security group create. Only set fields are sent.
    SecurityGroupCreate {
        /// Name (required).
        name: String,
    } {
        /// Description.
        description: Option<String>,
        /// Stateful.
        stateful: Option<bool>,
        /// Owner project (admin).
        project_id: Option<ProjectId>,
    }
}

body! {
    /// Body of a security group rule create. Only set fields are sent.
    SecurityGroupRuleCreate {
        /// Group (required).
        security_group_id: SecurityGroupId,
        /// `ingress` or `egress` (required).
        direction: String,
    } {
        /// `IPv4` or `IPv6`.
        ethertype: Option<String>,
        /// Protocol.
        protocol: Option<String>,
        /// Lowest port.
        port_range_min: Option<u32>,
        /// Highest port.
        port_range_max: Option<u32>,
        /// Remote CIDR.
        remote_ip_prefix: Option<String>,
        /// Remote group.
        remote_group_id: Option<SecurityGroupId>,
        /// Description.
        description: Option<String>,
        /// Owner project (admin).
        project_id: Option<ProjectId>,
    }
}

bodies! {
    /// Body of a floating IP create. Only set fields are sent.
    create FloatingIpCreate {
        /// External network (required).
        floating_network_id: NetworkId,
    } {
        /// Exact floating address wanted.
        floating_ip_address: Option<IpAddr>,
        /// Subnet of the external network to allocate from.
        subnet_id: Option<SubnetId>,
        /// Port to associate.
        port_id: Option<PortId>,
        /// Owner project (admin).
        project_id: Option<ProjectId>,
    }
    /// Body of a floating IP update (associate, disassociate). Only set
    /// fields are sent.
    update FloatingIpUpdate {
        /// `Some(None)` sends `null`: disassociate.
        port_id: Option<Option<PortId>>,
    }
    shared {
        /// Fixed address of the port to associate.
        fixed_ip_address: Option<IpAddr>,
        /// Description.
        description: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn port_with_real_shape() {
        let port: Port = serde_json::from_value(json!({
            "id": "p1", "name": "", "network_id": "n1", "mac_address": "fa:16:3e:00:00:01",
            "admin_state_up": true, "status": "DOWN", "device_id": "", "device_owner": "",
            "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"},
                          {"subnet_id": "s6", "ip_address": "fd00::5"}],
            "allowed_address_pairs": [{"ip_address": "10.0.0.0/24", "mac_address": "fa:16:3e:00:00:02"}],
            "extra_dhcp_opts": [], "security_groups": ["sg"], "description": null,
            "binding:vnic_type": "normal", "binding:profile": {}, "binding:host_id": "vm",
            "binding:vif_type": "ovs",
            "binding:vif_details": {"port_filter": true, "bridge_name": "br-int", "datapath_type": "netdev"},
            "port_security_enabled": true, "tags": ["a"], "created_at": "2026-11-28T01:00:00Z",
            "revision_number": 3, "project_id": "proj", "tenant_id": "proj",
            "trunk_details": {"trunk_id": "t1", "sub_ports": [
                {"port_id": "sp", "segmentation_type": "vlan", "segmentation_id": 101,
                 "mac_address": "fa:16:3e:00:00:03"}]},
            "dns_name": null, "qos_policy_id": null
        }))
        .unwrap();
        assert_eq!(port.fixed_ips[1].ip_address, "fd00::5".parse::<IpAddr>().unwrap());
        assert_eq!(port.binding_vif_details["bridge_name"], "br-int");
        assert_eq!(port.description, "");
        assert_eq!(port.revision_number, Some(3));
        let td = port.trunk_details.unwrap();
        assert_eq!(td.sub_ports[0].segmentation_id, Some(101));
        assert_eq!(td.sub_ports[0].mac_address.as_deref(), Some("fa:16:3e:00:00:03"));
    }

    #[test]
    fn partial_port_from_fields_selection() {
        let p: Port = serde_json::from_value(json!({"id": "p1", "device_id": "d"})).unwrap();
        assert_eq!(p.id, "p1");
        assert!(p.fixed_ips.is_empty());
        assert_eq!(p.binding_vif_details, Value::Null);
    }

    #[test]
    fn subnetpool_prefixlens_as_strings_or_numbers() {
        let sp: SubnetPool = serde_json::from_value(json!({
            "id": "sp", "name": "kuryr", "prefixes": ["10.10.0.0/16"],
            "default_prefixlen": "24", "min_prefixlen": "8", "max_prefixlen": 32,
            "ip_version": 4, "shared": false, "is_default": false, "address_scope_id": null
        }))
        .unwrap();
        assert_eq!(sp.default_prefixlen, Some(24));
        assert_eq!(sp.min_prefixlen, Some(8));
        assert_eq!(sp.max_prefixlen, Some(32));
    }

    #[test]
    fn subnet_without_gateway() {
        let s: Subnet = serde_json::from_value(json!({
            "id": "s", "network_id": "n", "cidr": "10.0.0.0/24", "ip_version": 4,
            "gateway_ip": null, "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.254"}],
            "host_routes": [], "dns_nameservers": [], "enable_dhcp": true, "subnetpool_id": null
        }))
        .unwrap();
        assert_eq!(s.gateway_ip, None);
        assert_eq!(s.allocation_pools[0].end.to_string(), "10.0.0.254");
    }

    #[test]
    fn network_provider_fields() {
        let n: Network = serde_json::from_value(json!({
            "id": "n", "provider:network_type": "geneve", "provider:segmentation_id": 7,
            "router:external": false, "mtu": 1442, "subnets": null
        }))
        .unwrap();
        assert_eq!(n.network_type.as_deref(), Some("geneve"));
        assert_eq!(n.segmentation_id, Some(7));
        assert_eq!(n.mtu, Some(1442));
    }

    #[test]
    fn port_create_sends_only_what_is_set() {
        let mut extra = Map::new();
        extra.insert("dns_name".into(), json!("c1"));
        let body = serde_json::to_value(PortCreate {
            name: Some("p".into()),
            fixed_ips: Some(vec![
                FixedIpRequest::subnet("s1"),
                FixedIpRequest::address("10.0.0.9".parse().unwrap(), None),
            ]),
            binding_host_id: Some("host".into()),
            allowed_address_pairs: Some(vec![AddressPair {
                ip_address: "10.0.0.7".into(),
                mac_address: None,
            }]),
            extra,
            ..PortCreate::new("n1")
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"network_id": "n1", "name": "p", "binding:host_id": "host",
                   "fixed_ips": [{"subnet_id": "s1"}, {"ip_address": "10.0.0.9"}],
                   "allowed_address_pairs": [{"ip_address": "10.0.0.7"}],
                   "dns_name": "c1"})
        );
    }

    #[test]
    fn nullable_updates() {
        let body =
            serde_json::to_value(FloatingIpUpdate { port_id: Some(None), ..Default::default() })
                .unwrap();
        assert_eq!(body, json!({"port_id": null}));
        let body =
            serde_json::to_value(SubnetUpdate { gateway_ip: Some(None), ..Default::default() })
                .unwrap();
        assert_eq!(body, json!({"gateway_ip": null}));
        assert_eq!(serde_json::to_value(SubnetUpdate::default()).unwrap(), json!({}));
    }

    #[test]
    fn subport_sends_no_mac() {
        let mut sp = SubPort::vlan("p", 100);
        sp.mac_address = Some("fa:16:3e:00:00:01".into());
        assert_eq!(
            serde_json::to_value(&sp).unwrap(),
            json!({"port_id": "p", "segmentation_type": "vlan", "segmentation_id": 100})
        );
    }

    #[test]
    fn quota_roundtrip_keeps_unknown() {
        let q: Quota =
            serde_json::from_value(json!({"port": 50, "network": 10, "trunk": -1})).unwrap();
        assert_eq!(q.port, Some(50));
        assert_eq!(q.other["trunk"], json!(-1));
        let upd = Quota { port: Some(5), ..Default::default() };
        assert_eq!(serde_json::to_value(upd).unwrap(), json!({"port": 5}));
    }

    #[test]
    fn subnet_create_infers_version() {
        assert_eq!(SubnetCreate::new("n", "fd00::/64").ip_version, 6);
        assert_eq!(SubnetCreate::new("n", "10.0.0.0/24").ip_version, 4);
    }
}
