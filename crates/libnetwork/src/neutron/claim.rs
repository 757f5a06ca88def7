//! Claiming a port for an endpoint: a pool port (one local OVSDB
//! transaction), or the port RequestAddress made (named, owned and tagged
//! for the endpoint; a dual-stack endpoint's second port folded into the
//! first; a new MAC set), docs/mapping.md § CreateEndpoint.

use super::{lifecycle_error, neutron_error, EndpointInfo, KuryrDriver, NetworkInfo, SubnetAddr};
use crate::api::{DriverError, DriverResult};
use crate::wire::{CreateEndpointResponse, EndpointInterface};
use kuryr_core::lifecycle::Target;
use kuryr_core::naming;
use kuryr_core::owner::Owner;
use kuryr_core::vif_pool::{PoolKey, PooledPort};
use openstack::neutron::{FixedIpRequest, Port, PortUpdate, Resource};
use std::time::Instant;

impl KuryrDriver {
    /// A ready pool port for the endpoint: its owner goes on the OVS
    /// interface (one local transaction), Neutron learns it after the reply,
    /// and the port is ACTIVE already. No Neutron call.
    pub(super) async fn claim_pooled(
        &self,
        owner: &Owner,
        net: &NetworkInfo,
        key: PoolKey,
        pooled: PooledPort,
        mac_requested: bool,
    ) -> DriverResult<CreateEndpointResponse> {
        let ep = owner.device_id();
        let bound = self
            .lifecycle
            .bind_pooled(&pooled, owner, Target::HostNamespace)
            .await
            .map_err(lifecycle_error)?;
        let record = owner.record(&pooled.port.tags);
        let mut port = pooled.port;
        port.name = owner.port_name();
        port.device_id = ep.to_string();
        port.tags = record.tags.clone();
        let subnets = net
            .subnets
            .iter()
            .filter(|s| port.fixed_ips.iter().any(|f| f.subnet_id == s.id))
            .cloned()
            .collect();
        let mac = port.mac_address.clone();
        {
            let mut cache = self.cache();
            for a in SubnetAddr::of_port(&port) {
                cache.addresses.insert(a, port.clone());
            }
            cache.endpoints.insert(
                ep.to_string(),
                EndpointInfo {
                    port: port.clone(),
                    plugged: bound.plugged,
                    subnets,
                    exposed_sg: None,
                    active_seen: Some(Instant::now()),
                    pool: Some(key),
                },
            );
        }
        self.defer(&port.id, &port.network_id, self.lifecycle.record_owner(&port.id, record));
        let interface = (!mac_requested)
            .then(|| {
                mac.parse()
                    .map(|mac| EndpointInterface {
                        mac_address: Some(mac),
                        ..EndpointInterface::default()
                    })
                    .map_err(|_| DriverError::internal(format!("Neutron MAC {mac:?}")))
            })
            .transpose()?;
        Ok(CreateEndpointResponse { interface })
    }

    /// Whether the port's Neutron update can wait until after the reply:
    /// Kuryr made it bound to this host (so its vif_type is known) and
    /// nothing about it (MAC, addresses, owner) must change before plugging.
    pub(super) fn owner_deferrable(&self, port: &Port) -> bool {
        !port.tags.iter().any(|t| t == naming::EXISTING_PORT_TAG)
            && port.tags.iter().any(|t| t == naming::DEVICE_OWNER)
            && port.device_owner == naming::DEVICE_OWNER
            && port.binding_host_id == self.settings.lifecycle.host
            && is_bound(port)
    }

    /// Names the port after the endpoint and tags it (one PUT, one tag PUT).
    /// Dual stack: Docker asked for each address separately, so the second
    /// port is folded into the first.
    pub(super) async fn claim_port(
        &self,
        owner: &Owner,
        ports: Vec<Port>,
        mac: Option<String>,
    ) -> DriverResult<Port> {
        let mut ports = ports.into_iter();
        let primary = ports.next().ok_or_else(|| DriverError::internal("no port to claim"))?;
        let mut fixed_ips: Option<Vec<FixedIpRequest>> = None;
        for extra in ports {
            let mut all = fixed_ips.unwrap_or_else(|| requests(&primary));
            all.extend(requests(&extra));
            fixed_ips = Some(all);
            self.release_port(&extra).await?;
        }
        // An adopted port keeps the name its owner gave it.
        let record = owner.record(&primary.tags);
        let mac = mac.filter(|m| !m.eq_ignore_ascii_case(&primary.mac_address));
        let mut bound_host = primary.binding_host_id.clone();
        if mac.is_some() && is_bound(&primary) {
            // Neutron refuses a new MAC on a bound port (PortBound): unbind
            // first. Only `--mac-address` pays this extra call.
            let unbind =
                PortUpdate { binding_host_id: Some(String::new()), ..PortUpdate::default() };
            self.neutron
                .update_port(&primary.id, &unbind)
                .await
                .map_err(|e| neutron_error("unbinding the port to change its MAC", e))?;
            bound_host.clear();
        }
        let update = PortUpdate {
            name: record.name,
            device_id: Some(record.device_id),
            device_owner: (primary.device_owner != naming::DEVICE_OWNER)
                .then(|| naming::DEVICE_OWNER.to_string()),
            binding_host_id: (self.binder.binds_host()
                && bound_host != self.settings.lifecycle.host)
                .then(|| self.settings.lifecycle.host.clone()),
            mac_address: mac,
            fixed_ips,
            ..PortUpdate::default()
        };
        let mut port = self
            .neutron
            .update_port(&primary.id, &update)
            .await
            .map_err(|e| neutron_error("binding the port to the endpoint", e))?;
        let tags = owner.claimed_tags(&port.tags);
        self.neutron
            .replace_tags(Resource::Ports, &port.id, &tags)
            .await
            .map_err(|e| neutron_error("tagging the port", e))?;
        port.tags = tags;
        Ok(port)
    }
}

/// Bound to a host by a mechanism driver (a MAC change is refused then).
fn is_bound(port: &Port) -> bool {
    !port.binding_host_id.is_empty() && port.binding_vif_type.is_bound()
}

fn requests(port: &Port) -> Vec<FixedIpRequest> {
    port.fixed_ips
        .iter()
        .map(|f| FixedIpRequest {
            subnet_id: Some(f.subnet_id.clone()),
            ip_address: Some(f.ip_address),
        })
        .collect()
}
