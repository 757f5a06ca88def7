//! Docker endpoints: `CreateEndpoint` binds the address's port on this
//! host, `Join` describes it to Docker, `DeleteEndpoint` unplugs it, and
//! exposed ports become a security group on the port.

use crate::api::Endpoints;
use crate::wire::{DeleteEndpointRequest, EndpointOperInfoRequest, JoinRequest, LeaveRequest};
use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_core::binding::{BindError, PlugKind, Plugged};
use kuryr_core::lifecycle::Target;
use kuryr_core::naming;
use kuryr_core::owner::{Owner, OwnerKind};
use kuryr_core::vif_pool::{PoolKey, PooledPort};
use openstack::neutron::{Port, PortStatus, Query, Subnet};
use std::time::{Duration, Instant};
use tracing::{info, warn};

use super::{
    lifecycle_error, neutron_error, EndpointInfo, KuryrDriver, SubnetAddr, ACTIVE_SEEN_FRESH,
};
use crate::api::{DriverError, DriverResult, ErrorKind};
use crate::wire::{
    CreateEndpointRequest, CreateEndpointResponse, EndpointInterface, EndpointOperInfoResponse,
    InterfaceName, JoinResponse, RouteType, StaticRoute,
};

/// How long a started container's interface may take to appear configured
/// in its sandbox before the gratuitous ARP is given up.
const ANNOUNCE_PATIENCE: Duration = Duration::from_secs(10);

/// The subnet among a network's that holds `ip` (a network's subnets never
/// overlap).
fn subnet_holding(subnets: &[Subnet], ip: IpAddr) -> Option<&Subnet> {
    subnets.iter().find(|s| s.cidr.parse::<IpNet>().is_ok_and(|cidr| cidr.contains(&ip)))
}

pub(super) fn bind_error(err: BindError) -> DriverError {
    let kind = match &err {
        BindError::UnsupportedVifType { .. } => ErrorKind::Conflict,
        BindError::NotActive { .. } => ErrorKind::Unavailable,
        BindError::Neutron { .. }
        | BindError::Plumbing { .. }
        | BindError::Nested { .. }
        | BindError::BadMac { .. } => ErrorKind::Internal,
    };
    DriverError::new(kind, err.to_string())
}

impl KuryrDriver {
    /// The current subnets of the port's addresses; the cached ones (with a
    /// warning) if Neutron cannot say.
    async fn port_subnets(&self, network_id: &str, port: &Port, cached: &[Subnet]) -> Vec<Subnet> {
        let on_port = |s: &Subnet| port.fixed_ips.iter().any(|f| f.subnet_id == s.id);
        match self.neutron.list_subnets(&Query::new().network_id(network_id)).await {
            Ok(subnets) => subnets.into_iter().filter(on_port).collect(),
            Err(err) => {
                warn!(port_id = %port.id, %err, "reading the subnets; using cached ones");
                cached.iter().filter(|s| on_port(s)).cloned().collect()
            }
        }
    }

    /// The port RequestAddress made for `ip` on this network: from the
    /// cache (by the subnet holding it), else Neutron.
    async fn port_of_address(
        &self,
        network_id: &str,
        ip: IpAddr,
        at: Option<&SubnetAddr>,
    ) -> DriverResult<Port> {
        if let Some(port) = at.and_then(|a| self.cache().addresses.get(a).cloned()) {
            return Ok(port);
        }
        let ports = self
            .neutron
            .list_ports(&Query::new().network_id(network_id).fixed_ip_address(ip))
            .await
            .map_err(|e| neutron_error("looking up the address's port", e))?;
        ports.into_iter().next().ok_or_else(|| {
            DriverError::not_found(format!(
                "no Neutron port holds {ip} on network {network_id}: addresses must come from --ipam-driver kuryr"
            ))
        })
    }

    /// The endpoint, from the cache or rebuilt from Neutron (its port is
    /// tagged with the endpoint id).
    pub(super) async fn endpoint_info(
        &self,
        docker_net: &str,
        ep: &str,
    ) -> DriverResult<EndpointInfo> {
        if let Some(info) = self.cache().endpoints.get(ep) {
            return Ok(info.clone());
        }
        let port = self.port_of_endpoint(ep).await?.ok_or_else(|| {
            DriverError::not_found(format!("no Neutron port is tagged for endpoint {ep}"))
        })?;
        let net = self.network_info(docker_net).await?;
        let subnets = net
            .subnets
            .into_iter()
            .filter(|s| port.fixed_ips.iter().any(|f| f.subnet_id == s.id))
            .collect();
        let plugged = Plugged {
            host_ifname: naming::host_veth_name(&port.id),
            container_ifname: naming::container_veth_name(&port.id),
            vif_type: PlugKind::Veth(port.binding_vif_type.clone()),
        };
        let info = EndpointInfo {
            port,
            plugged,
            subnets,
            exposed_sg: None,
            active_seen: None,
            pool: None,
        };
        Ok(info)
    }

    /// The endpoint's port: by its tags, else (its owner not recorded in
    /// Neutron yet, a crash in between) through OVSDB's vm-uuid.
    async fn port_of_endpoint(&self, ep: &str) -> DriverResult<Option<Port>> {
        let ports = self
            .neutron
            .list_ports(&Query::new().tags(naming::id_tags(ep)))
            .await
            .map_err(|e| neutron_error("looking up the endpoint's port", e))?;
        if let Some(port) = ports.into_iter().find(|p| p.device_id == ep) {
            return Ok(Some(port));
        }
        let Ok(Some(id)) = self.binder.port_of_owner(ep).await else {
            return Ok(None);
        };
        match self.neutron.get_port(&id).await {
            Ok(port) => Ok(Some(port)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(neutron_error("reading the endpoint's port", e)),
        }
    }

    /// At start: an endpoint's port whose deferred Neutron update was lost
    /// (the process died between the reply and the update) is plugged, with
    /// its endpoint in OVSDB (`vm-uuid`), but still carries the unbound or
    /// pool name and no device_id. Records its owner now. One GET, plus one
    /// network GET and the update per such port. Returns how many.
    pub async fn reconcile_owners(&self) -> DriverResult<usize> {
        self.lifecycle.recover_owners(OwnerKind::DockerEndpoint).await.map_err(lifecycle_error)
    }

    /// A pool port whose veth pair Docker gave back intact (the container
    /// end is in the host namespace again, under its own name) is reset in
    /// OVSDB and kept plugged; ReleaseAddress returns it to its pool.
    async fn keep_for_pool(&self, info: &EndpointInfo) -> bool {
        let Some(key) = &info.pool else {
            return false;
        };
        if !self.pool_settings_of(&key.network_id).enabled()
            || !self.binder.container_end_present(&info.port.id).await
        {
            return false;
        }
        let pooled = PooledPort { port: info.port.clone(), plugged: info.plugged.clone() };
        if let Err(err) = self.lifecycle.pool().reset_local(&pooled).await {
            warn!(port_id = %info.port.id, %err, "resetting the pool port; unplugging it");
            return false;
        }
        let mut cache = self.cache();
        for a in SubnetAddr::of_port(&info.port) {
            cache.returning.insert(a, (key.clone(), pooled.clone()));
        }
        info!(port_id = %info.port.id, "endpoint deleted; port kept plugged for its pool");
        true
    }

    /// A gratuitous ARP from the container tells peers that knew a reused
    /// address at its previous holder's MAC (see `netplumb::garp`). Docker
    /// configures the interface only when the runtime has made the
    /// container's netns, after its last plugin call of the start, so this
    /// waits for that in the background. Veth binding only (ipvlan shares
    /// the VM's MAC); best effort.
    pub(super) async fn announce_endpoint(&self, ep: &str) {
        let sandbox = self.cache().sandboxes.remove(ep);
        let info = self.cache().endpoints.get(ep).cloned();
        let (Some(sandbox), Some(info)) = (sandbox, info) else {
            return;
        };
        if !info.plugged.vif_type.is_veth() {
            return;
        }
        let Ok(mac) = info.port.mac_address.parse() else {
            return;
        };
        let ips: Vec<std::net::Ipv4Addr> = info
            .port
            .fixed_ips
            .iter()
            .filter_map(|f| match f.ip_address {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(_) => None,
            })
            .collect();
        let binder = self.binder.clone();
        tokio::spawn(async move {
            binder.announce_in_sandbox(&info.port.id, &sandbox, mac, &ips, ANNOUNCE_PATIENCE).await;
        });
    }
}

impl Endpoints for KuryrDriver {
    async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> DriverResult<CreateEndpointResponse> {
        let ep = req.endpoint_id.as_str();
        let owner = Owner::DockerEndpoint {
            endpoint: ep.to_string(),
            docker_network: req.network_id.clone(),
        };
        let net = self.network_info(&req.network_id).await?;
        let addresses: Vec<IpAddr> = [req.interface.address, req.interface.address_ipv6]
            .into_iter()
            .flatten()
            .map(|n| n.addr())
            .collect();
        if addresses.is_empty() {
            return Err(DriverError::bad_request(
                "CreateEndpoint without an address: create the network with --ipam-driver kuryr",
            ));
        }
        let requested_mac = req.interface.mac_address.as_ref().map(ToString::to_string);
        // Each address on the network's subnet that holds it: the same
        // address may be another network's too.
        let at: Vec<(IpAddr, Option<SubnetAddr>)> = addresses
            .iter()
            .map(|ip| {
                let subnet = subnet_holding(&net.subnets, *ip);
                (*ip, subnet.map(|s| SubnetAddr::new(&s.id, *ip)))
            })
            .collect();
        let pooled: Vec<(PoolKey, PooledPort)> = {
            let mut cache = self.cache();
            at.iter().filter_map(|(_, a)| cache.pooled.remove(a.as_ref()?)).collect()
        };
        for (key, pooled) in pooled {
            let mac_ok = requested_mac
                .as_ref()
                .is_none_or(|m| m.eq_ignore_ascii_case(&pooled.port.mac_address));
            if addresses.len() == 1 && mac_ok {
                match self.claim_pooled(&owner, &net, key, pooled, requested_mac.is_some()).await {
                    Ok(response) => return Ok(response),
                    Err(err) => {
                        warn!(endpoint = ep, %err, "claiming the pool port locally failed; plugging it again")
                    }
                }
            } else {
                // Dual stack or a new MAC: the port is plugged afresh below.
                if let Err(err) = self.binder.unplug(&pooled.port.id).await {
                    warn!(port_id = %pooled.port.id, %err, "unplugging the pool port");
                }
            }
        }
        let mut ports = Vec::new();
        for (ip, on_subnet) in &at {
            let port = self.port_of_address(&net.neutron_id, *ip, on_subnet.as_ref()).await?;
            if !ports.iter().any(|p: &Port| p.id == port.id) {
                ports.push(port);
            }
        }
        let deferred = ports.len() == 1
            && requested_mac.as_ref().is_none_or(|m| m.eq_ignore_ascii_case(&ports[0].mac_address))
            && self.owner_deferrable(&ports[0]);
        let port = if deferred {
            let mut port = ports.remove(0);
            port.name = owner.port_name();
            port.device_id = ep.to_string();
            port.tags = owner.claimed_tags(&port.tags);
            port
        } else {
            self.claim_port(&owner, ports, requested_mac.clone()).await?
        };
        {
            let mut cache = self.cache();
            for a in SubnetAddr::of_port(&port) {
                cache.addresses.insert(a, port.clone());
            }
        }
        // The subnets are read again while the port comes up: an operator
        // may have changed host_routes (or the gateway) since CreateNetwork
        // filled the cache, and Join hands them to the container.
        let (bound, subnets) = tokio::join!(
            self.lifecycle.bind(&port, &owner, net.mtu, Target::HostNamespace),
            self.port_subnets(&net.neutron_id, &port, &net.subnets)
        );
        let bound = bound.map_err(bind_error)?;
        let active_seen = bound.readiness.seen_active().then(Instant::now);
        let plugged = bound.plugged;
        if deferred {
            // The owner is on the OVS interface already (vm-uuid), which is
            // what DeleteEndpoint and a restart find it by.
            self.defer(
                &port.id,
                &port.network_id,
                self.lifecycle.record_owner(&port.id, owner.record(&port.tags)),
            );
        }
        let mac = port.mac_address.clone();
        self.cache().endpoints.insert(
            ep.to_string(),
            EndpointInfo { port, plugged, subnets, exposed_sg: None, active_seen, pool: None },
        );
        let interface = match requested_mac {
            Some(_) => None,
            None => Some(EndpointInterface {
                mac_address: Some(
                    mac.parse()
                        .map_err(|_| DriverError::internal(format!("Neutron MAC {mac:?}")))?,
                ),
                ..EndpointInterface::default()
            }),
        };
        Ok(CreateEndpointResponse { interface })
    }

    async fn endpoint_oper_info(
        &self,
        req: EndpointOperInfoRequest,
    ) -> DriverResult<EndpointOperInfoResponse> {
        let (docker_net, ep) = (req.network_id.as_str(), req.endpoint_id.as_str());
        let cached = self.cache().endpoints.get(ep).map(|i| (i.port.id.clone(), i.active_seen));
        let (port_id, status) = match cached {
            // Docker asks right after Join, only for port mappings: the
            // ACTIVE CreateEndpoint just saw answers without a call. Later
            // calls ask Neutron, whose status (admin down, say) is the truth;
            // ovn-installed on the interface does not reflect it.
            Some((id, Some(seen))) if seen.elapsed() < ACTIVE_SEEN_FRESH => {
                (id, PortStatus::Active)
            }
            Some((id, _)) => {
                let port = self
                    .neutron
                    .get_port(&id)
                    .await
                    .map_err(|e| neutron_error("reading the port", e))?;
                (id, port.status)
            }
            None => {
                let info = self.endpoint_info(docker_net, ep).await?;
                (info.port.id, info.port.status)
            }
        };
        let mut value = BTreeMap::new();
        value.insert("status".to_string(), serde_json::Value::String(status.to_string()));
        value.insert("port_id".to_string(), serde_json::Value::String(port_id.into_string()));
        Ok(EndpointOperInfoResponse { value })
    }

    async fn delete_endpoint(&self, req: DeleteEndpointRequest) -> DriverResult<()> {
        let ep = req.endpoint_id.as_str();
        self.cache().sandboxes.remove(ep);
        let cached = self.cache().endpoints.remove(ep);
        if let Some(info) = &cached {
            if self.keep_for_pool(info).await {
                return Ok(());
            }
        }
        let cached = cached.map(|info| info.port.id.into_string());
        let port_id = match cached {
            Some(id) => Some(id),
            None => match self.binder.port_of_owner(ep).await {
                Ok(Some(id)) => Some(id),
                Ok(None) | Err(_) => self.port_of_endpoint(ep).await?.map(|p| p.id.into_string()),
            },
        };
        match port_id {
            Some(id) => self.binder.unplug(&id).await.map_err(bind_error),
            None => {
                warn!(endpoint = ep, "nothing to unplug");
                Ok(())
            }
        }
    }

    async fn join(&self, req: JoinRequest) -> DriverResult<JoinResponse> {
        let (docker_net, ep) = (req.network_id.as_str(), req.endpoint_id.as_str());
        let info = self.endpoint_info(docker_net, ep).await?;
        let mut response = JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: info.plugged.container_ifname.clone(),
                dst_prefix: self.settings.veth_dst_prefix.clone(),
            }),
            disable_gateway_service: true,
            ..JoinResponse::default()
        };
        let own: Vec<IpAddr> = info.port.fixed_ips.iter().map(|f| f.ip_address).collect();
        for subnet in &info.subnets {
            match subnet.gateway_ip {
                Some(gw @ IpAddr::V4(_)) => response.gateway = Some(gw),
                Some(gw @ IpAddr::V6(_)) => response.gateway_ipv6 = Some(gw),
                None => {}
            }
            for route in &subnet.host_routes {
                let Ok(destination) = route.destination.parse::<IpNet>() else {
                    warn!(subnet = %subnet.id, destination = %route.destination, "skipping a bad host route");
                    continue;
                };
                if own.contains(&route.nexthop) {
                    // Docker would refuse the route and the container would
                    // not start: one bad route must not cost the container.
                    warn!(
                        subnet = %subnet.id, endpoint = ep, %destination, nexthop = %route.nexthop,
                        "skipping a host route whose nexthop is the container's own address \
                         (keep nexthops out of the subnet's allocation pools)"
                    );
                    continue;
                }
                response.static_routes.push(StaticRoute {
                    destination,
                    route_type: RouteType::NextHop,
                    next_hop: Some(route.nexthop),
                });
            }
        }
        // ProgramExternalConnectivity announces the addresses from there.
        self.cache().sandboxes.insert(ep.to_string(), req.sandbox_key.clone());
        Ok(response)
    }

    async fn leave(&self, _req: LeaveRequest) -> DriverResult<()> {
        // Docker takes the interface out of the sandbox itself; the devices
        // are removed in DeleteEndpoint.
        Ok(())
    }
}

#[cfg(test)]
mod tests;
