//! A Docker network's Neutron subnets: found (adopted, or made by another
//! host for the same pool) or created from the pool, named, tagged, and
//! deleted with the network (docs/mapping.md).

use super::networks::Family;
use super::pools::PoolId;
use super::{neutron_error, KuryrDriver};
use crate::api::{DriverError, DriverResult};
use ipnet::IpNet;
use kuryr_core::{ipmath, naming};
use openstack::neutron::{
    AllocationPool, Network, Query, Resource, Subnet, SubnetCreate, SubnetUpdate,
};
use tracing::warn;

impl KuryrDriver {
    /// The subnet of one family on `network`: already there, moved from a
    /// pending network, an existing subnet of an adopted network, or new.
    pub(super) async fn ensure_subnet(
        &self,
        network: &Network,
        family: &Family,
    ) -> DriverResult<Subnet> {
        let cidr = family.info.cidr;
        if let Some(subnet) = &family.info.subnet {
            if matches!(family.id, PoolId::Existing { .. }) && subnet.network_id == network.id {
                // The user's subnet on the adopted network: used as it is.
                return Ok(subnet.clone());
            }
            if subnet.network_id == network.id {
                let named = self.name_pending_subnet(subnet, cidr).await?;
                return match family.id.subnetpool() {
                    Some(pool) => self.tag_with_pool(named, pool).await,
                    None => Ok(named),
                };
            }
            if matches!(family.id, PoolId::Existing { .. }) {
                return Err(DriverError::bad_request(format!(
                    "subnet {} belongs to Neutron network {}: add -o neutron.net.uuid={}",
                    subnet.id, subnet.network_id, subnet.network_id
                )));
            }
            // A default-pool subnet on its own pending network: move it.
            self.delete_subnet_and_pending_network(subnet).await?;
        }
        if let Some(existing) = self.existing_subnet(network, cidr, family.info.sub_pool).await? {
            return match family.id.subnetpool() {
                Some(pool) => self.tag_with_pool(existing, pool).await,
                None => Ok(existing),
            };
        }
        let subnet = self.create_subnet(network, family).await?;
        let Some(pool) = family.id.subnetpool() else {
            return Ok(subnet);
        };
        let id = subnet.id.clone();
        match self.tag_with_pool(subnet, pool).await {
            Ok(tagged) => Ok(tagged),
            Err(err) => {
                if let Err(cleanup) = self.neutron.delete_subnet(&id).await {
                    warn!(subnet = %id, %cleanup, "cleanup: deleting subnet failed");
                }
                Err(err)
            }
        }
    }

    /// Tags a subnet with the id of its subnetpool, as upstream does (and
    /// how an adopted subnet is found again from its Docker pool id).
    pub(super) async fn tag_with_pool(
        &self,
        mut subnet: Subnet,
        pool: &str,
    ) -> DriverResult<Subnet> {
        if subnet.tags.iter().any(|t| t == pool) {
            return Ok(subnet);
        }
        self.neutron
            .add_tag(Resource::Subnets, &subnet.id, pool)
            .await
            .map_err(|e| neutron_error("tagging the subnet with its subnetpool id", e))?;
        subnet.tags.push(pool.to_string());
        Ok(subnet)
    }

    /// The network's own subnet for this family: the one of the pool's
    /// cidr or, on an adopted network, the one that is the `--ip-range`
    /// (upstream's recipe, where the range is the subnet).
    pub(super) async fn existing_subnet(
        &self,
        network: &Network,
        cidr: IpNet,
        range: Option<IpNet>,
    ) -> DriverResult<Option<Subnet>> {
        if network.subnets.is_empty() {
            return Ok(None);
        }
        let subnets = self
            .neutron
            .list_subnets(&Query::new().network_id(&network.id))
            .await
            .map_err(|e| neutron_error("looking up the network's subnets", e))?;
        let with_cidr = |want: IpNet| {
            subnets.iter().find(|s| s.cidr.parse::<IpNet>().ok() == Some(want)).cloned()
        };
        Ok(with_cidr(cidr).or_else(|| range.and_then(with_cidr)))
    }

    async fn create_subnet(&self, network: &Network, family: &Family) -> DriverResult<Subnet> {
        let cidr = family.info.cidr;
        let allocation_pools = match family.info.sub_pool {
            Some(range) => Some(
                ipmath::allocation_pools_for_range(
                    cidr,
                    range,
                    family.gateway.or_else(|| ipmath::default_gateway(cidr)),
                )
                .map_err(|e| DriverError::bad_request(e.to_string()))?
                .into_iter()
                .map(|r| AllocationPool { start: r.start, end: r.end })
                .collect(),
            ),
            None => None,
        };
        let body = SubnetCreate {
            name: Some(naming::subnet_name(&cidr.to_string())),
            subnetpool_id: family.id.subnetpool().map(Into::into),
            gateway_ip: family.gateway.map(Some),
            allocation_pools,
            enable_dhcp: Some(self.settings.enable_dhcp),
            ..SubnetCreate::new(network.id.clone(), cidr.to_string())
        };
        self.neutron
            .create_subnet(&body)
            .await
            .map_err(|e| neutron_error(&format!("creating subnet {cidr}"), e))
    }

    /// A subnet carved in RequestPool was named before its cidr was known.
    pub(super) async fn name_pending_subnet(
        &self,
        subnet: &Subnet,
        cidr: IpNet,
    ) -> DriverResult<Subnet> {
        let name = naming::subnet_name(&cidr.to_string());
        if subnet.name == name {
            return Ok(subnet.clone());
        }
        self.neutron
            .update_subnet(
                &subnet.id,
                &SubnetUpdate { name: Some(name), ..SubnetUpdate::default() },
            )
            .await
            .map_err(|e| neutron_error("naming the subnet", e))
    }

    pub(super) async fn delete_subnet_and_pending_network(
        &self,
        subnet: &Subnet,
    ) -> DriverResult<()> {
        match self.neutron.delete_subnet(&subnet.id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(neutron_error("moving the default-pool subnet", e)),
        }
        self.delete_network_quietly(&subnet.network_id).await;
        Ok(())
    }
}
