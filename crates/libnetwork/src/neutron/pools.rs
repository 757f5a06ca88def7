//! IPAM pools: Docker's `RequestPool`/`ReleasePool`, and resolving a pool id
//! to its Neutron subnet.

use crate::api::IpamPools;
use crate::wire::{AddressSpaces, IpamCapabilities, ReleasePoolRequest};
use std::collections::BTreeMap;

use ipnet::IpNet;
use kuryr_core::{ini::parse_bool, naming};
use openstack::neutron::{
    NetworkCreate, Query, Subnet, SubnetCreate, SubnetPool, SubnetPoolCreate,
};
use tracing::info;

pub use super::pool_id::PoolId;
use super::{find_named, neutron_error, KuryrDriver, PoolInfo};
use crate::api::{DriverError, DriverResult};
use crate::wire::{RequestPoolRequest, RequestPoolResponse};

/// Tag on a Kuryr-made subnetpool recording Docker's `--ip-range`.
const IP_RANGE_TAG: &str = "kuryr.ip_range:";

pub(super) const OPT_NET_UUID: &str = "neutron.net.uuid";
pub(super) const OPT_NET_NAME: &str = "neutron.net.name";
pub(super) const OPT_NET_SHARED: &str = "neutron.net.shared";
pub(super) const OPT_POOL_UUID: &str = "neutron.pool.uuid";
pub(super) const OPT_POOL_NAME: &str = "neutron.pool.name";
pub(super) const OPT_POOL_V6_UUID: &str = "neutron.pool.v6.uuid";
pub(super) const OPT_POOL_V6_NAME: &str = "neutron.pool.v6.name";
pub(super) const OPT_SUBNET_UUID: &str = "neutron.subnet.uuid";
pub(super) const OPT_SUBNET_NAME: &str = "neutron.subnet.name";
pub(super) const OPT_SUBNET_V6_UUID: &str = "neutron.subnet.v6.uuid";
pub(super) const OPT_SUBNET_V6_NAME: &str = "neutron.subnet.v6.name";

/// Every `neutron.*` option, accepted alike in `-o` and `--ipam-opt`:
/// operators pass one set to both, as upstream's documentation shows, and
/// each side reads the keys it needs. Any other `neutron.*` key is refused.
pub(super) const NEUTRON_OPTIONS: [&str; 11] = [
    OPT_NET_UUID,
    OPT_NET_NAME,
    OPT_NET_SHARED,
    OPT_POOL_UUID,
    OPT_POOL_NAME,
    OPT_POOL_V6_UUID,
    OPT_POOL_V6_NAME,
    OPT_SUBNET_UUID,
    OPT_SUBNET_NAME,
    OPT_SUBNET_V6_UUID,
    OPT_SUBNET_V6_NAME,
];

/// The `neutron.*` IPAM options of one address family.
#[derive(Debug, Default)]
pub(super) struct PoolOptions {
    pub pool_uuid: Option<String>,
    pub pool_name: Option<String>,
    pub subnet_uuid: Option<String>,
    pub subnet_name: Option<String>,
    pub shared: bool,
}

impl PoolOptions {
    /// Reads the options of `--ipam-opt` (or `-o`), refusing unknown
    /// `neutron.*` keys so a typo does not silently change the outcome.
    pub(super) fn parse(options: &BTreeMap<String, String>, v6: bool) -> DriverResult<PoolOptions> {
        let mut out = PoolOptions::default();
        for (key, value) in options {
            let value = value.trim().to_string();
            match key.as_str() {
                OPT_POOL_UUID if !v6 => out.pool_uuid = Some(value),
                OPT_POOL_NAME if !v6 => out.pool_name = Some(value),
                OPT_POOL_V6_UUID if v6 => out.pool_uuid = Some(value),
                OPT_POOL_V6_NAME if v6 => out.pool_name = Some(value),
                OPT_SUBNET_UUID if !v6 => out.subnet_uuid = Some(value),
                OPT_SUBNET_NAME if !v6 => out.subnet_name = Some(value),
                OPT_SUBNET_V6_UUID if v6 => out.subnet_uuid = Some(value),
                OPT_SUBNET_V6_NAME if v6 => out.subnet_name = Some(value),
                OPT_NET_SHARED => {
                    out.shared = parse_bool(&value).ok_or_else(|| {
                        DriverError::bad_request(format!(
                            "option {key}={value:?} must be true or false"
                        ))
                    })?
                }
                k if NEUTRON_OPTIONS.contains(&k) => {}
                k if k.starts_with("neutron.") => {
                    return Err(DriverError::bad_request(format!(
                        "unknown option {k:?}; known: {}",
                        NEUTRON_OPTIONS.join(", ")
                    )))
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

impl KuryrDriver {
    async fn pool_for_cidr(
        &self,
        cidr: IpNet,
        sub_pool: Option<IpNet>,
        opts: &PoolOptions,
    ) -> DriverResult<(PoolId, PoolInfo)> {
        if opts.subnet_uuid.is_some() || opts.subnet_name.is_some() {
            let subnet = self.find_subnet_by_option(opts).await?;
            if subnet.cidr.parse::<IpNet>().ok() != Some(cidr) {
                return Err(DriverError::bad_request(format!(
                    "subnet {} has cidr {}, not the requested {cidr}",
                    subnet.id, subnet.cidr
                )));
            }
            let id = PoolId::Existing { subnet: subnet.id.to_string() };
            return Ok((id, PoolInfo { cidr, sub_pool, subnet: Some(subnet) }));
        }
        if opts.pool_uuid.is_some() || opts.pool_name.is_some() {
            let pool = self.find_pool_by_option(opts).await?;
            let inside = pool
                .prefixes
                .iter()
                .filter_map(|p| p.parse::<IpNet>().ok())
                .any(|prefix| prefix.contains(&cidr));
            if !inside {
                return Err(DriverError::bad_request(format!(
                    "--subnet {cidr} is not inside subnetpool {} ({})",
                    pool.name,
                    pool.prefixes.join(", ")
                )));
            }
            let id = PoolId::Carved { pool: pool.id.into_string(), cidr };
            return Ok((id, PoolInfo { cidr, sub_pool, subnet: None }));
        }
        let pool = self.ensure_dedicated_pool(cidr, sub_pool, opts.shared).await?;
        Ok((
            PoolId::Dedicated { pool: pool.id.into_string() },
            PoolInfo { cidr, sub_pool, subnet: None },
        ))
    }

    /// `kuryrPool-<cidr>`, made for this one Docker network. A pool of that
    /// name that already holds a subnet belongs to another network: sharing
    /// it would let that network's `network rm` delete this one's subnet.
    async fn ensure_dedicated_pool(
        &self,
        cidr: IpNet,
        sub_pool: Option<IpNet>,
        shared: bool,
    ) -> DriverResult<SubnetPool> {
        let name =
            naming::subnetpool_name(&self.settings.subnetpool_name_prefix, &cidr.to_string());
        let ctx = format!("subnetpool {name}");
        let existing = self
            .neutron
            .list_subnetpools(&Query::new().name(&name))
            .await
            .map_err(|e| neutron_error(&ctx, e))?;
        let mut used_by = None;
        for pool in existing {
            let mut used = self.subnets_of_dedicated_pool(&pool.id).await?;
            if used.is_empty() {
                // Upstream's kuryrPool of a network whose subnet it took
                // from a pool named in neutron.pool.* (lookup_pool finds
                // that subnet by cidr): taken as well.
                used.extend(self.upstream_subnet_from_named_pool(cidr).await?);
            }
            match used.first() {
                Some(subnet) => used_by = Some(subnet.network_id.clone()),
                None => {
                    // A leftover of a network create that failed: take it.
                    self.set_ip_range_tag(&pool, sub_pool).await?;
                    return Ok(pool);
                }
            }
        }
        if let Some(network) = used_by {
            return Err(DriverError::conflict(format!(
                "{cidr} is already used by Neutron network {network} (subnetpool {name}); to give two Docker \
                 networks the same subnet, create a Neutron subnetpool for each and pass \
                 --ipam-opt neutron.pool.name=<pool> -o neutron.pool.name=<pool>"
            )));
        }
        let body = SubnetPoolCreate {
            name: name.clone(),
            prefixes: vec![cidr.to_string()],
            default_prefixlen: Some(u32::from(cidr.prefix_len())),
            min_prefixlen: Some(u32::from(cidr.prefix_len())),
            shared: shared.then_some(true),
            ..SubnetPoolCreate::default()
        };
        let pool =
            self.neutron.create_subnetpool(&body).await.map_err(|e| neutron_error(&ctx, e))?;
        self.set_ip_range_tag(&pool, sub_pool).await?;
        Ok(pool)
    }

    async fn set_ip_range_tag(
        &self,
        pool: &SubnetPool,
        sub_pool: Option<IpNet>,
    ) -> DriverResult<()> {
        let mut tags: Vec<String> =
            pool.tags.iter().filter(|t| !t.starts_with(IP_RANGE_TAG)).cloned().collect();
        if let Some(range) = sub_pool {
            tags.push(format!("{IP_RANGE_TAG}{range}"));
        }
        if tags == pool.tags {
            return Ok(());
        }
        self.neutron
            .replace_tags(openstack::neutron::Resource::SubnetPools, &pool.id, &tags)
            .await
            .map(|_| ())
            .map_err(|e| neutron_error("recording --ip-range on the subnetpool", e))
    }

    /// No `--subnet`: Neutron carves a subnet from the default pool. It
    /// needs a network to hold it, so a pending network is made now and
    /// becomes the Docker network in CreateNetwork.
    async fn carve_default_pool(
        &self,
        v6: bool,
        opts: &PoolOptions,
    ) -> DriverResult<(PoolId, PoolInfo)> {
        let pool_id = if opts.pool_uuid.is_some() || opts.pool_name.is_some() {
            self.find_pool_by_option(opts).await?.id.into_string()
        } else {
            let name = if v6 {
                &self.settings.default_subnetpool_v6
            } else {
                &self.settings.default_subnetpool_v4
            };
            self.default_pool_id(name).await?
        };
        let ctx = "carving a subnet from the default subnetpool";
        let network = self
            .neutron
            .create_network(&NetworkCreate {
                name: Some(naming::PENDING_NETWORK_NAME.to_string()),
                admin_state_up: Some(true),
                shared: opts.shared.then_some(true),
                ..NetworkCreate::default()
            })
            .await
            .map_err(|e| neutron_error(ctx, e))?;
        let body = SubnetCreate {
            name: Some(naming::subnet_name("pending")),
            subnetpool_id: Some(pool_id.clone().into()),
            enable_dhcp: Some(self.settings.enable_dhcp),
            network_id: network.id.clone(),
            ip_version: if v6 { 6 } else { 4 },
            ..SubnetCreate::default()
        };
        let subnet = match self.neutron.create_subnet(&body).await {
            Ok(subnet) => subnet,
            Err(err) => {
                self.delete_network_quietly(&network.id).await;
                return Err(neutron_error(ctx, err));
            }
        };
        let cidr: IpNet = subnet.cidr.parse().map_err(|_| {
            DriverError::internal(format!("Neutron returned a bad cidr {:?}", subnet.cidr))
        })?;
        let id = PoolId::Carved { pool: pool_id, cidr };
        Ok((id, PoolInfo { cidr, sub_pool: None, subnet: Some(subnet) }))
    }

    pub(super) async fn default_pool_id(&self, name: &str) -> DriverResult<String> {
        if let Some(id) = self.cache().pool_ids.get(name) {
            return Ok(id.clone());
        }
        let pools = self
            .neutron
            .list_subnetpools(&Query::new().name(name).fields(["id"]))
            .await
            .map_err(|e| neutron_error(&format!("default subnetpool {name}"), e))?;
        let pool = pools.into_iter().next().ok_or_else(|| {
            DriverError::not_found(format!(
                "default subnetpool {name:?} does not exist in Neutron: create it, or give --subnet \
                 (see [neutron] default_subnetpool_v4/_v6)"
            ))
        })?;
        self.cache().pool_ids.insert(name.to_string(), pool.id.to_string());
        Ok(pool.id.into_string())
    }

    pub(super) async fn find_pool_by_option(&self, opts: &PoolOptions) -> DriverResult<SubnetPool> {
        let named = (opts.pool_uuid.as_ref(), opts.pool_name.as_ref());
        find_named(named, "subnetpool", "neutron.pool", |query| async move {
            self.neutron.list_subnetpools(&query).await
        })
        .await
    }

    pub(super) async fn find_subnet_by_option(&self, opts: &PoolOptions) -> DriverResult<Subnet> {
        let named = (opts.subnet_uuid.as_ref(), opts.subnet_name.as_ref());
        find_named(named, "subnet", "neutron.subnet", |query| async move {
            self.neutron.list_subnets(&query).await
        })
        .await
    }

    /// The pool behind a Docker pool id, from the cache or Neutron. Its
    /// `subnet` is None while the network is not created yet.
    pub(super) async fn resolve_pool(&self, id: &PoolId) -> DriverResult<PoolInfo> {
        if let Some(info) = self.cache().pools.get(&id.to_string()) {
            return Ok(info.clone());
        }
        let info = self.lookup_pool(id).await?;
        self.cache().pools.insert(id.to_string(), info.clone());
        Ok(info)
    }

    async fn lookup_pool(&self, id: &PoolId) -> DriverResult<PoolInfo> {
        let ctx = format!("pool {id}");
        match id {
            PoolId::Existing { subnet } => {
                let subnet =
                    self.neutron.get_subnet(subnet).await.map_err(|e| neutron_error(&ctx, e))?;
                let cidr = parse_cidr(&subnet)?;
                Ok(PoolInfo { cidr, sub_pool: None, subnet: Some(subnet) })
            }
            PoolId::Carved { pool, cidr } => {
                let subnet = self.subnet_of_pool(pool, Some(*cidr)).await?;
                Ok(PoolInfo { cidr: *cidr, sub_pool: None, subnet })
            }
            PoolId::Dedicated { pool } => {
                let subnetpool =
                    self.neutron.get_subnetpool(pool).await.map_err(|e| neutron_error(&ctx, e))?;
                let cidr =
                    subnetpool.prefixes.first().and_then(|p| p.parse::<IpNet>().ok()).ok_or_else(
                        || DriverError::internal(format!("subnetpool {pool} has no prefix")),
                    )?;
                let sub_pool = subnetpool
                    .tags
                    .iter()
                    .find_map(|t| t.strip_prefix(IP_RANGE_TAG))
                    .and_then(|r| r.parse().ok());
                let subnet = match self.subnet_of_pool(pool, None).await? {
                    Some(subnet) => Some(subnet),
                    None => self.upstream_subnet_from_named_pool(cidr).await?,
                };
                Ok(PoolInfo { cidr, sub_pool, subnet })
            }
        }
    }

    /// Upstream kuryr-libnetwork, given `neutron.pool.*` and a `--subnet`
    /// other than that pool's prefix, answered RequestPool with a
    /// `kuryrPool-<cidr>` of its own (the id Docker keeps) but allocated the
    /// subnet from the named pool, which it tagged `kuryr.subnetpool.existing`:
    /// the subnet is `kuryr-subnet-<cidr>`, its `subnetpool_id` the named
    /// pool, tagged with that id. Found by cidr, as upstream does; subnets
    /// this driver made (their pools never carry that tag) are not taken.
    async fn upstream_subnet_from_named_pool(&self, cidr: IpNet) -> DriverResult<Option<Subnet>> {
        let cidr_text = cidr.to_string();
        let ctx = format!("subnet with cidr {cidr_text}");
        let candidates = self
            .neutron
            .list_subnets(
                &Query::new().cidr(cidr_text.clone()).name(naming::subnet_name(&cidr_text)),
            )
            .await
            .map_err(|e| neutron_error(&ctx, e))?;
        let mut found = Vec::new();
        for subnet in candidates {
            let Some(pool) = subnet.subnetpool_id.clone().map(String::from) else {
                continue;
            };
            if !subnet.tags.contains(&pool) {
                continue;
            }
            let named = match self.neutron.get_subnetpool(&pool).await {
                Ok(p) => p.tags.iter().any(|t| t == naming::EXISTING_SUBNETPOOL_TAG),
                Err(e) if e.is_not_found() => false,
                Err(e) => return Err(neutron_error(&ctx, e)),
            };
            if named {
                found.push(subnet);
            }
        }
        match found.len() {
            0 | 1 => Ok(found.pop()),
            n => Err(DriverError::conflict(format!(
                "{n} subnets upstream kuryr-libnetwork made have cidr {cidr_text}: cannot tell which one this pool's is"
            ))),
        }
    }

    /// The subnet allocated from `pool` (with `cidr`), or the existing
    /// subnet Kuryr tagged with the pool id when it adopted a network.
    pub(super) async fn subnet_of_pool(
        &self,
        pool: &str,
        cidr: Option<IpNet>,
    ) -> DriverResult<Option<Subnet>> {
        let ctx = format!("subnet of pool {pool}");
        let with_cidr = |q: Query| match cidr {
            Some(c) => q.cidr(c.to_string()),
            None => q,
        };
        let subnets = self
            .neutron
            .list_subnets(&with_cidr(Query::new().subnetpool_id(pool)))
            .await
            .map_err(|e| neutron_error(&ctx, e))?;
        if let Some(subnet) = subnets.into_iter().next() {
            return Ok(Some(subnet));
        }
        let tagged = self
            .neutron
            .list_subnets(&with_cidr(Query::new().tags([pool])))
            .await
            .map_err(|e| neutron_error(&ctx, e))?;
        Ok(tagged.into_iter().next())
    }
}

pub(super) fn parse_cidr(subnet: &Subnet) -> DriverResult<IpNet> {
    subnet.cidr.parse().map_err(|_| {
        DriverError::internal(format!("subnet {} has a bad cidr {:?}", subnet.id, subnet.cidr))
    })
}

impl IpamPools for KuryrDriver {
    async fn ipam_capabilities(&self) -> DriverResult<IpamCapabilities> {
        // The port, created in RequestAddress, brings its own MAC; Docker
        // takes it from CreateEndpoint. docs/mapping.md says why.
        Ok(IpamCapabilities { requires_mac_address: false, requires_request_replay: false })
    }

    async fn default_address_spaces(&self) -> DriverResult<AddressSpaces> {
        Ok(AddressSpaces {
            local_default_address_space: self.settings.local_address_space.clone(),
            global_default_address_space: self.settings.global_address_space.clone(),
        })
    }

    async fn request_pool(&self, mut req: RequestPoolRequest) -> DriverResult<RequestPoolResponse> {
        let opts = PoolOptions::parse(&req.options, req.v6)?;
        if self.settings.ip_range_as_subnet {
            // Upstream's meaning: the range is the subnet, and the pool
            // Docker is handed back is the range.
            if let (Some(pool), Some(range)) = (req.pool, req.sub_pool.take()) {
                if !pool.contains(&range) {
                    return Err(DriverError::bad_request(format!(
                        "--ip-range {range} must lie inside --subnet {pool}"
                    )));
                }
                req.pool = Some(range.trunc());
            }
        }
        if let Some(sub_pool) = req.sub_pool {
            let inside = req.pool.is_some_and(|pool| pool.contains(&sub_pool));
            if !inside {
                return Err(DriverError::bad_request(format!(
                    "--ip-range {sub_pool} must lie inside --subnet{}",
                    req.pool.map(|p| format!(" {p}")).unwrap_or_default()
                )));
            }
        }
        let (id, info) = match req.pool {
            Some(cidr) => self.pool_for_cidr(cidr.trunc(), req.sub_pool, &opts).await?,
            None => self.carve_default_pool(req.v6, &opts).await?,
        };
        let cidr = info.cidr;
        info!(pool_id = %id, %cidr, "pool ready");
        self.cache().pools.insert(id.to_string(), info);
        Ok(RequestPoolResponse { pool_id: id.to_string(), pool: cidr, data: BTreeMap::new() })
    }

    async fn release_pool(&self, req: ReleasePoolRequest) -> DriverResult<()> {
        let pool_id = req.pool_id.as_str();
        let id = PoolId::parse(pool_id)?;
        let cached = self.cache().pools.remove(pool_id);
        match &id {
            PoolId::Existing { .. } => Ok(()),
            PoolId::Carved { pool, cidr } => {
                let subnet = match cached.and_then(|c| c.subnet) {
                    Some(s) => Some(s),
                    None => self.subnet_of_pool(pool, Some(*cidr)).await?,
                };
                if let Some(subnet) = subnet {
                    self.release_kuryr_subnet(&subnet, pool).await?;
                }
                Ok(())
            }
            PoolId::Dedicated { pool } => {
                let subnets = self.subnets_of_dedicated_pool(pool).await?;
                for subnet in &subnets {
                    self.release_kuryr_subnet(subnet, pool).await?;
                }
                self.delete_dedicated_pool(pool).await
            }
        }
    }
}

#[cfg(test)]
mod tests;
