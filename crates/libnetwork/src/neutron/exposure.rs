//! Docker's exposed ports (`-p`): ProgramExternalConnectivity opens them in
//! a security group of the endpoint's own (`<port id>-exposed_ports`),
//! RevokeExternalConnectivity removes it (docs/mapping.md).

use super::{neutron_error, KuryrDriver};
use crate::api::DriverResult;
use crate::api::ExternalConnectivity;
use crate::wire::ProgramExternalConnectivityRequest;
use crate::wire::RevokeExternalConnectivityRequest;
use kuryr_core::{ipmath, naming};
use openstack::neutron::{
    Port, PortUpdate, Query, SecurityGroupCreate, SecurityGroupId, SecurityGroupRuleCreate,
};
use std::collections::BTreeMap;
use tracing::{info, warn};

impl KuryrDriver {
    pub(super) async fn fill_and_attach(
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
            let ethertype = if fixed.ip_address.is_ipv4() { "IPv4" } else { "IPv6" };
            if !ethertypes.contains(&ethertype) {
                ethertypes.push(ethertype);
            }
        }
        for (proto, ports) in by_proto {
            for (min, max) in ipmath::merge_port_ranges(ports) {
                for ethertype in &ethertypes {
                    let rule = SecurityGroupRuleCreate {
                        security_group_id: sg_id.into(),
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
        groups.push(sg_id.into());
        self.set_security_groups(&port.id, groups)
            .await
            .map_err(|e| neutron_error("attaching the exposed-ports security group", e))?;
        Ok(())
    }

    /// Replaces a port's security groups (one PUT).
    async fn set_security_groups(
        &self,
        port_id: &str,
        groups: Vec<SecurityGroupId>,
    ) -> openstack::Result<()> {
        let update = PortUpdate { security_groups: Some(groups), ..PortUpdate::default() };
        self.neutron.update_port(port_id, &update).await.map(|_| ())
    }
}

impl ExternalConnectivity for KuryrDriver {
    async fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> DriverResult<()> {
        self.announce_endpoint(&req.endpoint_id).await;
        if !self.settings.process_external_connectivity || req.options.exposed_ports.is_empty() {
            return Ok(());
        }
        let info = self.endpoint_info(&req.network_id, &req.endpoint_id).await?;
        let port = &info.port;
        let sg = self
            .neutron
            .create_security_group(&SecurityGroupCreate {
                name: naming::exposed_ports_sg_name(&port.id),
                description: Some(format!("Docker exposed ports of endpoint {}", req.endpoint_id)),
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

    async fn revoke_external_connectivity(
        &self,
        req: RevokeExternalConnectivityRequest,
    ) -> DriverResult<()> {
        let (docker_net, ep) = (req.network_id.as_str(), req.endpoint_id.as_str());
        let cached = self.cache().endpoints.get(ep).map(|i| (i.port.clone(), i.exposed_sg.clone()));
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
        let kept: Vec<SecurityGroupId> =
            port.security_groups.iter().filter(|g| !groups.contains(g)).cloned().collect();
        match self.set_security_groups(&port.id, kept).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(neutron_error("detaching the exposed-ports security group", e)),
        }
        for sg in &groups {
            match self.neutron.delete_security_group(sg).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    return Err(neutron_error("deleting the exposed-ports security group", e))
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
