//! The attachment lifecycle, once for every adapter (docs/architecture.md
//! § The lifecycle): *provision* a port for an [`Owner`] (made in one POST,
//! named and tagged for its kind, or taken from a pool) and its inverse
//! *release*; *bind* that port onto this host and wait until the dataplane
//! is ready, and its inverse *unbind*. Each half undoes itself on failure.
//!
//! The Docker driver provisions in `RequestAddress` and binds in
//! `CreateEndpoint`; the standalone CNI daemon does both in one ADD
//! (and releases the port when binding fails); a Kubernetes node daemon will only bind what
//! the controller provisioned. The adapters translate their wire to these
//! calls and the errors back; none of them plugs, waits or records an
//! owner itself.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use netplumb::MacAddr;
use openstack::neutron::{Neutron, Port, PortCreate, PortUpdate, Query, Resource};
use tracing::{debug, info, warn};

use crate::binding::{
    ActiveVia, BindError, Binder, NetnsTarget, PlugRequest, Plugged, IFACE_ID_KEY,
};
use crate::naming;
use crate::owner::{Owner, OwnerKind, OwnerRecord};
use crate::vif_pool::{PoolError, PooledPort, PortPool};

/// When the Neutron status poll starts, racing the local `ovn-installed`
/// signal: OVN answers in about 0.2 s, so Neutron is asked only when it is
/// slow or absent (another backend).
pub const NEUTRON_POLL_DELAY: Duration = Duration::from_secs(2);

/// How the lifecycle behaves on this host.
#[derive(Debug, Clone)]
pub struct LifecycleSettings {
    /// `binding:host_id` of the ports this host binds.
    pub host: String,
    /// How long binding waits for the port to become ACTIVE
    /// (`[neutron] vif_plugging_timeout`; zero: not waited).
    pub active_timeout: Duration,
    /// Whether a port not ACTIVE in time fails the binding
    /// (`[neutron] vif_plugging_is_fatal`).
    pub active_is_fatal: bool,
    /// This service's pool tag ([`naming::pool_owner_tag`]).
    pub pool_owner_tag: String,
}

impl LifecycleSettings {
    /// `[neutron] vif_plugging_timeout` and `vif_plugging_is_fatal` for a
    /// service on `host` whose pool ports carry `pool_owner_tag`.
    pub fn from_config(
        config: &crate::config::Config,
        host: String,
        pool_owner_tag: String,
    ) -> Self {
        LifecycleSettings {
            host,
            active_timeout: Duration::from_secs(config.neutron.vif_plugging_timeout),
            active_is_fatal: config.neutron.vif_plugging_is_fatal,
            pool_owner_tag,
        }
    }
}

/// Why a lifecycle step outside binding failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// A Neutron call failed.
    #[error("{what}: {source}")]
    Neutron {
        /// What was being done.
        what: String,
        /// Neutron's error.
        #[source]
        source: openstack::Error,
    },
    /// OVSDB or netlink failed.
    #[error("{what}: {source}")]
    Host {
        /// What was being done.
        what: String,
        /// The host's error.
        #[source]
        source: netplumb::Error,
    },
    /// Binding or unbinding failed.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// Claiming a pool port failed.
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl LifecycleError {
    /// Wraps Neutron's error of doing `what`.
    pub fn neutron(what: impl Into<String>) -> impl Fn(openstack::Error) -> Self {
        let what = what.into();
        move |source| LifecycleError::Neutron { what: what.clone(), source }
    }

    /// Wraps the host's error of doing `what`.
    pub fn host(what: impl Into<String>) -> impl Fn(netplumb::Error) -> Self {
        let what = what.into();
        move |source| LifecycleError::Host { what: what.clone(), source }
    }
}

/// Where a bound port's container end goes.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Left in the host namespace under its own name; the runtime moves it
    /// (Docker, at Join).
    HostNamespace,
    /// Into a netns, named, with addresses and routes (CNI).
    Netns(&'a NetnsTarget),
}

/// What [`Lifecycle::bind`] saw of the port's dataplane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// ACTIVE, seen this way.
    Active(ActiveVia),
    /// A pool port: ACTIVE before it was taken.
    Pooled,
    /// Not waited for (`vif_plugging_timeout = 0`).
    NotWaited,
    /// Not ACTIVE in time, and `vif_plugging_is_fatal = false`: why.
    NotActive(String),
}

impl Readiness {
    /// Whether the port was seen ACTIVE (a nested port that never goes
    /// ACTIVE was not).
    pub fn seen_active(&self) -> bool {
        match self {
            Readiness::Active(via) => *via != ActiveVia::NotAwaited,
            Readiness::Pooled => true,
            Readiness::NotWaited | Readiness::NotActive(_) => false,
        }
    }
}

/// A port bound on this host.
#[derive(Debug, Clone)]
pub struct Bound {
    /// Its host devices.
    pub plugged: Plugged,
    /// The host end's MAC (CNI results carry it), when known.
    pub host_mac: Option<MacAddr>,
    /// What was seen of the dataplane.
    pub readiness: Readiness,
}

/// The lifecycle service: a Neutron client, this host's binder and port
/// pools. Cheap to clone.
#[derive(Clone)]
pub struct Lifecycle {
    neutron: Neutron,
    binder: Binder,
    pool: Arc<PortPool>,
    settings: Arc<LifecycleSettings>,
}

impl Lifecycle {
    /// The lifecycle over these clients; its pools mark their ports with
    /// `settings.pool_owner_tag`.
    pub fn new(neutron: Neutron, binder: Binder, settings: LifecycleSettings) -> Self {
        let pool = PortPool::new(
            neutron.clone(),
            binder.clone(),
            crate::vif_pool::ready_timeout(settings.active_timeout),
            settings.pool_owner_tag.clone(),
        );
        Lifecycle { neutron, binder, pool, settings: Arc::new(settings) }
    }

    /// The Neutron client.
    pub fn neutron(&self) -> &Neutron {
        &self.neutron
    }

    /// The binder.
    pub fn binder(&self) -> &Binder {
        &self.binder
    }

    /// The port pools.
    pub fn pool(&self) -> &Arc<PortPool> {
        &self.pool
    }

    /// The settings.
    pub fn settings(&self) -> &LifecycleSettings {
        &self.settings
    }

    // ---- provision / release ----

    /// The POST body of a new port for `owner` on `network_id`: named,
    /// tagged and owned for its kind, up, and bound to this host (unbound
    /// in a VM: docs/nested.md). The caller adds addresses, security groups
    /// or a project.
    pub fn port_create(&self, owner: &Owner, network_id: &str) -> PortCreate {
        owner.port_create(network_id, self.binder.binds_host().then(|| self.settings.host.clone()))
    }

    /// Provisions a port: one POST.
    pub async fn provision(&self, create: &PortCreate) -> Result<Port, openstack::Error> {
        let port = self.neutron.create_port(create).await?;
        info!(port_id = %port.id, network_id = %port.network_id, "port created");
        Ok(port)
    }

    /// Records `owner` on a taken pool port's OVS interface (one local
    /// OVSDB transaction); Neutron learns it from [`Lifecycle::record_owner`]
    /// after the adapter replied.
    pub async fn claim_pooled(&self, pooled: &PooledPort, owner: &Owner) -> Result<(), PoolError> {
        self.pool.claim_local(pooled, &owner.ovs_external_ids()).await
    }

    /// Writes an owner to Neutron: name and device_id in one PUT, the tags
    /// in the other, concurrently (they touch different fields). A port
    /// deleted meanwhile is fine; any other failure is logged and repaired
    /// at the next start ([`Lifecycle::recover_owners`]). `'static`, so an
    /// adapter may run it after its reply.
    pub fn record_owner(
        &self,
        port_id: &str,
        record: OwnerRecord,
    ) -> impl Future<Output = ()> + Send + 'static {
        let neutron = self.neutron.clone();
        let port_id = port_id.to_string();
        async move {
            let update = PortUpdate {
                name: record.name,
                device_id: Some(record.device_id),
                ..PortUpdate::default()
            };
            let (updated, tagged) = tokio::join!(
                neutron.update_port(&port_id, &update),
                neutron.replace_tags(Resource::Ports, &port_id, &record.tags)
            );
            for (what, err) in [("name and device_id", updated.err()), ("tags", tagged.err())] {
                match err {
                    None => {}
                    Some(e) if e.is_not_found() => {}
                    Some(err) => {
                        warn!(port_id, %err, "recording the port's {what} failed; retried at the next start")
                    }
                }
            }
        }
    }

    /// Unbinds and deletes a port Kuryr made. Idempotent: a port already
    /// gone is fine.
    pub async fn release(&self, port_id: &str) -> Result<(), LifecycleError> {
        self.binder.unplug(port_id).await?;
        match self.neutron.delete_port(port_id).await {
            Ok(()) => {
                debug!(port_id, "port deleted");
                Ok(())
            }
            Err(err) if err.is_not_found() => Ok(()),
            Err(source) => Err(LifecycleError::neutron(format!("deleting port {port_id}"))(source)),
        }
    }

    /// At start: a claimed port whose deferred owner record was lost (the
    /// process died between its reply and the record) is plugged with its
    /// owner in OVSDB (`vm-uuid`), but Neutron still shows it unowned (the
    /// unbound-address or pool name, no device_id). Records the owners of
    /// `kind` now: one port GET, plus (Docker) one network GET per port.
    /// Returns how many were repaired.
    pub async fn recover_owners(&self, kind: OwnerKind) -> Result<usize, LifecycleError> {
        let interfaces = self
            .binder
            .switch()
            .find_interfaces(crate::binding::OWNER_KEY, None)
            .await
            .map_err(LifecycleError::host("reading OVSDB"))?;
        let claimed: HashMap<String, _> = interfaces
            .into_iter()
            .filter(|i| OwnerKind::of_ovs_external_ids(&i.external_ids) == Some(kind))
            .filter_map(|i| Some((i.external_ids.get(IFACE_ID_KEY)?.clone(), i.external_ids)))
            .collect();
        if claimed.is_empty() {
            return Ok(0);
        }
        let ports = self
            .neutron
            .list_ports(
                &Query::new()
                    .binding_host_id(&self.settings.host)
                    .device_owner(naming::DEVICE_OWNER)
                    .name(naming::UNBOUND_PORT_NAME)
                    .name(naming::POOL_PORT_NAME),
            )
            .await
            .map_err(LifecycleError::neutron("listing ports whose owner is not recorded"))?;
        let mut repaired = 0;
        for port in ports.into_iter().filter(|p| p.device_id.is_empty()) {
            let Some(ids) = claimed.get(port.id.as_str()) else {
                continue;
            };
            let owner = match kind {
                OwnerKind::CniAttachment => Owner::cni_from_ovs_external_ids(ids),
                OwnerKind::DockerEndpoint => self.docker_owner(&port, ids).await,
                // A pod's owner is the controller's to record.
                OwnerKind::Pod => None,
            };
            let Some(owner) = owner else {
                continue;
            };
            info!(port_id = %port.id, owner = owner.device_id(), "recording the owner a crash left out");
            self.record_owner(&port.id, owner.record(&port.tags)).await;
            repaired += 1;
        }
        Ok(repaired)
    }

    /// A Docker endpoint from its `vm-uuid` and the Docker network its
    /// Neutron network is tagged with.
    async fn docker_owner(
        &self,
        port: &Port,
        ids: &std::collections::BTreeMap<String, String>,
    ) -> Option<Owner> {
        let endpoint = ids.get(crate::binding::OWNER_KEY)?.clone();
        let network = match self.neutron.get_network(&port.network_id).await {
            Ok(network) => network,
            Err(err) => {
                warn!(port_id = %port.id, %err, "reading the port's network");
                return None;
            }
        };
        Some(Owner::DockerEndpoint {
            endpoint,
            docker_network: naming::id_from_tags(&network.tags)?,
        })
    }

    // ---- bind / unbind ----

    /// Binds `port` for `owner` on this host: plugs it (a veth on the
    /// integration bridge or a Linux bridge, or a nested link), into
    /// `target`, and waits until it is ACTIVE. Undoes the plug when the
    /// wait fails and `vif_plugging_is_fatal`. `mtu`: the network's.
    pub async fn bind(
        &self,
        port: &Port,
        owner: &Owner,
        mtu: Option<u32>,
        target: Target<'_>,
    ) -> Result<Bound, BindError> {
        let request = PlugRequest::of_port(port, owner.device_id(), mtu)?;
        self.bind_request(&request, target).await
    }

    /// Binds what `request` describes (a Kubernetes node daemon builds it
    /// from a KuryrPort's vif, without asking Neutron): as [`Lifecycle::bind`].
    pub async fn bind_request(
        &self,
        request: &PlugRequest,
        target: Target<'_>,
    ) -> Result<Bound, BindError> {
        let port_id = request.port_id.as_str();
        let (plugged, host_mac) = match target {
            Target::HostNamespace => (self.binder.plug(request).await?, None),
            Target::Netns(netns) => {
                let done = self.binder.plug_into_netns(request, netns).await?;
                (done.plugged, done.host_mac)
            }
        };
        let readiness = self.await_active(port_id, &plugged).await?;
        if let Target::Netns(netns) = target {
            self.binder.announce(port_id, request.mac, netns).await;
        }
        Ok(Bound { plugged, host_mac, readiness })
    }

    /// Binds a taken pool port for `owner`: claims it in OVSDB and, for a
    /// netns target, moves its container end there. A pool port is ACTIVE
    /// already: nothing to wait for, no Neutron call.
    pub async fn bind_pooled(
        &self,
        pooled: &PooledPort,
        owner: &Owner,
        target: Target<'_>,
    ) -> Result<Bound, LifecycleError> {
        self.claim_pooled(pooled, owner).await?;
        let port = &pooled.port;
        let (plugged, host_mac) = match target {
            Target::HostNamespace => (pooled.plugged.clone(), None),
            Target::Netns(netns) => {
                let done = self.binder.adopt_into_netns(&port.id, &pooled.plugged, netns).await?;
                if let Ok(mac) = port.mac_address.parse() {
                    self.binder.announce(&port.id, mac, netns).await;
                }
                (done.plugged, done.host_mac)
            }
        };
        info!(port_id = %port.id, owner = owner.device_id(), "pool port claimed");
        Ok(Bound { plugged, host_mac, readiness: Readiness::Pooled })
    }

    /// Removes a port's host side (OVS port, veth or nested link).
    /// Idempotent.
    pub async fn unbind(&self, port_id: &str) -> Result<(), BindError> {
        self.binder.unplug(port_id).await
    }

    async fn await_active(&self, port_id: &str, plugged: &Plugged) -> Result<Readiness, BindError> {
        let timeout = self.settings.active_timeout;
        if timeout.is_zero() {
            return Ok(Readiness::NotWaited);
        }
        match self
            .binder
            .wait_active(&self.neutron, port_id, plugged, timeout, NEUTRON_POLL_DELAY)
            .await
        {
            Ok(via) => {
                debug!(port_id, ?via, "port ACTIVE");
                Ok(Readiness::Active(via))
            }
            Err(err) if self.settings.active_is_fatal => {
                if let Err(cleanup) = self.binder.unplug(port_id).await {
                    warn!(port_id, %cleanup, "cleanup after a failed wait");
                }
                Err(err)
            }
            Err(err) => {
                warn!(port_id, %err, "port not ACTIVE; going on (vif_plugging_is_fatal = false)");
                Ok(Readiness::NotActive(err.to_string()))
            }
        }
    }
}

/// Releases a user's port that Kuryr adopted (`kuryr.port.existing`): no
/// owner, no host, no Kuryr tag; the port itself stays, as the user made
/// it. A port gone meanwhile is fine.
pub async fn reset_adopted(neutron: &Neutron, port_id: &str) -> Result<(), LifecycleError> {
    let update = PortUpdate {
        device_owner: Some(String::new()),
        device_id: Some(String::new()),
        binding_host_id: Some(String::new()),
        ..PortUpdate::default()
    };
    let current = match neutron.update_port(port_id, &update).await {
        Ok(p) => p,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => {
            return Err(LifecycleError::neutron(format!("resetting adopted port {port_id}"))(e))
        }
    };
    let kept: Vec<&String> = current.tags.iter().filter(|t| !naming::is_kuryr_tag(t)).collect();
    neutron
        .replace_tags(Resource::Ports, port_id, &kept)
        .await
        .map_err(LifecycleError::neutron(format!("untagging adopted port {port_id}")))?;
    info!(port_id, "adopted port reset");
    Ok(())
}
