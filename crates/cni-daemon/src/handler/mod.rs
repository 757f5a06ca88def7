//! The Neutron-backed [`CniHandler`] of `kuryr daemon`: one Neutron port
//! per CNI attachment `(container id, ifname)`, plugged into the
//! container's netns (docs/cni.md § Mapping to Neutron).

mod check;
pub mod errors;
#[cfg(test)]
mod fake_tests;
mod gc;
mod layout;
mod lookup;

pub use check::check_interface;
pub use layout::add_result;
use layout::layout_of;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::attachments::{ports_in_ovsdb, AttachmentLocks, OvsKeys};
use crate::proto::{AttachmentRequest, GcRequest, StatusRequest};
use crate::{AddResult, CniError, CniHandler};
use kuryr_core::binding::{Binder, NetnsTarget, OWNER_KEY};
use kuryr_core::lifecycle::{Lifecycle, LifecycleSettings, Target};
use kuryr_core::naming::{cni as tags, DEVICE_OWNER};
use kuryr_core::owner::{Owner, OwnerKind};
use kuryr_core::vif_pool::{PoolKey, PoolSettings, PooledPort};
use netplumb::Netns;
use openstack::neutron::{FixedIpRequest, Neutron, Port, PortCreate, Query, Subnet};
use tracing::{debug, info, info_span, warn, Instrument};

/// How a standalone attachment's OVS interface names it: `vm-uuid` is the
/// container id, `kuryr-cni-ifname` the ifname.
pub(crate) const OVS_KEYS: OvsKeys =
    OvsKeys { container_id: OWNER_KEY, ifname: tags::OVS_IFNAME_KEY };

/// What the handler needs to know about this host.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The host, the ACTIVE wait and this daemon's pool tag
    /// ([`kuryr_core::naming::pool_owner_tag`]).
    pub lifecycle: LifecycleSettings,
    /// `[vif_pool]` (min 0: no pools).
    pub pool: PoolSettings,
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
    attachments: AttachmentLocks,
    /// Provision and bind, and the pre-plugged ports (docs/cni.md § Port
    /// pools).
    lifecycle: Lifecycle,
}

/// One ADD, resolved: who asks, on which network, into which netns.
struct Add<'a> {
    req: &'a AttachmentRequest,
    owner: Owner,
    network: NetworkRef,
    netns: Netns,
    netns_path: &'a str,
}

impl NeutronCni {
    /// A handler using this Neutron client and binder.
    pub fn new(neutron: Neutron, binder: Binder, settings: Settings) -> Self {
        let lifecycle = Lifecycle::new(neutron.clone(), binder.clone(), settings.lifecycle.clone());
        NeutronCni {
            lifecycle,
            neutron,
            binder,
            settings,
            networks: Mutex::new(HashMap::new()),
            ids: Mutex::new(HashMap::new()),
            attachments: AttachmentLocks::default(),
        }
    }

    async fn serialize(&self, req: &AttachmentRequest) -> tokio::sync::OwnedMutexGuard<()> {
        self.attachments.lock(&req.container_id, &req.ifname).await
    }

    async fn add_attachment(&self, req: &AttachmentRequest) -> Result<AddResult, CniError> {
        let (netns, netns_path) = crate::attachments::netns_of(req)?;
        if req.container_id.len() > tags::MAX_CONTAINER_ID {
            return Err(CniError::invalid_env(format!(
                "CNI_CONTAINERID is {} characters long; kuryr-cni supports up to {}",
                req.container_id.len(),
                tags::MAX_CONTAINER_ID
            )));
        }
        let add = Add {
            req,
            owner: owner_of(req),
            network: self.network_for(req).await?,
            netns,
            netns_path,
        };
        if let Some(result) = self.add_from_pool(&add).await? {
            return Ok(result);
        }
        let body = self.port_body(req, &add.owner, &add.network).await?;
        let subnets_query = Query::new().network_id(&add.network.id);
        let (port, subnets) = tokio::join!(
            self.lifecycle.provision(&body),
            self.neutron.list_subnets(&subnets_query)
        );
        let port = match port {
            Ok(port) => port,
            Err(err) => {
                if err.is_not_found() {
                    // Deleted (maybe re-created under the same name) since
                    // it was cached: the retry looks it up again.
                    self.forget_network(&add.network.id);
                    return Err(CniError::try_again_later(format!(
                        "network {} is gone: {err}",
                        add.network.id
                    )));
                }
                return Err(errors::neutron("creating the Neutron port", &err));
            }
        };
        let bound = match subnets {
            Ok(subnets) => self.bind(&add, &port, &subnets, None).await,
            Err(err) => Err(errors::neutron("listing the subnets", &err)),
        };
        if bound.is_err() {
            // Binding undid itself; provisioning is undone here.
            self.discard(&port.id).await;
        }
        bound
    }

    /// Binds `port` (a taken pool port when `pooled`) into the attachment's
    /// netns with the addresses and routes of its subnets, and answers.
    async fn bind(
        &self,
        add: &Add<'_>,
        port: &Port,
        subnets: &[Subnet],
        pooled: Option<&PooledPort>,
    ) -> Result<AddResult, CniError> {
        let layout = layout_of(port, subnets)?;
        let target = NetnsTarget {
            netns: add.netns.clone(),
            ifname: add.req.ifname.clone(),
            addresses: layout.addresses.iter().map(|(a, _)| *a).collect(),
            routes: layout.routes.clone(),
            external_ids: add.owner.ovs_external_ids(),
        };
        let bound = match pooled {
            None => self
                .lifecycle
                .bind(port, &add.owner, add.network.mtu, Target::Netns(&target))
                .await
                .map_err(|e| errors::bind(&e))?,
            Some(pooled) => {
                let bound = self
                    .lifecycle
                    .bind_pooled(pooled, &add.owner, Target::Netns(&target))
                    .await
                    .map_err(|e| errors::lifecycle(&e))?;
                // Neutron learns the owner after the reply.
                tokio::spawn(self.lifecycle.record_owner(&port.id, add.owner.record(&port.tags)));
                bound
            }
        };
        Ok(add_result(add.req, &bound, &port.mac_address, add.network.mtu, layout, add.netns_path))
    }

    /// ADD from a ready pool port, when pools are on and the request asks
    /// for nothing a pool port lacks (security groups, project): one GET
    /// (the subnets), then local work only; the port's owner reaches
    /// Neutron after the reply. `None`: not served from a pool.
    async fn add_from_pool(&self, add: &Add<'_>) -> Result<Option<AddResult>, CniError> {
        let conf = add.req.config.neutron.clone().unwrap_or_default();
        if !self.settings.pool.enabled()
            || !self.binder.binds_host()
            || conf.security_groups.is_some()
            || conf.project.is_some()
        {
            return Ok(None);
        }
        let network = &add.network;
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
            self.settings.lifecycle.host.clone(),
            Vec::new(),
            String::new(),
        );
        let pool = self.lifecycle.pool();
        if pool.settings(&key).is_none() {
            pool.configure(&key, self.settings.pool, network.mtu);
        }
        let Some(pooled) = pool.take(&key) else {
            return Ok(None);
        };
        let result = self.bind(add, &pooled.port, &subnets, Some(&pooled)).await;
        match result {
            Ok(result) => {
                info!(port_id = %pooled.port.id, network_id = %network.id, "pool port taken");
                Ok(Some(result))
            }
            Err(err) => {
                pool.discard(&pooled.port.id).await;
                Err(err)
            }
        }
    }

    /// At start: re-adopts this host's ready CNI pool ports, then records
    /// the owner of any pool port a crash left claimed in OVSDB only.
    pub async fn recover_pools(&self) {
        self.lifecycle.pool().recover(&self.settings.lifecycle.host, self.settings.pool).await;
        if let Err(err) = self.lifecycle.recover_owners(OwnerKind::CniAttachment).await {
            warn!(%err, "recording owners a crash left out");
        }
    }

    /// The port of an attachment through OVSDB alone (`vm-uuid` and
    /// `kuryr-cni-ifname`): a pool port whose owner is not in Neutron yet.
    async fn port_in_ovsdb(&self, container_id: &str, ifname: &str) -> Option<String> {
        let found = ports_in_ovsdb(&self.binder, OVS_KEYS, container_id, ifname).await.ok()?;
        found.into_iter().next()
    }

    async fn port_body(
        &self,
        req: &AttachmentRequest,
        owner: &Owner,
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
                    ids.push(self.security_group_id(group, conf.project.as_deref()).await?.into());
                }
                Some(ids)
            }
            None => None,
        };
        Ok(PortCreate {
            fixed_ips,
            security_groups,
            project_id: conf.project.clone().map(Into::into),
            ..self.lifecycle.port_create(owner, &network.id)
        })
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
            query.binding_host_id(&self.settings.lifecycle.host)
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
        self.lifecycle.release(port_id).await.map_err(|e| errors::lifecycle(&e))
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
}

/// The owner of an attachment.
fn owner_of(req: &AttachmentRequest) -> Owner {
    Owner::CniAttachment {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
        cni_network: req.config.name.clone().unwrap_or_default(),
    }
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
        self.neutron.list_extensions().await.map(|_| ()).map_err(|err| {
            CniError::plugin_not_available(format!("Neutron is not answering: {err}"))
        })
    }
}
