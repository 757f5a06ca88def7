//! ReleasePool: a Docker pool's subnets and its dedicated subnetpool go
//! when the last network using them does (docs/mapping.md).

use super::{neutron_error, KuryrDriver};
use crate::api::DriverResult;
use kuryr_core::naming;
use openstack::neutron::{Query, Subnet};
use tracing::warn;

impl KuryrDriver {
    /// The subnets a Docker network uses from a `kuryrPool-<cidr>`. Kuryr
    /// tags each with the pool id: the ones it made from the pool, and an
    /// adopted network's existing subnet (which is not from the pool, yet
    /// makes the pool taken). Subnets made before that tag existed are found
    /// by `subnetpool_id`.
    pub(super) async fn subnets_of_dedicated_pool(&self, pool: &str) -> DriverResult<Vec<Subnet>> {
        let ctx = "listing the subnets of the subnetpool";
        let tagged = self
            .neutron
            .list_subnets(&Query::new().tags([pool]))
            .await
            .map_err(|e| neutron_error(ctx, e))?;
        if !tagged.is_empty() {
            return Ok(tagged);
        }
        self.neutron
            .list_subnets(&Query::new().subnetpool_id(pool))
            .await
            .map_err(|e| neutron_error(ctx, e))
    }

    /// Deletes a subnet Kuryr made (and its network, if that is still the
    /// pending one); untags an adopted subnet.
    pub(super) async fn release_kuryr_subnet(
        &self,
        subnet: &Subnet,
        pool: &str,
    ) -> DriverResult<()> {
        if !naming::is_kuryr_subnet_name(&subnet.name) {
            if subnet.tags.iter().any(|t| t == pool) {
                if let Err(err) = self
                    .neutron
                    .remove_tag(openstack::neutron::Resource::Subnets, &subnet.id, pool)
                    .await
                {
                    warn!(subnet = %subnet.id, %err, "removing the pool tag of an adopted subnet");
                }
            }
            return Ok(());
        }
        // Docker releases the pool before it deletes the network.
        self.empty_network(&subnet.network_id).await;
        match self.neutron.delete_subnet(&subnet.id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) if e.is_conflict() => {
                warn!(subnet = %subnet.id, err = %e, "subnet still in use; left for DeleteNetwork");
                return Ok(());
            }
            Err(e) => return Err(neutron_error(&format!("deleting subnet {}", subnet.id), e)),
        }
        // A subnet still named "pending" was never claimed by CreateNetwork
        // (which renames it), so its network was made for it alone.
        if subnet.name == naming::subnet_name("pending") {
            self.delete_network_quietly(&subnet.network_id).await;
        }
        Ok(())
    }

    pub(super) async fn delete_dedicated_pool(&self, pool: &str) -> DriverResult<()> {
        let subnetpool = match self.neutron.get_subnetpool(pool).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(neutron_error("reading the subnetpool", e)),
        };
        let ours =
            subnetpool.name.starts_with(&format!("{}-", self.settings.subnetpool_name_prefix))
                && !subnetpool.tags.iter().any(|t| t == naming::EXISTING_SUBNETPOOL_TAG);
        if !ours {
            return Ok(());
        }
        match self.neutron.delete_subnetpool(pool).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if e.is_conflict() => {
                warn!(pool, err = %e, "subnetpool still in use; not deleted");
                Ok(())
            }
            Err(e) => Err(neutron_error("deleting the subnetpool", e)),
        }
    }

    pub(super) async fn delete_network_quietly(&self, network_id: &str) {
        if let Err(err) = self.neutron.delete_network(network_id).await {
            if !err.is_not_found() {
                warn!(network_id, %err, "cleanup: deleting network failed");
            }
        }
    }
}
