//! Docker's `CreateNetwork`/`DeleteNetwork`.

use crate::api::Networks;
use crate::wire::{DeleteNetworkRequest, NetworkCapabilities};
use std::collections::BTreeMap;

use kuryr_core::{ini::parse_bool, naming};
use openstack::neutron::{Network, NetworkCreate, NetworkUpdate, Query, Resource, Subnet};
use std::time::Duration;

use kuryr_core::vif_pool::PoolSettings;
use tracing::{info, warn};

use super::pools::{PoolId, PoolOptions, OPT_NET_NAME, OPT_NET_SHARED, OPT_NET_UUID};
use super::{find_named, neutron_error, KuryrDriver, NetworkInfo, PoolInfo};
use crate::api::{DriverError, DriverResult};
use crate::wire::{CreateNetworkRequest, IpamData};

/// `-o kuryr.ports_pool_min=N` and its siblings: this network's own pool
/// sizes (over `[vif_pool]`).
const OPT_POOL_PREFIX: &str = "kuryr.ports_pool_";

/// The network-level `-o` options.
struct NetOptions {
    uuid: Option<String>,
    name: Option<String>,
    shared: bool,
    v4: PoolOptions,
    v6: PoolOptions,
    /// Port pool sizes given for this network.
    port_pool: Option<PoolSettings>,
}

/// The network's `kuryr.ports_pool_*` options over `defaults`; `None` when
/// it names none. Unknown or malformed ones are refused.
fn port_pool_options(
    generic: &BTreeMap<String, String>,
    defaults: PoolSettings,
) -> DriverResult<Option<PoolSettings>> {
    let mut settings = defaults;
    let mut any = false;
    for (key, value) in generic {
        let Some(name) = key.strip_prefix(OPT_POOL_PREFIX) else {
            continue;
        };
        let n: usize = value.trim().parse().map_err(|_| {
            DriverError::bad_request(format!("option {key}={value:?} must be a whole number"))
        })?;
        match name {
            "min" => settings.min = n,
            "max" => settings.max = n,
            "batch" if n > 0 => settings.batch = n,
            "update_frequency" => settings.update_frequency = Duration::from_secs(n as u64),
            _ => {
                return Err(DriverError::bad_request(format!(
                    "unknown option {key} (known: {OPT_POOL_PREFIX}min, max, batch (at least 1), update_frequency)"
                )))
            }
        }
        any = true;
    }
    if settings.max > 0 && settings.max < settings.min {
        return Err(DriverError::bad_request(format!(
            "option {OPT_POOL_PREFIX}max={} must be 0 (no limit) or at least {OPT_POOL_PREFIX}min={}",
            settings.max, settings.min
        )));
    }
    Ok(any.then_some(settings))
}

impl NetOptions {
    fn parse(generic: &BTreeMap<String, String>, pools: PoolSettings) -> DriverResult<NetOptions> {
        // PoolOptions refuses unknown neutron.* keys; the network's own two
        // are taken out first.
        let mut rest = generic.clone();
        let uuid = rest.remove(OPT_NET_UUID).filter(|v| !v.trim().is_empty());
        let name = rest.remove(OPT_NET_NAME).filter(|v| !v.trim().is_empty());
        let shared = match generic.get(OPT_NET_SHARED) {
            Some(v) => parse_bool(v).ok_or_else(|| {
                DriverError::bad_request(format!(
                    "option {OPT_NET_SHARED}={v:?} must be true or false"
                ))
            })?,
            None => false,
        };
        Ok(NetOptions {
            uuid,
            name,
            shared,
            v4: PoolOptions::parse(&rest, false)?,
            v6: PoolOptions::parse(&rest, true)?,
            port_pool: port_pool_options(generic, pools)?,
        })
    }

    fn adopts(&self) -> bool {
        self.uuid.is_some() || self.name.is_some()
    }
}

/// One address family of the network being created.
pub(super) struct Family {
    pub(super) id: PoolId,
    pub(super) info: PoolInfo,
    pub(super) gateway: Option<std::net::IpAddr>,
}

/// Whether a cached pool of the right cidr can be the one this network's
/// family came from: its subnetpool and subnet are the ones the options
/// name, and a user's subnet lies on the adopted network.
fn pool_fits(
    id: &PoolId,
    info: &PoolInfo,
    opts: &PoolOptions,
    wanted_pool: Option<&str>,
    adopt: Option<&Network>,
) -> bool {
    if wanted_pool.is_some() && id.subnetpool() != wanted_pool {
        return false;
    }
    // Only a pool made from a user's subnet (`--ipam-opt neutron.subnet.*`)
    // has one to compare; the others get theirs in CreateNetwork.
    let (PoolId::Existing { .. }, Some(subnet)) = (id, info.subnet.as_ref()) else {
        return true;
    };
    let named = match (&opts.subnet_uuid, &opts.subnet_name) {
        (Some(uuid), _) => &subnet.id == uuid,
        (None, Some(name)) => &subnet.name == name,
        (None, None) => true,
    };
    named && adopt.is_none_or(|network| subnet.network_id == network.id)
}

impl KuryrDriver {
    /// Finds the pool Docker allocated this family from. Docker does not
    /// pass the pool id here, only its cidr, and two pools may share a cidr
    /// (overlapping tenant networks): the options and the adopted network
    /// narrow the choice, and what is left is chosen by a fixed order, never
    /// by a map's iteration order.
    async fn family_for(
        &self,
        data: &IpamData,
        opts: &PoolOptions,
        adopt: Option<&Network>,
    ) -> DriverResult<Family> {
        let cidr = data
            .pool
            .ok_or_else(|| DriverError::bad_request("CreateNetwork: IPAM data without a Pool"))?
            .trunc();
        let gateway = data.gateway.map(|g| g.addr());
        let wanted_pool = if opts.pool_uuid.is_some() || opts.pool_name.is_some() {
            Some(self.find_pool_by_option(opts).await?.id.into_string())
        } else {
            None
        };
        let pick = {
            let cache = self.cache();
            let in_use = |subnet: &Subnet| {
                cache.networks.values().any(|n| n.subnets.iter().any(|s| s.id == subnet.id))
            };
            cache
                .pools
                .iter()
                .filter(|(_, info)| info.cidr == cidr)
                .filter_map(|(key, info)| PoolId::parse(key).ok().map(|id| (id, info)))
                .filter(|(id, info)| pool_fits(id, info, opts, wanted_pool.as_deref(), adopt))
                .map(|(id, info)| {
                    let used = info.subnet.as_ref().is_some_and(in_use);
                    ((used, info.subnet.is_some(), id.to_string()), id, info.clone())
                })
                .min_by(|a, b| a.0.cmp(&b.0))
                .map(|(_, id, info)| (id, info))
        };
        if let Some((id, info)) = pick {
            return Ok(Family { id, info, gateway });
        }
        // Not cached (a restart since RequestPool): find it in Neutron.
        let id = match wanted_pool {
            Some(pool) => PoolId::Carved { pool, cidr },
            None => {
                let name = naming::subnetpool_name(
                    &self.settings.subnetpool_name_prefix,
                    &cidr.to_string(),
                );
                let pools = self
                    .neutron
                    .list_subnetpools(&Query::new().name(&name).fields(["id"]))
                    .await
                    .map_err(|e| neutron_error("looking up the network's subnetpool", e))?;
                match pools.into_iter().next() {
                    Some(pool) => PoolId::Dedicated { pool: pool.id.into_string() },
                    // A user's subnet named in `-o` as in `--ipam-opt`.
                    None if opts.subnet_uuid.is_some() || opts.subnet_name.is_some() => {
                        PoolId::Existing {
                            subnet: self.find_subnet_by_option(opts).await?.id.into_string(),
                        }
                    }
                    None => {
                        return Err(DriverError::not_found(format!(
                            "no Kuryr subnetpool for {cidr}: was it requested with --ipam-driver kuryr?"
                        )))
                    }
                }
            }
        };
        let info = self.resolve_pool(&id).await?;
        Ok(Family { id, info, gateway })
    }

    /// Adopts the network named in the options, or a pending network that
    /// holds a default-pool subnet, or creates one; then tags it.
    async fn network_for(
        &self,
        docker_id: &str,
        opts: &NetOptions,
        adopt: Option<Network>,
        families: &[Family],
    ) -> DriverResult<(Network, bool)> {
        if let Some(network) = adopt {
            if network.shared != opts.shared {
                return Err(DriverError::conflict(format!(
                    "network {} has shared={}, which conflicts with {OPT_NET_SHARED}={}",
                    network.id, network.shared, opts.shared
                )));
            }
            let mut tags = network.tags.clone();
            tags.extend(naming::id_tags(docker_id));
            tags.push(naming::existing_network_tag(docker_id));
            tags.dedup();
            self.neutron
                .replace_tags(Resource::Networks, &network.id, &tags)
                .await
                .map_err(|e| neutron_error("tagging the adopted network", e))?;
            return Ok((network, true));
        }
        let name = naming::network_name(docker_id);
        // Only a subnet carved from a pool in RequestPool sits on a pending
        // network of Kuryr's; a subnet named with neutron.subnet.* is the
        // user's, and so is its network (adopted only with neutron.net.*).
        let pending = families
            .iter()
            .filter(|f| !matches!(f.id, PoolId::Existing { .. }))
            .find_map(|f| f.info.subnet.as_ref().map(|s| s.network_id.clone()));
        let network = match pending {
            Some(pending_id) => self
                .neutron
                .update_network(
                    &pending_id,
                    &NetworkUpdate { name: Some(name), ..NetworkUpdate::default() },
                )
                .await
                .map_err(|e| neutron_error("naming the network", e))?,
            None => self
                .neutron
                .create_network(&NetworkCreate {
                    name: Some(name),
                    admin_state_up: Some(true),
                    shared: opts.shared.then_some(true),
                    ..NetworkCreate::default()
                })
                .await
                .map_err(|e| neutron_error("creating the network", e))?,
        };
        if let Err(err) = self
            .neutron
            .replace_tags(Resource::Networks, &network.id, &naming::id_tags(docker_id))
            .await
        {
            self.delete_network_quietly(&network.id).await;
            return Err(neutron_error("tagging the network", err));
        }
        Ok((network, false))
    }

    async fn find_network_by_option(&self, opts: &NetOptions) -> DriverResult<Network> {
        let named = (opts.uuid.as_ref(), opts.name.as_ref());
        find_named(named, "network", "neutron.net", |query| async move {
            self.neutron.list_networks(&query).await
        })
        .await
    }

    /// Removes what a failed CreateNetwork made, so nothing half-made stays.
    async fn undo_network(
        &self,
        network: &Network,
        adopted: bool,
        docker_id: &str,
        subnets: &[Subnet],
    ) {
        for subnet in subnets.iter().filter(|s| naming::is_kuryr_subnet_name(&s.name)) {
            if let Err(err) = self.neutron.delete_subnet(&subnet.id).await {
                warn!(subnet = %subnet.id, %err, "cleanup: deleting subnet failed");
            }
        }
        if adopted {
            self.untag_adopted_network(&network.id, docker_id).await;
        } else {
            self.delete_network_quietly(&network.id).await;
        }
    }

    async fn untag_adopted_network(&self, network_id: &str, docker_id: &str) {
        let ours: Vec<String> = naming::id_tags(docker_id)
            .into_iter()
            .chain([naming::existing_network_tag(docker_id)])
            .collect();
        match self.neutron.get_tags(Resource::Networks, network_id).await {
            Ok(tags) => {
                let kept: Vec<&String> = tags.iter().filter(|t| !ours.contains(t)).collect();
                if let Err(err) =
                    self.neutron.replace_tags(Resource::Networks, network_id, &kept).await
                {
                    warn!(network_id, %err, "untagging the adopted network failed");
                }
            }
            Err(err) => warn!(network_id, %err, "reading the adopted network's tags failed"),
        }
    }

    /// The Neutron network of a Docker network, from the cache or by tags.
    pub(super) async fn network_info(&self, docker_id: &str) -> DriverResult<NetworkInfo> {
        if let Some(info) = self.cache().networks.get(docker_id) {
            return Ok(info.clone());
        }
        let network = self.find_network_by_docker_id(docker_id).await?.ok_or_else(|| {
            DriverError::not_found(format!(
                "no Neutron network is tagged for Docker network {docker_id}"
            ))
        })?;
        let subnets = self
            .neutron
            .list_subnets(&Query::new().network_id(&network.id))
            .await
            .map_err(|e| neutron_error("listing the network's subnets", e))?;
        let info = NetworkInfo { neutron_id: network.id.into_string(), mtu: network.mtu, subnets };
        self.cache().networks.insert(docker_id.to_string(), info.clone());
        Ok(info)
    }

    async fn find_network_by_docker_id(&self, docker_id: &str) -> DriverResult<Option<Network>> {
        let networks = self
            .neutron
            .list_networks(&Query::new().tags(naming::id_tags(docker_id)))
            .await
            .map_err(|e| neutron_error("looking up the network by its tags", e))?;
        Ok(networks.into_iter().next())
    }

    async fn delete_kuryr_subnets(&self, network: &Network) -> DriverResult<()> {
        let subnets = self
            .neutron
            .list_subnets(&Query::new().network_id(&network.id))
            .await
            .map_err(|e| neutron_error("listing the network's subnets", e))?;
        for subnet in subnets.iter().filter(|s| naming::is_kuryr_subnet_name(&s.name)) {
            match self.neutron.delete_subnet(&subnet.id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(neutron_error(&format!("deleting subnet {}", subnet.id), e)),
            }
        }
        Ok(())
    }
}

impl Networks for KuryrDriver {
    async fn network_capabilities(&self) -> DriverResult<NetworkCapabilities> {
        Ok(NetworkCapabilities {
            scope: self.settings.scope,
            connectivity_scope: Some(self.settings.scope),
        })
    }

    async fn create_network(&self, req: CreateNetworkRequest) -> DriverResult<()> {
        let generic = req.options.generic.clone().unwrap_or_default();
        let opts = NetOptions::parse(&generic, self.settings.pool)?;
        // The adopted network is found first: it tells which pool this
        // network's addresses came from when two pools share a CIDR.
        let adopt =
            if opts.adopts() { Some(self.find_network_by_option(&opts).await?) } else { None };
        let mut families = Vec::new();
        for (data, family_opts) in
            [(req.ipv4_data.first(), &opts.v4), (req.ipv6_data.first(), &opts.v6)]
        {
            if let Some(data) = data {
                families.push(self.family_for(data, family_opts, adopt.as_ref()).await?);
            }
        }
        let docker_id = req.network_id.as_str();
        let (network, adopted) = self.network_for(docker_id, &opts, adopt, &families).await?;
        let mut subnets = Vec::new();
        for family in &families {
            match self.ensure_subnet(&network, family).await {
                Ok(subnet) => subnets.push(subnet),
                Err(err) => {
                    self.undo_network(&network, adopted, docker_id, &subnets).await;
                    return Err(err);
                }
            }
        }
        let mut cache = self.cache();
        for (family, subnet) in families.iter().zip(&subnets) {
            if let Some(info) = cache.pools.get_mut(&family.id.to_string()) {
                info.subnet = Some(subnet.clone());
            }
        }
        if let Some(sizes) = opts.port_pool {
            cache.pool_settings.insert(network.id.to_string(), sizes);
        }
        drop(cache);
        // Warm-up: the network's pools start filling now.
        let sizes = self.pool_settings_of(&network.id);
        if sizes.enabled() {
            for subnet in &subnets {
                self.lifecycle.pool().configure(&self.pool_key(subnet), sizes, network.mtu);
            }
        }
        self.cache().networks.insert(
            docker_id.to_string(),
            NetworkInfo { neutron_id: network.id.to_string(), mtu: network.mtu, subnets },
        );
        info!(docker_network = docker_id, neutron_network = %network.id, adopted, "network created");
        Ok(())
    }

    async fn delete_network(&self, req: DeleteNetworkRequest) -> DriverResult<()> {
        let docker_id = req.network_id.as_str();
        self.cache().networks.remove(docker_id);
        let Some(network) = self.find_network_by_docker_id(docker_id).await? else {
            warn!(docker_network = docker_id, "no Neutron network to delete");
            return Ok(());
        };
        // Neutron refuses to delete a network that still has ports.
        self.empty_network(&network.id).await;
        self.cache().pool_settings.remove(network.id.as_str());
        if network.tags.contains(&naming::existing_network_tag(docker_id)) {
            self.delete_kuryr_subnets(&network).await?;
            self.untag_adopted_network(&network.id, docker_id).await;
            info!(docker_network = docker_id, neutron_network = %network.id, "adopted network released");
            return Ok(());
        }
        match self.neutron.delete_network(&network.id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(neutron_error(&format!("deleting network {}", network.id), e)),
        }
        info!(docker_network = docker_id, neutron_network = %network.id, "network deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
