//! Docker's `RequestAddress`/`ReleaseAddress`: a container address is a
//! Neutron port, created bound to this host in one POST.

use crate::api::IpamAddresses;
use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_core::{ipmath, naming};
use openstack::neutron::{FixedIpRequest, Port, PortCreate, Query, Resource, Subnet};
use tracing::{info, warn};

use kuryr_core::vif_pool::{PoolKey, PooledPort};

use super::pools::PoolId;
use super::{lifecycle_error, neutron_error, KuryrDriver, PoolInfo, SubnetAddr};
use crate::api::{DriverError, DriverResult};
use crate::wire::{ReleaseAddressRequest, RequestAddressRequest, RequestAddressResponse};

impl KuryrDriver {
    /// A ready port of the subnet's pool, if pools are on for its network
    /// (the pool is made, and starts filling, on first use).
    fn take_pooled(&self, subnet: &Subnet) -> Option<(PoolKey, PooledPort)> {
        let settings = self.pool_settings_of(&subnet.network_id);
        if !settings.enabled() {
            return None;
        }
        let key = self.pool_key(subnet);
        if self.lifecycle.pool().settings(&key).is_none() {
            self.lifecycle.pool().configure(&key, settings, None);
        }
        let pooled = self.lifecycle.pool().take(&key)?;
        Some((key, pooled))
    }

    /// The port for one container address: bound to this host, owned by
    /// Kuryr, tagged, in one POST. An unused existing port that holds the
    /// requested address is adopted instead.
    async fn create_address_port(
        &self,
        subnet: &Subnet,
        ip: Option<IpAddr>,
        mac: Option<String>,
    ) -> DriverResult<Port> {
        let body = PortCreate {
            name: Some(naming::UNBOUND_PORT_NAME.to_string()),
            fixed_ips: Some(vec![FixedIpRequest {
                subnet_id: Some(subnet.id.clone()),
                ip_address: ip,
            }]),
            mac_address: mac,
            device_owner: Some(naming::DEVICE_OWNER.to_string()),
            // Nested (in a VM): the port stays unbound (docs/nested.md).
            binding_host_id: self.binder.binds_host().then(|| self.settings.lifecycle.host.clone()),
            admin_state_up: Some(true),
            tags: Some(vec![naming::DEVICE_OWNER.to_string()]),
            ..PortCreate::new(subnet.network_id.clone())
        };
        match self.neutron.create_port(&body).await {
            Ok(port) => Ok(port),
            Err(err) if ip.is_some() && err.neutron_type() == Some("IpAddressAlreadyAllocated") => {
                let ip = ip.expect("checked above");
                self.adopt_existing_port(subnet, ip).await
            }
            Err(err) => Err(neutron_error("creating the container's port", err)),
        }
    }

    /// The port holding `ip` on `subnet`, if any (one GET).
    async fn port_holding(&self, subnet: &Subnet, ip: IpAddr) -> DriverResult<Option<Port>> {
        let query = Query::new().fixed_ip_subnet(&subnet.id).fixed_ip_address(ip);
        let ports = self
            .neutron
            .list_ports(&query)
            .await
            .map_err(|e| neutron_error("looking up the port holding the address", e))?;
        Ok(ports.into_iter().next())
    }

    async fn adopt_existing_port(&self, subnet: &Subnet, ip: IpAddr) -> DriverResult<Port> {
        let mut port = self.port_holding(subnet, ip).await?.ok_or_else(|| {
            DriverError::conflict(format!(
                "address {ip} is allocated in Neutron but no port holds it"
            ))
        })?;
        if !port.device_id.is_empty() {
            return Err(DriverError::conflict(format!(
                "address {ip} belongs to port {} in use by {} {}",
                port.id, port.device_owner, port.device_id
            )));
        }
        let ours = port.tags.iter().any(|t| t == naming::DEVICE_OWNER);
        if !ours && !port.tags.iter().any(|t| t == naming::EXISTING_PORT_TAG) {
            self.neutron
                .add_tag(Resource::Ports, &port.id, naming::EXISTING_PORT_TAG)
                .await
                .map_err(|e| neutron_error("tagging the adopted port", e))?;
            port.tags.push(naming::EXISTING_PORT_TAG.to_string());
        }
        info!(port_id = %port.id, %ip, "adopted existing port");
        Ok(port)
    }

    /// Deletes a port Kuryr made; resets and untags an adopted one; leaves
    /// anything else alone.
    pub(super) async fn release_port(&self, port: &Port) -> DriverResult<()> {
        if port.tags.iter().any(|t| t == naming::EXISTING_PORT_TAG) {
            return kuryr_core::lifecycle::reset_adopted(&self.neutron, &port.id)
                .await
                .map_err(lifecycle_error);
        }
        if !port.tags.iter().any(|t| t == naming::DEVICE_OWNER) {
            warn!(port_id = %port.id, "not releasing a port Kuryr did not make");
            return Ok(());
        }
        match self.neutron.delete_port(&port.id).await {
            Ok(()) => {
                info!(port_id = %port.id, "port deleted");
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(neutron_error(&format!("deleting port {}", port.id), e)),
        }
    }
}

/// The container's address with its Neutron subnet's prefix, which is the
/// pool's except where an adopted network's subnet is its `--ip-range`.
fn address_on(subnet: &Subnet, ip: IpAddr) -> DriverResult<IpNet> {
    let cidr = super::pools::parse_cidr(subnet)?;
    IpNet::new(ip, cidr.prefix_len()).map_err(|e| DriverError::internal(format!("bad prefix: {e}")))
}

/// The gateway Docker asks for while creating a network: the subnet's when
/// it exists (a different request is refused), else the requested one, else
/// the one Neutron will pick (the first address).
fn gateway_address(pool: &PoolInfo, requested: Option<IpAddr>) -> DriverResult<IpNet> {
    let prefix = pool.cidr.prefix_len();
    let to_net = |ip: IpAddr| {
        IpNet::new(ip, prefix).map_err(|e| DriverError::internal(format!("bad prefix: {e}")))
    };
    if let Some(subnet) = &pool.subnet {
        let Some(existing) = subnet.gateway_ip else {
            return Err(DriverError::bad_request(format!(
                "Neutron subnet {} has no gateway",
                subnet.id
            )));
        };
        if requested.is_some_and(|r| r != existing) {
            return Err(DriverError::conflict(format!(
                "requested gateway {} does not match the gateway {existing} of Neutron subnet {}",
                requested.map(|r| r.to_string()).unwrap_or_default(),
                subnet.id
            )));
        }
        return to_net(existing);
    }
    match requested {
        Some(ip) => {
            ipmath::check_gateway(pool.cidr, ip)
                .map_err(|e| DriverError::bad_request(e.to_string()))?;
            to_net(ip)
        }
        None => {
            let ip = ipmath::default_gateway(pool.cidr).ok_or_else(|| {
                DriverError::bad_request(format!("{} has no room for a gateway", pool.cidr))
            })?;
            to_net(ip)
        }
    }
}

impl IpamAddresses for KuryrDriver {
    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> DriverResult<RequestAddressResponse> {
        let id = PoolId::parse(&req.pool_id)?;
        let pool = self.resolve_pool(&id).await?;
        if req.options.is_gateway_request() {
            let address = gateway_address(&pool, req.address).map_err(|mut err| {
                if self.settings.ip_range_as_subnet && err.http_status() == 400 {
                    err.message.push_str(
                        " ([DEFAULT] ip_range_as_subnet = true makes --ip-range the Neutron subnet: \
                         give a --gateway inside the range)",
                    );
                }
                err
            })?;
            return Ok(RequestAddressResponse { address, data: BTreeMap::new() });
        }
        let subnet = pool.subnet.ok_or_else(|| {
            DriverError::not_found(format!(
                "pool {id} has no Neutron subnet: its Docker network does not exist"
            ))
        })?;
        if let Some(ip) = req.address {
            if !pool.cidr.contains(&ip) {
                return Err(DriverError::bad_request(format!(
                    "address {ip} is not in {}",
                    pool.cidr
                )));
            }
        }
        if req.address.is_none() && req.options.mac_address().is_none() {
            if let Some((key, pooled)) = self.take_pooled(&subnet) {
                let ip = pooled
                    .port
                    .fixed_ips
                    .iter()
                    .find(|f| f.subnet_id == subnet.id)
                    .map(|f| f.ip_address);
                if let Some(ip) = ip {
                    info!(port_id = %pooled.port.id, %ip, "address from the port pool");
                    let at = SubnetAddr::new(&subnet.id, ip);
                    let mut cache = self.cache();
                    cache.addresses.insert(at.clone(), pooled.port.clone());
                    cache.pooled.insert(at, (key, pooled));
                    return Ok(RequestAddressResponse {
                        address: address_on(&subnet, ip)?,
                        data: BTreeMap::new(),
                    });
                }
                warn!(port_id = %pooled.port.id, "pool port without an address on its subnet; deleting it");
                let pool = self.lifecycle.pool().clone();
                tokio::spawn(async move { pool.discard(&pooled.port.id).await });
            }
        }
        if req.address.is_some() {
            // A pool port given back above the pool's max may still be on
            // its way out, holding the address.
            self.settle_network(&subnet.network_id).await;
        }
        let mac = req.options.mac_address().map(ToString::to_string);
        let port = self.create_address_port(&subnet, req.address, mac).await?;
        let ip = port
            .fixed_ips
            .iter()
            .find(|f| f.subnet_id == subnet.id)
            .map(|f| f.ip_address)
            .ok_or_else(|| {
                DriverError::internal(format!(
                    "port {} has no address on subnet {}",
                    port.id, subnet.id
                ))
            })?;
        info!(port_id = %port.id, %ip, "address allocated");
        self.cache().addresses.insert(SubnetAddr::new(&subnet.id, ip), port);
        Ok(RequestAddressResponse { address: address_on(&subnet, ip)?, data: BTreeMap::new() })
    }

    async fn release_address(&self, req: ReleaseAddressRequest) -> DriverResult<()> {
        let ip = req
            .address
            .ok_or_else(|| DriverError::bad_request("ReleaseAddress without an Address"))?;
        let id = PoolId::parse(&req.pool_id)?;
        // The pool names the subnet, and the address is looked up on that
        // subnet alone: another network may hold the same address.
        let pool = match self.resolve_pool(&id).await {
            Ok(pool) => pool,
            Err(err) if err.http_status() == 404 => return Ok(()),
            Err(err) => return Err(err),
        };
        let Some(subnet) = pool.subnet else {
            return Ok(());
        };
        let at = SubnetAddr::new(&subnet.id, ip);
        let (back, cached) = {
            let mut cache = self.cache();
            let back = cache.returning.remove(&at).or_else(|| cache.pooled.remove(&at));
            (back, cache.addresses.remove(&at))
        };
        if let Some((key, pooled)) = back {
            // Back to its pool after the reply (behind the claim's update).
            let pool = self.lifecycle.pool().clone();
            let port_id = pooled.port.id.clone();
            self.defer(&port_id, &key.network_id.clone(), async move {
                pool.give_back(&key, pooled).await;
            });
            return Ok(());
        }
        if subnet.gateway_ip == Some(ip) {
            return Ok(());
        }
        let port = match cached {
            Some(port) => Some(port),
            None => self.port_holding(&subnet, ip).await?,
        };
        let Some(port) = port else {
            return Ok(());
        };
        if !SubnetAddr::of_port(&port).any(|a| a == at) {
            warn!(port_id = %port.id, %ip, subnet = %subnet.id, "the port does not hold the released address on its pool's subnet; left alone");
            return Ok(());
        }
        // Released before the reply, so that what Neutron shows matches
        // Docker once `docker rm` or `network disconnect` returns
        // (docs/benchmarks.md § Releasing an address weighs this against the
        // round trip it costs the rm path). The port's owner update, if
        // still running, goes first.
        self.settle_port(&port.id).await;
        self.release_port(&port).await
    }
}

#[cfg(test)]
mod tests;
