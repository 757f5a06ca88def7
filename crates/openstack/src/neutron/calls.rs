//! The typed calls on each resource: create, show, list, update, delete.

use reqwest::Method;
use serde_json::json;

use super::{
    collection_path, to_value, FloatingIp, FloatingIpCreate, FloatingIpUpdate, Network,
    NetworkCreate, NetworkUpdate, Neutron, Port, PortCreate, PortUpdate, Query, Resource,
    SecurityGroup, SecurityGroupCreate, SecurityGroupRule, SecurityGroupRuleCreate, Subnet,
    SubnetCreate, SubnetPool, SubnetPoolCreate, SubnetPoolUpdate, SubnetUpdate, Trunk, TrunkCreate,
    TrunkUpdate,
};
use crate::client::ApiRequest;
use crate::error::Result;

/// Defines `Neutron`'s typed calls on one resource over the generic ones;
/// each call is optional (Neutron has no update of a security group rule,
/// say).
macro_rules! typed_calls {
    (
        $res:ident: $ty:ty, $one:literal, $many:literal {
            $(create $create:ident($cbody:ty);)?
            $(get $get:ident;)?
            $(list $list:ident;)?
            $(update $update:ident($ubody:ty);)?
            $(delete $delete:ident;)?
        }
    ) => {
        impl Neutron {
            $(
                #[doc = concat!("Creates ", $one, ".")]
                pub async fn $create(&self, body: &$cbody) -> Result<$ty> {
                    self.create(Resource::$res, body).await
                }
            )?
            $(
                #[doc = concat!("Shows ", $one, ".")]
                pub async fn $get(&self, id: &str) -> Result<$ty> {
                    self.show(Resource::$res, id, &Query::new()).await
                }
            )?
            $(
                #[doc = concat!("Lists ", $many, " (all pages).")]
                pub async fn $list(&self, query: &Query) -> Result<Vec<$ty>> {
                    self.list(Resource::$res, query).await
                }
            )?
            $(
                #[doc = concat!("Updates ", $one, ".")]
                pub async fn $update(&self, id: &str, body: &$ubody) -> Result<$ty> {
                    self.update(Resource::$res, id, body).await
                }
            )?
            $(
                #[doc = concat!("Deletes ", $one, ".")]
                pub async fn $delete(&self, id: &str) -> Result<()> {
                    self.delete(Resource::$res, id).await
                }
            )?
        }
    };
}

typed_calls!(Networks: Network, "a network", "networks" {
    create create_network(NetworkCreate);
    get get_network;
    list list_networks;
    update update_network(NetworkUpdate);
    delete delete_network;
});

typed_calls!(Subnets: Subnet, "a subnet", "subnets" {
    create create_subnet(SubnetCreate);
    get get_subnet;
    list list_subnets;
    update update_subnet(SubnetUpdate);
    delete delete_subnet;
});

typed_calls!(SubnetPools: SubnetPool, "a subnetpool", "subnetpools" {
    create create_subnetpool(SubnetPoolCreate);
    get get_subnetpool;
    list list_subnetpools;
    update update_subnetpool(SubnetPoolUpdate);
    delete delete_subnetpool;
});

typed_calls!(Ports: Port, "a port", "ports" {
    create create_port(PortCreate);
    get get_port;
    list list_ports;
    update update_port(PortUpdate);
    delete delete_port;
});

typed_calls!(Trunks: Trunk, "a trunk", "trunks" {
    create create_trunk(TrunkCreate);
    get get_trunk;
    list list_trunks;
    update update_trunk(TrunkUpdate);
    delete delete_trunk;
});

typed_calls!(SecurityGroups: SecurityGroup, "a security group", "security groups" {
    create create_security_group(SecurityGroupCreate);
    get get_security_group;
    list list_security_groups;
    delete delete_security_group;
});

typed_calls!(SecurityGroupRules: SecurityGroupRule, "a security group rule", "security group rules" {
    create create_security_group_rule(SecurityGroupRuleCreate);
    list list_security_group_rules;
    delete delete_security_group_rule;
});

typed_calls!(FloatingIps: FloatingIp, "a floating IP", "floating IPs" {
    create create_floating_ip(FloatingIpCreate);
    get get_floating_ip;
    list list_floating_ips;
    update update_floating_ip(FloatingIpUpdate);
    delete delete_floating_ip;
});

impl Neutron {
    /// Creates ports in one atomic bulk request (`{"ports": [...]}`): either
    /// all are created or none. An empty slice sends nothing.
    pub async fn create_ports(&self, bodies: &[PortCreate]) -> Result<Vec<Port>> {
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        let path = collection_path(Resource::Ports);
        let body = json!({ "ports": to_value("POST", &path, &bodies)? });
        self.send_for(ApiRequest::new(Method::POST, path).json(body), "ports").await
    }

    /// Updates a port only if its `revision_number` is still `revision`
    /// (`If-Match: revision_number=N`); otherwise Neutron answers 412
    /// ([`Error::is_precondition_failed`](crate::Error::is_precondition_failed)).
    pub async fn update_port_if_revision(
        &self,
        id: &str,
        body: &PortUpdate,
        revision: u64,
    ) -> Result<Port> {
        self.update_with(Resource::Ports, id, body, Some(revision)).await
    }
}
