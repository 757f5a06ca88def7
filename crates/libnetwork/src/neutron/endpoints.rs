//! Docker endpoints: `CreateEndpoint` binds the address's port on this
//! host, `Join` describes it to Docker, `DeleteEndpoint` unplugs it, and
//! exposed ports become a security group on the port.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_core::binding::{BindError, PlugRequest, Plugged};
use kuryr_core::{ipmath, naming};
use openstack::neutron::{
    FixedIpRequest, Port, PortUpdate, Query, Resource, SecurityGroupCreate,
    SecurityGroupRuleCreate, Subnet,
};
use std::time::{Duration, Instant};
use tracing::{info, warn};

use super::{neutron_error, EndpointInfo, KuryrDriver, ACTIVE_SEEN_FRESH};
use crate::api::{DriverError, DriverResult, ErrorKind};
use crate::wire::{
    CreateEndpointRequest, CreateEndpointResponse, EndpointInterface, EndpointOperInfoResponse,
    InterfaceName, JoinResponse, ProgramExternalConnectivityRequest, RouteType, StaticRoute,
};

/// How long the local OVN signal may take before Neutron is asked too.
const NEUTRON_POLL_DELAY: Duration = Duration::from_secs(2);

fn bind_error(err: BindError) -> DriverError {
    let kind = match &err {
        BindError::UnsupportedVifType { .. } => ErrorKind::Conflict,
        BindError::NotActive { .. } => ErrorKind::Unavailable,
        BindError::Neutron { .. } | BindError::Plumbing { .. } => ErrorKind::Internal,
    };
    DriverError::new(kind, err.to_string())
}

impl KuryrDriver {
    pub(super) async fn create_endpoint_impl(
        &self,
        req: CreateEndpointRequest,
    ) -> DriverResult<CreateEndpointResponse> {
        let ep = req.endpoint_id.as_str();
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
        let mut ports = Vec::new();
        for ip in &addresses {
            let port = self.port_of_address(&net.neutron_id, *ip).await?;
            if !ports.iter().any(|p: &Port| p.id == port.id) {
                ports.push(port);
            }
        }
        let requested_mac = req.interface.mac_address.as_ref().map(ToString::to_string);
        let port = self
            .claim_port(ep, &req.network_id, ports, requested_mac.clone())
            .await?;
        {
            let mut cache = self.cache();
            for ip in &addresses {
                cache.addresses.insert(*ip, port.clone());
            }
        }
        // The subnets are read again while the port comes up: an operator
        // may have changed host_routes (or the gateway) since CreateNetwork
        // filled the cache, and Join hands them to the container.
        let (plugged, subnets) = tokio::join!(
            self.plug_and_wait(ep, &net.neutron_id, net.mtu, &port),
            self.port_subnets(&net.neutron_id, &port, &net.subnets)
        );
        let (plugged, active_seen) = plugged?;
        let mac = port.mac_address.clone();
        self.cache().endpoints.insert(
            ep.to_string(),
            EndpointInfo {
                port,
                plugged,
                subnets,
                exposed_sg: None,
                active_seen,
            },
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

    /// The current subnets of the port's addresses; the cached ones (with a
    /// warning) if Neutron cannot say.
    async fn port_subnets(&self, network_id: &str, port: &Port, cached: &[Subnet]) -> Vec<Subnet> {
        let on_port = |s: &Subnet| port.fixed_ips.iter().any(|f| f.subnet_id == s.id);
        match self
            .neutron
            .list_subnets(&Query::new().network_id(network_id))
            .await
        {
            Ok(subnets) => subnets.into_iter().filter(on_port).collect(),
            Err(err) => {
                warn!(port_id = %port.id, %err, "reading the subnets; using cached ones");
                cached.iter().filter(|s| on_port(s)).cloned().collect()
            }
        }
    }

    /// The port RequestAddress made for `ip`: from the cache, else Neutron.
    async fn port_of_address(&self, network_id: &str, ip: IpAddr) -> DriverResult<Port> {
        if let Some(port) = self.cache().addresses.get(&ip) {
            return Ok(port.clone());
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

    /// Names the port after the endpoint and tags it (one PUT, one tag PUT).
    /// Dual stack: Docker asked for each address separately, so the second
    /// port is folded into the first.
    async fn claim_port(
        &self,
        ep: &str,
        docker_net: &str,
        ports: Vec<Port>,
        mac: Option<String>,
    ) -> DriverResult<Port> {
        let mut ports = ports.into_iter();
        let primary = ports
            .next()
            .ok_or_else(|| DriverError::internal("no port to claim"))?;
        let mut fixed_ips: Option<Vec<FixedIpRequest>> = None;
        for extra in ports {
            let mut all = fixed_ips.unwrap_or_else(|| requests(&primary));
            all.extend(requests(&extra));
            fixed_ips = Some(all);
            self.release_port(&extra).await?;
        }
        // An adopted port keeps the name its owner gave it.
        let adopted = primary.tags.iter().any(|t| t == naming::EXISTING_PORT_TAG);
        let mac = mac.filter(|m| !m.eq_ignore_ascii_case(&primary.mac_address));
        let mut bound_host = primary.binding_host_id.clone();
        if mac.is_some() && is_bound(&primary) {
            // Neutron refuses a new MAC on a bound port (PortBound): unbind
            // first. Only `--mac-address` pays this extra call.
            let unbind = PortUpdate {
                binding_host_id: Some(String::new()),
                ..PortUpdate::default()
            };
            self.neutron
                .update_port(&primary.id, &unbind)
                .await
                .map_err(|e| neutron_error("unbinding the port to change its MAC", e))?;
            bound_host.clear();
        }
        let update = PortUpdate {
            name: (!adopted).then(|| naming::port_name(ep)),
            device_id: Some(ep.to_string()),
            device_owner: (primary.device_owner != naming::DEVICE_OWNER)
                .then(|| naming::DEVICE_OWNER.to_string()),
            binding_host_id: (bound_host != self.settings.host).then(|| self.settings.host.clone()),
            mac_address: mac,
            fixed_ips,
            ..PortUpdate::default()
        };
        let mut port = self
            .neutron
            .update_port(&primary.id, &update)
            .await
            .map_err(|e| neutron_error("binding the port to the endpoint", e))?;
        let mut tags = port.tags.clone();
        for tag in naming::id_tags(ep)
            .into_iter()
            .chain(naming::docker_network_tags(docker_net))
        {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        self.neutron
            .replace_tags(Resource::Ports, &port.id, &tags)
            .await
            .map_err(|e| neutron_error("tagging the port", e))?;
        port.tags = tags;
        Ok(port)
    }

    async fn plug_and_wait(
        &self,
        ep: &str,
        network_id: &str,
        mtu: Option<u32>,
        port: &Port,
    ) -> DriverResult<(Plugged, Option<Instant>)> {
        let mac = port.mac_address.parse().map_err(|_| {
            DriverError::internal(format!(
                "port {} has a bad MAC {:?}",
                port.id, port.mac_address
            ))
        })?;
        let request = PlugRequest {
            port_id: port.id.clone(),
            network_id: network_id.to_string(),
            mac,
            mtu,
            vif_type: port.binding_vif_type.clone(),
            owner_id: ep.to_string(),
        };
        let plugged = self.binder.plug(&request).await.map_err(bind_error)?;
        let timeout = self.settings.active_timeout;
        if timeout.is_zero() {
            return Ok((plugged, None));
        }
        match self
            .binder
            .wait_active(
                &self.neutron,
                &port.id,
                &plugged,
                timeout,
                NEUTRON_POLL_DELAY,
            )
            .await
        {
            Ok(via) => {
                info!(port_id = %port.id, ?via, "port ACTIVE");
                return Ok((plugged, Some(Instant::now())));
            }
            Err(err) if self.settings.active_is_fatal => {
                if let Err(cleanup) = self.binder.unplug(&port.id).await {
                    warn!(port_id = %port.id, %cleanup, "cleanup after a failed wait");
                }
                return Err(bind_error(err));
            }
            Err(err) => {
                warn!(port_id = %port.id, %err, "port not ACTIVE; going on (vif_plugging_is_fatal = false)")
            }
        }
        Ok((plugged, None))
    }

    /// The endpoint, from the cache or rebuilt from Neutron (its port is
    /// tagged with the endpoint id).
    async fn endpoint_info(&self, docker_net: &str, ep: &str) -> DriverResult<EndpointInfo> {
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
            vif_type: port.binding_vif_type.clone(),
        };
        let info = EndpointInfo {
            port,
            plugged,
            subnets,
            exposed_sg: None,
            active_seen: None,
        };
        Ok(info)
    }

    async fn port_of_endpoint(&self, ep: &str) -> DriverResult<Option<Port>> {
        let ports = self
            .neutron
            .list_ports(&Query::new().tags(naming::id_tags(ep)))
            .await
            .map_err(|e| neutron_error("looking up the endpoint's port", e))?;
        Ok(ports.into_iter().find(|p| p.device_id == ep))
    }

    pub(super) async fn join_impl(&self, docker_net: &str, ep: &str) -> DriverResult<JoinResponse> {
        let info = self.endpoint_info(docker_net, ep).await?;
        let mut response = JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: info.plugged.container_ifname.clone(),
                dst_prefix: self.settings.veth_dst_prefix.clone(),
            }),
            disable_gateway_service: true,
            ..JoinResponse::default()
        };
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
                response.static_routes.push(StaticRoute {
                    destination,
                    route_type: RouteType::NextHop,
                    next_hop: Some(route.nexthop),
                });
            }
        }
        Ok(response)
    }

    pub(super) async fn delete_endpoint_impl(&self, ep: &str) -> DriverResult<()> {
        let cached = self.cache().endpoints.remove(ep).map(|info| info.port.id);
        let port_id = match cached {
            Some(id) => Some(id),
            None => match self.binder.port_of_owner(ep).await {
                Ok(Some(id)) => Some(id),
                Ok(None) | Err(_) => self.port_of_endpoint(ep).await?.map(|p| p.id),
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

    pub(super) async fn endpoint_oper_info_impl(
        &self,
        docker_net: &str,
        ep: &str,
    ) -> DriverResult<EndpointOperInfoResponse> {
        let cached = self
            .cache()
            .endpoints
            .get(ep)
            .map(|i| (i.port.id.clone(), i.active_seen));
        let (port_id, status) = match cached {
            // Docker asks right after Join, only for port mappings: the
            // ACTIVE CreateEndpoint just saw answers without a call. Later
            // calls ask Neutron, whose status (admin down, say) is the truth;
            // ovn-installed on the interface does not reflect it.
            Some((id, Some(seen))) if seen.elapsed() < ACTIVE_SEEN_FRESH => {
                (id, "ACTIVE".to_string())
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
        value.insert("status".to_string(), serde_json::Value::String(status));
        value.insert("port_id".to_string(), serde_json::Value::String(port_id));
        Ok(EndpointOperInfoResponse { value })
    }

    pub(super) async fn program_external_connectivity_impl(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> DriverResult<()> {
        if !self.settings.process_external_connectivity || req.options.exposed_ports.is_empty() {
            return Ok(());
        }
        let info = self
            .endpoint_info(&req.network_id, &req.endpoint_id)
            .await?;
        let port = &info.port;
        let sg = self
            .neutron
            .create_security_group(&SecurityGroupCreate {
                name: naming::exposed_ports_sg_name(&port.id),
                description: Some(format!(
                    "Docker exposed ports of endpoint {}",
                    req.endpoint_id
                )),
                ..SecurityGroupCreate::default()
            })
            .await
            .map_err(|e| neutron_error("creating the exposed-ports security group", e))?;
        if let Err(err) = self.fill_and_attach(&sg.id, port, &req).await {
            if let Err(cleanup) = self.neutron.delete_security_group(&sg.id).await {
                warn!(sg = %sg.id, %cleanup, "cleanup: deleting security group failed");
            }
            return Err(err);
        }
        if let Some(entry) = self.cache().endpoints.get_mut(&req.endpoint_id) {
            entry.exposed_sg = Some(sg.id.clone());
            entry.port.security_groups.push(sg.id.clone());
        }
        info!(endpoint = %req.endpoint_id, sg = %sg.id, "exposed ports programmed");
        Ok(())
    }

    async fn fill_and_attach(
        &self,
        sg_id: &str,
        port: &Port,
        req: &ProgramExternalConnectivityRequest,
    ) -> DriverResult<()> {
        let mut by_proto: BTreeMap<String, Vec<u16>> = BTreeMap::new();
        for exposed in &req.options.exposed_ports {
            let proto = exposed
                .proto
                .name()
                .map(str::to_string)
                .unwrap_or_else(|| exposed.proto.0.to_string());
            by_proto.entry(proto).or_default().push(exposed.port);
        }
        let mut ethertypes: Vec<&str> = Vec::new();
        for fixed in &port.fixed_ips {
            let ethertype = if fixed.ip_address.is_ipv4() {
                "IPv4"
            } else {
                "IPv6"
            };
            if !ethertypes.contains(&ethertype) {
                ethertypes.push(ethertype);
            }
        }
        for (proto, ports) in by_proto {
            for (min, max) in ipmath::merge_port_ranges(ports) {
                for ethertype in &ethertypes {
                    let rule = SecurityGroupRuleCreate {
                        security_group_id: sg_id.to_string(),
                        direction: "ingress".into(),
                        ethertype: Some((*ethertype).to_string()),
                        protocol: Some(proto.clone()),
                        port_range_min: Some(u32::from(min)),
                        port_range_max: Some(u32::from(max)),
                        ..SecurityGroupRuleCreate::default()
                    };
                    self.neutron
                        .create_security_group_rule(&rule)
                        .await
                        .map_err(|e| neutron_error("creating an exposed-port rule", e))?;
                }
            }
        }
        let mut groups = port.security_groups.clone();
        groups.push(sg_id.to_string());
        self.neutron
            .update_port(
                &port.id,
                &PortUpdate {
                    security_groups: Some(groups),
                    ..PortUpdate::default()
                },
            )
            .await
            .map_err(|e| neutron_error("attaching the exposed-ports security group", e))?;
        Ok(())
    }

    pub(super) async fn revoke_external_connectivity_impl(
        &self,
        docker_net: &str,
        ep: &str,
    ) -> DriverResult<()> {
        let cached = self
            .cache()
            .endpoints
            .get(ep)
            .map(|i| (i.port.clone(), i.exposed_sg.clone()));
        let (port, groups) = match cached {
            Some((_, None)) => return Ok(()),
            Some((port, Some(sg))) => (port, vec![sg]),
            None => {
                let Ok(info) = self.endpoint_info(docker_net, ep).await else {
                    return Ok(());
                };
                let name = naming::exposed_ports_sg_name(&info.port.id);
                let found = self
                    .neutron
                    .list_security_groups(&Query::new().name(&name).fields(["id"]))
                    .await
                    .map_err(|e| neutron_error("looking up the exposed-ports security group", e))?;
                (info.port, found.into_iter().map(|sg| sg.id).collect())
            }
        };
        if groups.is_empty() {
            return Ok(());
        }
        let kept: Vec<String> = port
            .security_groups
            .iter()
            .filter(|g| !groups.contains(g))
            .cloned()
            .collect();
        match self
            .neutron
            .update_port(
                &port.id,
                &PortUpdate {
                    security_groups: Some(kept),
                    ..PortUpdate::default()
                },
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                return Err(neutron_error(
                    "detaching the exposed-ports security group",
                    e,
                ))
            }
        }
        for sg in &groups {
            match self.neutron.delete_security_group(sg).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    return Err(neutron_error(
                        "deleting the exposed-ports security group",
                        e,
                    ))
                }
            }
        }
        if let Some(entry) = self.cache().endpoints.get_mut(ep) {
            entry.exposed_sg = None;
            entry.port.security_groups.retain(|g| !groups.contains(g));
        }
        info!(endpoint = ep, "exposed ports revoked");
        Ok(())
    }
}

/// Bound to a host by a mechanism driver (a MAC change is refused then).
fn is_bound(port: &Port) -> bool {
    !port.binding_host_id.is_empty()
        && !matches!(
            port.binding_vif_type.as_str(),
            "" | "unbound" | "binding_failed"
        )
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

#[cfg(test)]
mod tests {
    use super::super::fake_neutron::FakeNeutron;
    use super::*;
    use openstack::neutron::{FixedIp, HostRoute};
    use serde_json::json;
    use std::time::Duration;

    const EP: &str = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0";
    const NET: &str = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0";

    fn port(tags: &[&str], name: &str) -> Port {
        Port {
            id: "p1".into(),
            name: name.into(),
            network_id: "n1".into(),
            mac_address: "fa:16:3e:00:00:01".into(),
            fixed_ips: vec![FixedIp {
                subnet_id: "s1".into(),
                ip_address: "10.1.2.5".parse().expect("ip"),
            }],
            tags: tags.iter().map(ToString::to_string).collect(),
            ..Port::default()
        }
    }

    async fn claimed_body(primary: Port) -> serde_json::Value {
        let fake = FakeNeutron::start().await;
        fake.on(
            "PUT",
            "/v2.0/ports/p1",
            200,
            json!({"port": primary.clone()}),
        );
        fake.on("PUT", "/v2.0/ports/p1/tags", 200, json!({"tags": []}));
        let driver = fake.driver().await;
        driver
            .claim_port(EP, NET, vec![primary], None)
            .await
            .expect("claimed");
        fake.calls()[0].body["port"].clone()
    }

    /// An existing port picked by `--ip` keeps its owner's name; a port
    /// Kuryr made is named after the endpoint.
    #[tokio::test]
    async fn only_kuryrs_own_ports_are_renamed() {
        let adopted = claimed_body(port(&["kuryr.port.existing", "team:blue"], "mine")).await;
        assert!(adopted.get("name").is_none(), "{adopted}");
        assert_eq!(adopted["device_id"], EP);
        let own = claimed_body(port(&["compute:kuryr"], "kuryr-unbound-port")).await;
        assert_eq!(own["name"], format!("{EP}-port"));
    }

    fn cached_endpoint(active_seen: Option<Instant>) -> EndpointInfo {
        EndpointInfo {
            port: port(&["compute:kuryr"], "x"),
            plugged: Plugged {
                host_ifname: "tapp1".into(),
                container_ifname: "t_cp1".into(),
                vif_type: "ovs".into(),
            },
            subnets: Vec::new(),
            exposed_sg: None,
            active_seen,
        }
    }

    /// Right after CreateEndpoint saw ACTIVE, EndpointOperInfo answers
    /// without a call; later it reports Neutron's status (admin down, say).
    #[tokio::test]
    async fn endpoint_oper_info_reports_neutrons_status() {
        let fake = FakeNeutron::start().await;
        fake.on(
            "GET",
            "/v2.0/ports/p1",
            200,
            json!({"port": {"id": "p1", "status": "DOWN"}}),
        );
        let driver = fake.driver().await;
        driver
            .cache()
            .endpoints
            .insert(EP.into(), cached_endpoint(Some(Instant::now())));
        let fresh = driver.endpoint_oper_info_impl(NET, EP).await.expect("ok");
        assert_eq!(fresh.value["status"], "ACTIVE");
        assert_eq!(fresh.value["port_id"], "p1");
        assert!(fake.calls().is_empty());

        let long_ago = Instant::now().checked_sub(ACTIVE_SEEN_FRESH + Duration::from_secs(1));
        driver
            .cache()
            .endpoints
            .insert(EP.into(), cached_endpoint(long_ago));
        let later = driver.endpoint_oper_info_impl(NET, EP).await.expect("ok");
        assert_eq!(later.value["status"], "DOWN");
        assert_eq!(fake.lines(), vec!["GET /v2.0/ports/p1"]);
    }

    /// Join's routes come from the subnets as Neutron has them now, not as
    /// they were when the network was created.
    #[tokio::test]
    async fn endpoint_subnets_are_read_fresh() {
        let fake = FakeNeutron::start().await;
        fake.on(
            "GET",
            "/v2.0/subnets",
            200,
            json!({"subnets": [
                {"id": "s1", "network_id": "n1", "cidr": "10.1.2.0/24", "gateway_ip": "10.1.2.1",
                 "host_routes": [{"destination": "192.0.2.0/24", "nexthop": "10.1.2.254"}]},
                {"id": "s2", "network_id": "n1", "cidr": "10.1.3.0/24"}
            ]}),
        );
        let driver = fake.driver().await;
        let stale = vec![Subnet {
            id: "s1".into(),
            ..Subnet::default()
        }];
        let subnets = driver.port_subnets("n1", &port(&[], "x"), &stale).await;
        assert_eq!(subnets.len(), 1, "only the port's subnet");
        assert_eq!(
            subnets[0].host_routes,
            vec![HostRoute {
                destination: "192.0.2.0/24".into(),
                nexthop: "10.1.2.254".parse().expect("ip"),
            }]
        );
        assert!(fake.calls()[0].query.contains("network_id=n1"));

        // Neutron failing: the cached subnets, not an error.
        let broken = FakeNeutron::start().await;
        let driver = broken.driver().await;
        let subnets = driver.port_subnets("n1", &port(&[], "x"), &stale).await;
        assert_eq!(subnets, stale);
    }
}
