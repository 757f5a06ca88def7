//! The Neutron-backed [`CniHandler`] of `kuryr daemon`: one Neutron port
//! per CNI attachment `(container id, ifname)`, plugged into the
//! container's netns (docs/cni.md § Mapping to Neutron).

mod check;
mod errors;
#[cfg(test)]
mod fake_tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::proto::{AttachmentRequest, GcRequest, StatusRequest};
use crate::spec::{Interface, IpConfig, Route};
use crate::{AddResult, CniError, CniHandler};
use kuryr_core::binding::{Binder, NetnsPlugged, NetnsTarget, PlugRequest, OWNER_KEY};
use kuryr_core::naming::{self, cni as tags, DEVICE_OWNER};
use kuryr_core::vif_pool::{PoolKey, PoolSettings, PooledPort, PortPool};
use netplumb::{IpNet, MacAddr, Netns, RouteSpec};
use openstack::neutron::{
    FixedIpRequest, Neutron, Port, PortCreate, PortUpdate, Query, Resource, Subnet,
};
use tracing::{debug, info, info_span, warn, Instrument};

/// When the Neutron status poll starts, racing the local ovn-installed
/// signal (as in the Docker path).
const NEUTRON_POLL_DELAY: Duration = Duration::from_secs(2);

/// What the handler needs to know about this host.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `binding:host_id` of the ports.
    pub host: String,
    /// How long ADD waits for the port to become ACTIVE.
    pub active_timeout: Duration,
    /// Whether a port that is not ACTIVE in time fails the ADD.
    pub active_is_fatal: bool,
    /// `[vif_pool]` (min 0: no pools).
    pub pool: PoolSettings,
    /// Tag marking this daemon's pool ports ([`naming::pool_owner_tag`]).
    pub pool_owner_tag: String,
}

#[derive(Debug, Clone)]
struct NetworkRef {
    id: String,
    mtu: Option<u32>,
}

/// The handler: Neutron client, binder and lookup caches.
pub struct NeutronCni {
    neutron: Neutron,
    binder: Binder,
    settings: Settings,
    /// Network name or id -> network; names rarely change, and a port
    /// POST on a deleted network drops the entry.
    networks: Mutex<HashMap<String, NetworkRef>>,
    /// `subnet:<net>:<ref>` / `sg:<project>:<ref>` -> id.
    ids: Mutex<HashMap<String, String>>,
    /// One call at a time per attachment: a DEL sent while its ADD still
    /// runs (a runtime that timed out) waits, then finds the port.
    attachments: Mutex<HashMap<(String, String), AttachmentLock>>,
    /// Pre-plugged ports (docs/cni.md § Port pools).
    pool: Arc<PortPool>,
}

type AttachmentLock = Arc<tokio::sync::Mutex<()>>;

/// The addresses, routes and DNS of a port, from its subnets.
#[derive(Debug, Default)]
struct Layout {
    addresses: Vec<(IpNet, Option<IpAddr>)>,
    routes: Vec<RouteSpec>,
    nameservers: Vec<String>,
}

impl NeutronCni {
    /// A handler using this Neutron client and binder.
    pub fn new(neutron: Neutron, binder: Binder, settings: Settings) -> Self {
        let pool = PortPool::new(
            neutron.clone(),
            binder.clone(),
            kuryr_core::vif_pool::ready_timeout(settings.active_timeout),
            settings.pool_owner_tag.clone(),
        );
        NeutronCni {
            pool,
            neutron,
            binder,
            settings,
            networks: Mutex::new(HashMap::new()),
            ids: Mutex::new(HashMap::new()),
            attachments: Mutex::new(HashMap::new()),
        }
    }

    async fn serialize(&self, req: &AttachmentRequest) -> tokio::sync::OwnedMutexGuard<()> {
        let slot = {
            let mut map = lock(&self.attachments);
            // Entries nobody holds or waits for are dropped.
            map.retain(|_, m| Arc::strong_count(m) > 1);
            map.entry((req.container_id.clone(), req.ifname.clone()))
                .or_default()
                .clone()
        };
        slot.lock_owned().await
    }

    async fn add_attachment(&self, req: &AttachmentRequest) -> Result<AddResult, CniError> {
        let netns_path = req
            .netns
            .as_deref()
            .ok_or_else(|| CniError::invalid_env("CNI_NETNS is required for ADD"))?;
        let netns = Netns::from_path(netns_path)
            .map_err(|e| CniError::invalid_env(format!("CNI_NETNS={netns_path}: {e}")))?;
        if req.container_id.len() > tags::MAX_CONTAINER_ID {
            return Err(CniError::invalid_env(format!(
                "CNI_CONTAINERID is {} characters long; kuryr-cni supports up to {}",
                req.container_id.len(),
                tags::MAX_CONTAINER_ID
            )));
        }
        let network = self.network_for(req).await?;
        if let Some(result) = self
            .add_from_pool(req, &network, &netns, netns_path)
            .await?
        {
            return Ok(result);
        }
        let body = self.port_body(req, &network).await?;
        let subnets_query = Query::new().network_id(&network.id);
        let (port, subnets) = tokio::join!(
            self.neutron.create_port(&body),
            self.neutron.list_subnets(&subnets_query)
        );
        let port = match port {
            Ok(port) => port,
            Err(err) => {
                if err.is_not_found() {
                    // Deleted (maybe re-created under the same name) since
                    // it was cached: the retry looks it up again.
                    self.forget_network(&network.id);
                    return Err(CniError::try_again_later(format!(
                        "network {} is gone: {err}",
                        network.id
                    )));
                }
                return Err(errors::neutron("creating the Neutron port", &err));
            }
        };
        info!(port_id = %port.id, network_id = %network.id, "port created");
        match self
            .bind_port(req, &port, &network, netns, subnets, netns_path)
            .await
        {
            Ok(result) => Ok(result),
            Err(err) => {
                self.discard(&port.id).await;
                Err(err)
            }
        }
    }

    async fn bind_port(
        &self,
        req: &AttachmentRequest,
        port: &Port,
        network: &NetworkRef,
        netns: Netns,
        subnets: openstack::Result<Vec<Subnet>>,
        netns_path: &str,
    ) -> Result<AddResult, CniError> {
        let subnets = subnets.map_err(|e| errors::neutron("listing the subnets", &e))?;
        let layout = layout_of(port, &subnets)?;
        let mac: MacAddr = port.mac_address.parse().map_err(|e| {
            CniError::internal(format!(
                "port {} has MAC {:?}: {e}",
                port.id, port.mac_address
            ))
        })?;
        let plug = PlugRequest {
            port_id: port.id.to_string(),
            network_id: network.id.clone(),
            mac,
            mtu: network.mtu,
            vif_type: port.binding_vif_type.clone(),
            owner_id: req.container_id.clone(),
            fixed_ips: port.fixed_ips.iter().map(|f| f.ip_address).collect(),
        };
        let target = NetnsTarget {
            netns,
            ifname: req.ifname.clone(),
            addresses: layout.addresses.iter().map(|(a, _)| *a).collect(),
            routes: layout.routes.clone(),
            external_ids: tags::ovs_external_ids(
                req.config.name.as_deref().unwrap_or_default(),
                &req.ifname,
            ),
        };
        let plugged = self
            .binder
            .plug_into_netns(&plug, &target)
            .await
            .map_err(|e| errors::bind(&e))?;
        match self
            .binder
            .wait_active(
                &self.neutron,
                &port.id,
                &plugged.plugged,
                self.settings.active_timeout,
                NEUTRON_POLL_DELAY,
            )
            .await
        {
            Ok(via) => debug!(port_id = %port.id, ?via, "port ACTIVE"),
            Err(err) if self.settings.active_is_fatal => return Err(errors::bind(&err)),
            Err(err) => warn!(port_id = %port.id, %err, "port not ACTIVE; continuing"),
        }
        self.binder.announce(&port.id, mac, &target).await;
        Ok(add_result(
            req,
            &plugged,
            &mac.to_string(),
            network.mtu,
            layout,
            netns_path,
        ))
    }

    /// ADD from a ready pool port, when pools are on and the request asks
    /// for nothing a pool port lacks (security groups, project): one GET
    /// (the subnets), then local work only; the port's owner reaches
    /// Neutron after the reply. `None`: not served from a pool.
    async fn add_from_pool(
        &self,
        req: &AttachmentRequest,
        network: &NetworkRef,
        netns: &Netns,
        netns_path: &str,
    ) -> Result<Option<AddResult>, CniError> {
        let conf = req.config.neutron.clone().unwrap_or_default();
        if !self.settings.pool.enabled()
            || !self.binder.binds_host()
            || conf.security_groups.is_some()
            || conf.project.is_some()
        {
            return Ok(None);
        }
        let subnets = self
            .neutron
            .list_subnets(&Query::new().network_id(&network.id))
            .await
            .map_err(|e| errors::neutron("listing the subnets", &e))?;
        let subnet = match &conf.subnet {
            Some(reference) => {
                let id = self.subnet_id(&network.id, reference).await?;
                subnets.iter().find(|s| s.id == id)
            }
            // A pool port has one address: single-subnet networks only.
            None if subnets.len() == 1 => subnets.first(),
            None => None,
        };
        let Some(subnet) = subnet else {
            return Ok(None);
        };
        let key = PoolKey::new(
            network.id.clone(),
            subnet.id.clone(),
            self.settings.host.clone(),
            Vec::new(),
            String::new(),
        );
        if self.pool.settings(&key).is_none() {
            self.pool.configure(&key, self.settings.pool, network.mtu);
        }
        let Some(pooled) = self.pool.take(&key) else {
            return Ok(None);
        };
        match self
            .claim_pooled(req, network, netns, netns_path, &subnets, &pooled)
            .await
        {
            Ok(result) => Ok(Some(result)),
            Err(err) => {
                self.pool.discard(&pooled.port.id).await;
                Err(err)
            }
        }
    }

    async fn claim_pooled(
        &self,
        req: &AttachmentRequest,
        network: &NetworkRef,
        netns: &Netns,
        netns_path: &str,
        subnets: &[Subnet],
        pooled: &PooledPort,
    ) -> Result<AddResult, CniError> {
        let port = &pooled.port;
        let layout = layout_of(port, subnets)?;
        let cni_network = req.config.name.as_deref().unwrap_or_default();
        let mut ids = tags::ovs_external_ids(cni_network, &req.ifname);
        ids.insert(OWNER_KEY.to_string(), req.container_id.clone());
        self.binder
            .switch()
            .update_interface_external_ids(
                &pooled.plugged.host_ifname,
                &ids,
                &[naming::OVS_POOL_KEY],
            )
            .await
            .map_err(|e| errors::plumbing("claiming the pool port in OVSDB", &e))?;
        let target = NetnsTarget {
            netns: netns.clone(),
            ifname: req.ifname.clone(),
            addresses: layout.addresses.iter().map(|(a, _)| *a).collect(),
            routes: layout.routes.clone(),
            external_ids: Default::default(),
        };
        let plugged = self
            .binder
            .adopt_into_netns(&port.id, &pooled.plugged, &target)
            .await
            .map_err(|e| errors::bind(&e))?;
        info!(port_id = %port.id, network_id = %network.id, "pool port taken");
        // A pool port is ACTIVE already.
        if let Ok(mac) = port.mac_address.parse() {
            self.binder.announce(&port.id, mac, &target).await;
        }
        let owner = PortOwner {
            name: tags::port_name(&req.container_id, &req.ifname),
            device_id: req.container_id.clone(),
            tags: tags::port_tags(&req.container_id, &req.ifname, cni_network),
        };
        tokio::spawn(record_owner(
            self.neutron.clone(),
            port.id.to_string(),
            owner,
        ));
        Ok(add_result(
            req,
            &plugged,
            &port.mac_address,
            network.mtu,
            layout,
            netns_path,
        ))
    }

    /// At start: re-adopts this host's ready CNI pool ports, then records
    /// the owner of any pool port a crash left claimed in OVSDB only.
    pub async fn recover_pools(&self) {
        self.pool
            .recover(&self.settings.host, self.settings.pool)
            .await;
        let found = match self
            .binder
            .switch()
            .find_interfaces(tags::OVS_IFNAME_KEY, None)
            .await
        {
            Ok(found) => found,
            Err(err) => {
                warn!(%err, "reading OVSDB at start");
                return;
            }
        };
        let claimed: HashMap<String, (String, String, String)> = found
            .into_iter()
            .filter_map(|i| {
                let ids = i.external_ids;
                Some((
                    ids.get("iface-id")?.clone(),
                    (
                        ids.get(OWNER_KEY)?.clone(),
                        ids.get(tags::OVS_IFNAME_KEY)?.clone(),
                        ids.get(tags::OVS_NETWORK_KEY).cloned().unwrap_or_default(),
                    ),
                ))
            })
            .collect();
        if claimed.is_empty() {
            return;
        }
        let query = Query::new()
            .binding_host_id(&self.settings.host)
            .name(naming::POOL_PORT_NAME)
            .tags([self.settings.pool_owner_tag.as_str()]);
        let ports = match self.neutron.list_ports(&query).await {
            Ok(ports) => ports,
            Err(err) => {
                warn!(%err, "listing pool ports at start");
                return;
            }
        };
        for port in ports {
            if let Some((cid, ifname, net)) = claimed.get(port.id.as_str()) {
                info!(port_id = %port.id, container_id = %cid, "recording the owner a crash left out");
                let owner = PortOwner {
                    name: tags::port_name(cid, ifname),
                    device_id: cid.clone(),
                    tags: tags::port_tags(cid, ifname, net),
                };
                record_owner(self.neutron.clone(), port.id.into_string(), owner).await;
            }
        }
    }

    /// The port of an attachment through OVSDB alone (`vm-uuid` and
    /// `kuryr-cni-ifname`): a pool port whose owner is not in Neutron yet.
    async fn port_in_ovsdb(&self, container_id: &str, ifname: &str) -> Option<String> {
        if !self.binder.binds_host() {
            return None;
        }
        let found = self
            .binder
            .switch()
            .find_interfaces(OWNER_KEY, Some(container_id))
            .await
            .ok()?;
        found.into_iter().find_map(|i| {
            (i.external_ids.get(tags::OVS_IFNAME_KEY).map(String::as_str) == Some(ifname))
                .then(|| i.external_ids.get("iface-id").cloned())
                .flatten()
        })
    }

    async fn port_body(
        &self,
        req: &AttachmentRequest,
        network: &NetworkRef,
    ) -> Result<PortCreate, CniError> {
        let conf = req.config.neutron.clone().unwrap_or_default();
        let fixed_ips = match &conf.subnet {
            Some(subnet) => Some(vec![FixedIpRequest {
                subnet_id: Some(self.subnet_id(&network.id, subnet).await?.into()),
                ip_address: None,
            }]),
            None => None,
        };
        let security_groups = match &conf.security_groups {
            Some(groups) => {
                let mut ids = Vec::with_capacity(groups.len());
                for group in groups {
                    ids.push(
                        self.security_group_id(group, conf.project.as_deref())
                            .await?
                            .into(),
                    );
                }
                Some(ids)
            }
            None => None,
        };
        let cni_network = req.config.name.as_deref().unwrap_or_default();
        Ok(PortCreate {
            name: Some(tags::port_name(&req.container_id, &req.ifname)),
            device_owner: Some(DEVICE_OWNER.to_string()),
            device_id: Some(req.container_id.clone()),
            // Nested (in a VM): the port stays unbound (docs/nested.md).
            binding_host_id: self.binder.binds_host().then(|| self.settings.host.clone()),
            admin_state_up: Some(true),
            tags: Some(tags::port_tags(&req.container_id, &req.ifname, cni_network)),
            fixed_ips,
            security_groups,
            project_id: conf.project.clone().map(Into::into),
            ..PortCreate::new(&network.id)
        })
    }

    /// The network named by `neutron.namespace_networks[<K8S_POD_NAMESPACE>]`,
    /// else by `neutron.network`.
    async fn network_for(&self, req: &AttachmentRequest) -> Result<NetworkRef, CniError> {
        let conf = req.config.neutron.clone().unwrap_or_default();
        let by_namespace = req.args.k8s_pod_namespace().and_then(|ns| {
            conf.namespace_networks
                .as_ref()
                .and_then(|map| map.get(ns))
                .map(|net| (format!("neutron.namespace_networks[{ns:?}]"), net.clone()))
        });
        let (key, reference) = match by_namespace {
            Some(found) => found,
            None => match conf.network {
                Some(net) => ("neutron.network".to_string(), net),
                None => {
                    return Err(CniError::invalid_config(
                        "no Neutron network: set neutron.network (or map the pod's namespace in neutron.namespace_networks)",
                    ))
                }
            },
        };
        self.resolve_network(&key, &reference).await
    }

    async fn resolve_network(&self, key: &str, reference: &str) -> Result<NetworkRef, CniError> {
        if let Some(found) = lock(&self.networks).get(reference) {
            return Ok(found.clone());
        }
        let query = Query::new().fields(["id", "name", "mtu"]);
        let query = if looks_like_uuid(reference) {
            query.id(reference)
        } else {
            query.name(reference)
        };
        let found = self
            .neutron
            .list_networks(&query)
            .await
            .map_err(|e| errors::neutron(&format!("looking up {key} = {reference:?}"), &e))?;
        let network = match found.as_slice() {
            [one] => NetworkRef {
                id: one.id.to_string(),
                mtu: one.mtu,
            },
            [] => {
                return Err(CniError::invalid_config(format!(
                    "{key} = {reference:?}: no Neutron network with that name or id"
                )))
            }
            many => {
                let ids: Vec<&str> = many.iter().map(|n| n.id.as_str()).collect();
                return Err(CniError::invalid_config(format!(
                    "{key} = {reference:?}: {} Neutron networks have that name ({}); use the id",
                    many.len(),
                    ids.join(", ")
                )));
            }
        };
        lock(&self.networks).insert(reference.to_string(), network.clone());
        Ok(network)
    }

    fn forget_network(&self, network_id: &str) {
        lock(&self.networks).retain(|_, net| net.id != network_id);
    }

    async fn subnet_id(&self, network_id: &str, reference: &str) -> Result<String, CniError> {
        let cache_key = format!("subnet:{network_id}:{reference}");
        if let Some(id) = lock(&self.ids).get(&cache_key) {
            return Ok(id.clone());
        }
        let query = Query::new().network_id(network_id).fields(["id"]);
        let query = if looks_like_uuid(reference) {
            query.id(reference)
        } else {
            query.name(reference)
        };
        let found = self.neutron.list_subnets(&query).await.map_err(|e| {
            errors::neutron(&format!("looking up neutron.subnet = {reference:?}"), &e)
        })?;
        let id = match found.as_slice() {
            [one] => one.id.to_string(),
            [] => {
                return Err(CniError::invalid_config(format!(
                    "neutron.subnet = {reference:?}: no subnet with that name or id on network {network_id}"
                )))
            }
            _ => {
                return Err(CniError::invalid_config(format!(
                    "neutron.subnet = {reference:?}: several subnets of network {network_id} have that name; use the id"
                )))
            }
        };
        lock(&self.ids).insert(cache_key, id.clone());
        Ok(id)
    }

    async fn security_group_id(
        &self,
        reference: &str,
        project: Option<&str>,
    ) -> Result<String, CniError> {
        if looks_like_uuid(reference) {
            return Ok(reference.to_string());
        }
        let cache_key = format!("sg:{}:{reference}", project.unwrap_or_default());
        if let Some(id) = lock(&self.ids).get(&cache_key) {
            return Ok(id.clone());
        }
        let mut query = Query::new().name(reference).fields(["id"]);
        if let Some(project) = project {
            query = query.project_id(project);
        }
        let found = self
            .neutron
            .list_security_groups(&query)
            .await
            .map_err(|e| {
                errors::neutron(
                    &format!("looking up neutron.security_groups entry {reference:?}"),
                    &e,
                )
            })?;
        let id = match found.as_slice() {
            [one] => one.id.to_string(),
            [] => {
                return Err(CniError::invalid_config(format!(
                    "neutron.security_groups: no security group named {reference:?}"
                )))
            }
            _ => {
                return Err(CniError::invalid_config(format!(
                    "neutron.security_groups: several security groups are named {reference:?}; use the id or set neutron.project"
                )))
            }
        };
        lock(&self.ids).insert(cache_key, id.clone());
        Ok(id)
    }

    /// The ports of one attachment on this host, found by Neutron alone
    /// (works after a daemon restart).
    async fn ports_of(&self, container_id: &str, ifname: &str) -> Result<Vec<Port>, CniError> {
        let query = Query::new()
            .device_owner(DEVICE_OWNER)
            .device_id(container_id)
            .tags([tags::ifname_tag(ifname)]);
        // Nested ports are unbound; the container id alone finds them.
        let query = if self.binder.binds_host() {
            query.binding_host_id(&self.settings.host)
        } else {
            query
        };
        self.neutron
            .list_ports(&query)
            .await
            .map_err(|e| errors::neutron("looking up the attachment's port", &e))
    }

    /// Unplugs and deletes a port; a port already gone is fine.
    async fn remove(&self, port_id: &str) -> Result<(), CniError> {
        self.binder
            .unplug(port_id)
            .await
            .map_err(|e| errors::bind(&e))?;
        match self.neutron.delete_port(port_id).await {
            Ok(()) => Ok(()),
            Err(err) if err.is_not_found() => Ok(()),
            Err(err) => Err(errors::neutron(&format!("deleting port {port_id}"), &err)),
        }
    }

    /// Best-effort undo on a failed ADD.
    async fn discard(&self, port_id: &str) {
        if let Err(err) = self.remove(port_id).await {
            warn!(port_id, %err, "undoing a failed ADD");
        }
    }

    async fn del_attachment(&self, req: &AttachmentRequest) -> Result<(), CniError> {
        let ports = self.ports_of(&req.container_id, &req.ifname).await?;
        if ports.is_empty() {
            if let Some(port_id) = self.port_in_ovsdb(&req.container_id, &req.ifname).await {
                self.remove(&port_id).await?;
                info!(port_id, "pool port removed");
                return Ok(());
            }
            debug!("DEL: nothing to remove");
        }
        for port in &ports {
            self.remove(&port.id).await?;
            info!(port_id = %port.id, "port removed");
        }
        Ok(())
    }

    async fn garbage_collect(&self, req: &GcRequest) -> Result<(), CniError> {
        let cni_network = req.config.name.as_deref().unwrap_or_default();
        let query = Query::new()
            .device_owner(DEVICE_OWNER)
            .binding_host_id(&self.settings.host)
            .tags([tags::network_tag(cni_network)]);
        let ports = self
            .neutron
            .list_ports(&query)
            .await
            .map_err(|e| errors::neutron("listing this host's CNI ports", &e))?;
        let valid: HashSet<(&str, &str)> = req
            .valid_attachments
            .iter()
            .map(|a| (a.container_id.as_str(), a.ifname.as_str()))
            .collect();
        let mut first_error = None;
        for port in &ports {
            let Some((container_id, ifname)) = tags::attachment_of(&port.tags) else {
                continue;
            };
            if valid.contains(&(container_id.as_str(), ifname.as_str())) {
                continue;
            }
            match self.remove(&port.id).await {
                Ok(()) => {
                    info!(port_id = %port.id, container_id, ifname, "GC: removed stale attachment")
                }
                Err(err) => {
                    warn!(port_id = %port.id, container_id, %err, "GC: could not remove");
                    first_error.get_or_insert(err);
                }
            }
        }
        self.collect_host_leftovers(cni_network, &valid, &mut first_error)
            .await;
        first_error.map_or(Ok(()), Err)
    }

    /// Host ends (OVS port + veth) of this CNI network whose attachment is
    /// not valid, also when their Neutron port was deleted behind Kuryr's
    /// back: found by the OVS interface's `external_ids`.
    async fn collect_host_leftovers(
        &self,
        cni_network: &str,
        valid: &HashSet<(&str, &str)>,
        first_error: &mut Option<CniError>,
    ) {
        if !self.binder.binds_host() {
            // Nested: no OVS in the VM; the links went with their netns.
            return;
        }
        let found = match self
            .binder
            .switch()
            .find_interfaces(tags::OVS_NETWORK_KEY, Some(cni_network))
            .await
        {
            Ok(found) => found,
            Err(err) => {
                first_error.get_or_insert(errors::plumbing("listing OVS interfaces", &err));
                return;
            }
        };
        for iface in found {
            let ids = &iface.external_ids;
            let container_id = ids.get(OWNER_KEY).map(String::as_str).unwrap_or_default();
            let ifname = ids
                .get(tags::OVS_IFNAME_KEY)
                .map(String::as_str)
                .unwrap_or_default();
            let Some(port_id) = ids.get("iface-id") else {
                continue;
            };
            if valid.contains(&(container_id, ifname)) {
                continue;
            }
            match self.binder.unplug(port_id).await {
                Ok(()) => info!(port_id, container_id, ifname, "GC: removed stale host side"),
                Err(err) => {
                    warn!(port_id, container_id, %err, "GC: could not unplug");
                    first_error.get_or_insert(errors::bind(&err));
                }
            }
        }
    }
}

/// The CNI result of an attachment (chained after `prevResult`, if any).
fn add_result(
    req: &AttachmentRequest,
    plugged: &NetnsPlugged,
    mac: &str,
    network_mtu: Option<u32>,
    layout: Layout,
    netns_path: &str,
) -> AddResult {
    let mut interfaces = vec![
        Interface {
            name: plugged.plugged.host_ifname.clone(),
            mac: plugged.host_mac.map(|m| m.to_string()),
            mtu: network_mtu,
            ..Interface::default()
        },
        Interface {
            name: req.ifname.clone(),
            mac: Some(mac.to_string()),
            mtu: network_mtu,
            sandbox: Some(netns_path.to_string()),
            ..Interface::default()
        },
    ];
    // Nested (macvlan/ipvlan/vlan in a VM): no host end.
    interfaces.retain(|i| !i.name.is_empty());
    let container_index = u32::from(interfaces.len() > 1);
    let ours = AddResult {
        cni_version: None,
        interfaces,
        ips: layout
            .addresses
            .iter()
            .map(|(addr, gw)| IpConfig::new(*addr, *gw, Some(container_index)))
            .collect(),
        routes: layout
            .routes
            .iter()
            .map(|r| Route::new(r.dest, r.gateway))
            .collect(),
        dns: crate::spec::Dns {
            nameservers: layout.nameservers,
            ..Default::default()
        },
    };
    match &req.prev_result {
        Some(prev) => {
            let mut chained = prev.clone();
            chained.append(ours);
            chained
        }
        None => ours,
    }
}

/// What a claimed pool port's Neutron record should say.
struct PortOwner {
    name: String,
    device_id: String,
    tags: Vec<String>,
}

/// Records a claimed pool port's owner after the ADD answered: name and
/// device_id in one PUT, the tags in the other, concurrently. A port
/// deleted meanwhile (a quick DEL) is fine; other failures are logged and
/// repaired at the next start ([`NeutronCni::recover_pools`]).
async fn record_owner(neutron: Neutron, port_id: String, owner: PortOwner) {
    let update = PortUpdate {
        name: Some(owner.name),
        device_id: Some(owner.device_id),
        ..PortUpdate::default()
    };
    let (updated, tagged) = tokio::join!(
        neutron.update_port(&port_id, &update),
        neutron.replace_tags(Resource::Ports, &port_id, &owner.tags)
    );
    for err in [updated.err(), tagged.err()].into_iter().flatten() {
        if !err.is_not_found() {
            warn!(port_id, %err, "recording the pool port's owner failed; retried at the next start");
        }
    }
}

/// Addresses (with prefix and gateway), routes (a default route per family
/// via the first gateway, then every subnet's host_routes) and DNS servers
/// of a port, from its network's subnets.
fn layout_of(port: &Port, subnets: &[Subnet]) -> Result<Layout, CniError> {
    let mut layout = Layout::default();
    let mut defaults = BTreeSet::new();
    let mut extra_routes = Vec::new();
    for fixed in &port.fixed_ips {
        let subnet = subnets
            .iter()
            .find(|s| s.id == fixed.subnet_id)
            .ok_or_else(|| {
                CniError::try_again_later(format!(
                    "subnet {} of port {} is gone",
                    fixed.subnet_id, port.id
                ))
            })?;
        let cidr: IpNet = subnet.cidr.parse().map_err(|e| {
            CniError::internal(format!(
                "subnet {} has cidr {:?}: {e}",
                subnet.id, subnet.cidr
            ))
        })?;
        let address = IpNet::new(fixed.ip_address, cidr.prefix_len())
            .map_err(|e| CniError::internal(format!("address {}: {e}", fixed.ip_address)))?;
        layout.addresses.push((address, subnet.gateway_ip));
        if let Some(gw) = subnet.gateway_ip {
            if defaults.insert(gw.is_ipv4()) {
                let mut route = RouteSpec::default_via(gw);
                if !cidr.contains(&gw) {
                    route = route.onlink();
                }
                layout.routes.push(route);
            }
        }
        for hr in &subnet.host_routes {
            let dest: IpNet = hr.destination.parse().map_err(|e| {
                CniError::internal(format!(
                    "subnet {} host route {:?}: {e}",
                    subnet.id, hr.destination
                ))
            })?;
            let route = RouteSpec::new(dest.trunc()).via(hr.nexthop);
            if !extra_routes.contains(&route) {
                extra_routes.push(route);
            }
        }
        for ns in &subnet.dns_nameservers {
            if !layout.nameservers.contains(ns) {
                layout.nameservers.push(ns.clone());
            }
        }
    }
    // A host route that is itself a default route replaces ours.
    for route in extra_routes {
        if route.dest.prefix_len() == 0 {
            layout.routes.retain(|r| {
                r.dest.prefix_len() != 0 || r.dest.addr().is_ipv4() != route.dest.addr().is_ipv4()
            });
        }
        layout.routes.push(route);
    }
    Ok(layout)
}

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a cache lock leaves a usable map.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl CniHandler for NeutronCni {
    async fn add(&self, req: AttachmentRequest) -> Result<AddResult, CniError> {
        let span = info_span!("cni_add", container_id = %req.container_id, ifname = %req.ifname);
        let _serial = self.serialize(&req).await;
        self.add_attachment(&req).instrument(span).await
    }

    async fn del(&self, req: AttachmentRequest) -> Result<(), CniError> {
        let span = info_span!("cni_del", container_id = %req.container_id, ifname = %req.ifname);
        let _serial = self.serialize(&req).await;
        self.del_attachment(&req).instrument(span).await
    }

    async fn check(&self, req: AttachmentRequest) -> Result<(), CniError> {
        let span = info_span!("cni_check", container_id = %req.container_id, ifname = %req.ifname);
        let _serial = self.serialize(&req).await;
        check::check(self, &req).instrument(span).await
    }

    async fn gc(&self, req: GcRequest) -> Result<(), CniError> {
        let span = info_span!("cni_gc", valid = req.valid_attachments.len());
        self.garbage_collect(&req).instrument(span).await
    }

    async fn status(&self, _req: StatusRequest) -> Result<(), CniError> {
        self.neutron
            .list_extensions()
            .await
            .map(|_| ())
            .map_err(|err| {
                CniError::plugin_not_available(format!("Neutron is not answering: {err}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openstack::neutron::{FixedIp, HostRoute};

    fn subnet(id: &str, cidr: &str, gw: Option<&str>) -> Subnet {
        serde_json::from_value(serde_json::json!({
            "id": id, "network_id": "n", "cidr": cidr,
            "gateway_ip": gw, "dns_nameservers": ["10.0.0.53"],
        }))
        .expect("subnet")
    }

    #[test]
    fn layout_has_default_and_host_routes() {
        let mut v4 = subnet("s4", "10.1.0.0/24", Some("10.1.0.1"));
        v4.host_routes = vec![HostRoute {
            destination: "192.168.0.0/16".into(),
            nexthop: "10.1.0.254".parse().expect("ip"),
        }];
        let v6 = subnet("s6", "fd00::/64", Some("fd00::1"));
        let mut port: Port = serde_json::from_value(serde_json::json!({
            "id": "p", "network_id": "n", "mac_address": "fa:16:3e:00:00:01"
        }))
        .expect("port");
        port.fixed_ips = vec![
            FixedIp {
                subnet_id: "s4".into(),
                ip_address: "10.1.0.5".parse().expect("ip"),
            },
            FixedIp {
                subnet_id: "s6".into(),
                ip_address: "fd00::5".parse().expect("ip"),
            },
        ];
        let layout = layout_of(&port, &[v4, v6]).expect("layout");
        let addrs: Vec<String> = layout
            .addresses
            .iter()
            .map(|(a, _)| a.to_string())
            .collect();
        assert_eq!(addrs, ["10.1.0.5/24", "fd00::5/64"]);
        let routes: Vec<String> = layout.routes.iter().map(|r| r.to_string()).collect();
        assert_eq!(routes.len(), 3, "{routes:?}");
        assert_eq!(layout.nameservers, ["10.0.0.53"]);
        assert!(layout_of(&port, &[]).is_err());
    }

    #[test]
    fn uuid_shape() {
        assert!(looks_like_uuid("0f0e0d0c-aaaa-bbbb-cccc-000000000001"));
        assert!(!looks_like_uuid("pods"));
        assert!(!looks_like_uuid("0f0e0d0c-aaaa-bbbb-cccc-00000000000g"));
    }
}
