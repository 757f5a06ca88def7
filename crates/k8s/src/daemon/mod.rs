//! The node daemon in Kubernetes mode (`kuryr daemon` with `[kubernetes]`;
//! docs/kubernetes.md § The node daemon): [`K8sCni`], the
//! `kuryr_cni_daemon::CniHandler` that binds only what the controller
//! provisioned. It makes and deletes no Neutron port and never polls
//! Neutron (the binder's ACTIVE wait falls back to one after 2 s without
//! OVN's local `ovn-installed`, as everywhere).
//!
//! - **ADD** waits, event-driven and bounded by `[cni_daemon]
//!   vif_annotation_timeout`, for the pod's KuryrPort in the node's cache
//!   ([`ports`]) to carry the vif of `CNI_IFNAME` for the pod uid of
//!   `K8S_POD_UID` ([`crate::node::on_add`]), binds it into `CNI_NETNS`
//!   and answers; it fails with 11 (try again later) naming what it
//!   waited for.
//! - **DEL** never waits on the controller: it cancels an ADD of its
//!   attachment still waiting, and finds the host side in OVSDB by the
//!   attachment's `external_ids` (`kuryr_core::naming::pod`), else through
//!   the cached KuryrPort; nothing found is success.
//! - **CHECK** the netns against the KuryrPort's vif; **GC** unplugs host
//!   sides of attachments the runtime no longer lists; **STATUS** is ready
//!   once the KuryrPorts were listed.

pub mod ports;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kuryr_cni_daemon::attachments::{ports_in_ovsdb, unplug_invalid, AttachmentLocks, OvsKeys};
use kuryr_cni_daemon::handler::{add_result, check_interface, errors};
use kuryr_cni_daemon::proto::{AttachmentRequest, GcRequest, StatusRequest};
use kuryr_cni_daemon::{AddResult, CniError, CniHandler};
use kuryr_core::binding::{NetnsTarget, IFACE_ID_KEY};
use kuryr_core::lifecycle::{Lifecycle, Target};
use kuryr_core::naming::pod as naming;
use netplumb::Netns;
use tokio::time::Instant;
use tracing::{debug, info, info_span, Instrument};

use crate::node::{self, AddDecision, Wait};
use crate::vif::Vif;
use ports::PortCache;

/// How a pod attachment's OVS interface names it (written at ADD).
const OVS_KEYS: OvsKeys =
    OvsKeys { container_id: naming::OVS_CONTAINER_KEY, ifname: naming::OVS_IFNAME_KEY };

/// What the handler needs to know about this node.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The node's name (its KuryrPorts carry it in their node label).
    pub node: String,
    /// How long an ADD waits for its pod's KuryrPort and vif
    /// (`[cni_daemon] vif_annotation_timeout`).
    pub kuryrport_timeout: Duration,
}

/// The handler: the lifecycle's bind half, the node's KuryrPorts.
pub struct K8sCni {
    lifecycle: Lifecycle,
    ports: PortCache,
    settings: Settings,
    /// One bind or unbind at a time per attachment.
    attachments: AttachmentLocks,
    /// ADDs waiting for their KuryrPort, by attachment: they wait outside
    /// the attachment's lock, so a DEL (the runtime gave up) never waits
    /// on the controller; it cancels them instead.
    waiting: Mutex<HashMap<(String, String), Arc<Pending>>>,
}

/// An ADD waiting for its KuryrPort, which a DEL of its attachment cancels.
#[derive(Default)]
struct Pending {
    cancelled: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Pending {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        // notify_one keeps a permit for a waiter not yet polled.
        self.wake.notify_one();
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

/// Removes its ADD's entry from `waiting` when the ADD ends (if still its).
struct PendingGuard<'a> {
    waiting: &'a Mutex<HashMap<(String, String), Arc<Pending>>>,
    key: (String, String),
    pending: Arc<Pending>,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut map = lock(self.waiting);
        if map.get(&self.key).is_some_and(|p| Arc::ptr_eq(p, &self.pending)) {
            map.remove(&self.key);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the map's lock leaves a usable map.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The pod a call is for, from `CNI_ARGS`.
#[derive(Debug, Clone, Copy)]
struct Pod<'a> {
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
}

impl<'a> Pod<'a> {
    /// The pod of `req`; all of `K8S_POD_NAMESPACE`, `K8S_POD_NAME` and
    /// `K8S_POD_UID` are needed (the kubelet always sets them).
    fn of(req: &'a AttachmentRequest) -> Result<Pod<'a>, CniError> {
        let args = &req.args;
        let (namespace, name, uid) =
            (args.k8s_pod_namespace(), args.k8s_pod_name(), args.k8s_pod_uid());
        if let (Some(namespace), Some(name), Some(uid)) = (namespace, name, uid) {
            return Ok(Pod { namespace, name, uid });
        }
        let missing: Vec<&str> =
            [("K8S_POD_NAMESPACE", namespace), ("K8S_POD_NAME", name), ("K8S_POD_UID", uid)]
                .into_iter()
                .filter_map(|(key, value)| value.is_none().then_some(key))
                .collect();
        Err(CniError::invalid_env(format!(
            "CNI_ARGS lacks {}: kuryr daemon runs in Kubernetes mode, which binds a pod's \
             KuryrPort and needs the pod's namespace, name and uid (the kubelet sets them)",
            missing.join(", ")
        )))
    }
}

impl K8sCni {
    /// A handler binding with `lifecycle` what `ports` (this node's
    /// KuryrPorts) describe.
    pub fn new(lifecycle: Lifecycle, ports: PortCache, settings: Settings) -> Self {
        K8sCni {
            lifecycle,
            ports,
            settings,
            attachments: AttachmentLocks::default(),
            waiting: Mutex::new(HashMap::new()),
        }
    }

    /// Registers an ADD about to wait; a later ADD of the same attachment
    /// (a runtime's retry) takes the slot over.
    fn pending(&self, req: &AttachmentRequest) -> PendingGuard<'_> {
        let key = (req.container_id.clone(), req.ifname.clone());
        let pending = Arc::new(Pending::default());
        lock(&self.waiting).insert(key.clone(), pending.clone());
        PendingGuard { waiting: &self.waiting, key, pending }
    }

    /// Cancels the waiting ADD of `req`'s attachment, if any.
    fn cancel_pending(&self, req: &AttachmentRequest) {
        let key = (req.container_id.clone(), req.ifname.clone());
        if let Some(pending) = lock(&self.waiting).remove(&key) {
            info!("DEL cancels the ADD still waiting for its KuryrPort");
            pending.cancel();
        }
    }

    /// Waits until the cached KuryrPort of `pod` carries the vif of
    /// `ifname` for this pod's uid, woken by each change of the cache,
    /// up to the timeout; then fails with 11 naming the last reason.
    async fn vif_of(&self, pod: Pod<'_>, ifname: &str) -> Result<Vif, CniError> {
        let timeout = self.settings.kuryrport_timeout;
        let deadline = Instant::now() + timeout;
        let mut changes = self.ports.changes();
        let mut last: Option<Wait> = None;
        loop {
            // Seen before reading: a change after the read wakes the wait.
            changes.seen();
            let kuryrport = self.ports.get(pod.namespace, pod.name);
            let reason = match node::on_add(kuryrport.as_deref(), pod.uid, ifname) {
                AddDecision::Bind(vif) => return Ok(vif.clone()),
                AddDecision::Wait(reason) => reason,
            };
            if last.as_ref() != Some(&reason) {
                info!(?reason, synced = self.ports.synced(), "waiting for the KuryrPort");
            }
            let woke = tokio::time::timeout_at(deadline, changes.next()).await;
            match woke {
                Ok(true) => last = Some(reason),
                Ok(false) => {
                    return Err(CniError::try_again_later(format!(
                        "{}; and the daemon's KuryrPort watch stopped",
                        reason.describe(pod.namespace, pod.name, ifname, pod.uid)
                    )))
                }
                Err(_elapsed) => {
                    let mut msg = format!(
                        "gave up after {}s ([cni_daemon] vif_annotation_timeout): {}",
                        timeout.as_secs_f64(),
                        reason.describe(pod.namespace, pod.name, ifname, pod.uid)
                    );
                    if !self.ports.synced() {
                        msg.push_str(&format!(
                            " (this daemon has not listed node {}'s KuryrPorts from the apiserver yet)",
                            self.settings.node
                        ));
                    }
                    return Err(CniError::try_again_later(msg));
                }
            }
        }
    }

    /// ADD: waits for the vif outside the attachment's lock (a DEL
    /// cancels the wait), then binds under it.
    async fn add_attachment(&self, req: &AttachmentRequest) -> Result<AddResult, CniError> {
        let pod = Pod::of(req)?;
        let (netns, netns_path) = kuryr_cni_daemon::attachments::netns_of(req)?;
        let pending = self.pending(req);
        let vif = tokio::select! {
            vif = self.vif_of(pod, &req.ifname) => vif?,
            () = pending.pending.wake.notified() => return Err(deleted_meanwhile()),
        };
        let _serial = self.attachments.lock(&req.container_id, &req.ifname).await;
        if pending.pending.is_cancelled() {
            return Err(deleted_meanwhile());
        }
        self.bind(req, pod, &vif, netns, netns_path).await
    }

    /// Binds `vif` of `pod` into `netns` and answers.
    async fn bind(
        &self,
        req: &AttachmentRequest,
        pod: Pod<'_>,
        vif: &Vif,
        netns: Netns,
        netns_path: &str,
    ) -> Result<AddResult, CniError> {
        node::binding_fits(vif.binding, self.lifecycle.binder().nested_mode()).map_err(|why| {
            CniError::new(
                errors::PLUMBING_FAILED,
                format!("KuryrPort {}/{}: {why}", pod.namespace, pod.name),
            )
        })?;
        let layout = vif.layout();
        let target = NetnsTarget {
            netns,
            ifname: req.ifname.clone(),
            addresses: layout.addresses.iter().map(|(address, _)| *address).collect(),
            routes: layout.routes.clone(),
            external_ids: naming::ovs_external_ids(
                pod.namespace,
                pod.name,
                &req.container_id,
                &req.ifname,
                req.config.name.as_deref().unwrap_or_default(),
            ),
        };
        // The port's owner in OVS (`vm-uuid`) is the pod's uid, as its
        // device_id in Neutron.
        let request = vif.plug_request(pod.uid);
        let bound = self
            .lifecycle
            .bind_request(&request, Target::Netns(&target))
            .await
            .map_err(|e| errors::bind(&e))?;
        info!(port_id = %vif.port_id, readiness = ?bound.readiness, "pod bound");
        Ok(add_result(req, &bound, &vif.mac.to_string(), vif.mtu, layout, netns_path))
    }

    async fn del_attachment(&self, req: &AttachmentRequest) -> Result<(), CniError> {
        let binder = self.lifecycle.binder();
        let (cid, ifname) = (req.container_id.as_str(), req.ifname.as_str());
        let mut port_ids = ports_in_ovsdb(binder, OVS_KEYS, cid, ifname)
            .await
            .map_err(|e| errors::plumbing("reading OVSDB", &e))?;
        if port_ids.is_empty() {
            // Nothing of this sandbox in OVSDB (a VM has no OVS; a crash
            // may leave a veth whose OVS port is gone): the KuryrPort
            // names the pod's port, when it is this pod's.
            if let Some(port_id) = self.cached_port(req).await? {
                port_ids.push(port_id);
            }
        }
        if port_ids.is_empty() {
            debug!("DEL: nothing to unbind");
        }
        for port_id in port_ids {
            self.lifecycle.unbind(&port_id).await.map_err(|e| errors::bind(&e))?;
            info!(port_id, "pod unbound");
        }
        Ok(())
    }

    /// The port of the attachment's pod as its cached KuryrPort names it,
    /// unless another sandbox of the pod has it plugged now (a late DEL of
    /// the sandbox before must not unplug its successor).
    async fn cached_port(&self, req: &AttachmentRequest) -> Result<Option<String>, CniError> {
        let Ok(pod) = Pod::of(req) else {
            return Ok(None);
        };
        let Some(kuryrport) = self.ports.get(pod.namespace, pod.name) else {
            return Ok(None);
        };
        if kuryrport.spec.pod_uid != pod.uid {
            return Ok(None);
        }
        let Some(vif) = kuryrport.status.as_ref().and_then(|s| s.vifs.get(&req.ifname)) else {
            return Ok(None);
        };
        let binder = self.lifecycle.binder();
        if binder.binds_host() {
            let plugged = binder
                .switch()
                .find_interfaces(IFACE_ID_KEY, Some(&vif.port_id))
                .await
                .map_err(|e| errors::plumbing("reading OVSDB", &e))?;
            let other = plugged.iter().find_map(|i| {
                i.external_ids
                    .get(naming::OVS_CONTAINER_KEY)
                    .filter(|owner| *owner != &req.container_id)
            });
            if let Some(other) = other {
                info!(port_id = %vif.port_id, other, "DEL: the port is another sandbox's now; left alone");
                return Ok(None);
            }
        }
        Ok(Some(vif.port_id.clone()))
    }

    async fn check_attachment(&self, req: &AttachmentRequest) -> Result<(), CniError> {
        let pod = Pod::of(req)?;
        let kuryrport = self.ports.get(pod.namespace, pod.name);
        let vif = match node::on_add(kuryrport.as_deref(), pod.uid, &req.ifname) {
            AddDecision::Bind(vif) => vif.clone(),
            AddDecision::Wait(reason) => {
                return Err(CniError::unknown_container(reason.describe(
                    pod.namespace,
                    pod.name,
                    &req.ifname,
                    pod.uid,
                )))
            }
        };
        let binder = self.lifecycle.binder();
        if binder.binds_host() {
            let plugged = ports_in_ovsdb(binder, OVS_KEYS, &req.container_id, &req.ifname)
                .await
                .map_err(|e| errors::plumbing("reading OVSDB", &e))?;
            if !plugged.contains(&vif.port_id) {
                return Err(errors::mismatch(format!(
                    "port {} of KuryrPort {}/{} is not plugged on this node for container {} {}",
                    vif.port_id, pod.namespace, pod.name, req.container_id, req.ifname
                )));
            }
            if vif.binding.goes_active() && !binder.ovn_installed(&vif.port_id).await && !vif.active
            {
                return Err(errors::mismatch(format!(
                    "port {} is neither ACTIVE in its KuryrPort nor ovn-installed here",
                    vif.port_id
                )));
            }
        }
        check_interface(req, &vif.port_id, Some(vif.mac.0), vif.mtu, &vif.layout()).await
    }

    async fn garbage_collect(&self, req: &GcRequest) -> Result<(), CniError> {
        let binder = self.lifecycle.binder();
        if !binder.binds_host() {
            // Nested: no OVS in the VM; the links went with their netns.
            return Ok(());
        }
        let cni_network = req.config.name.as_deref().unwrap_or_default();
        let found = binder
            .switch()
            .find_interfaces(naming::OVS_NETWORK_KEY, Some(cni_network))
            .await
            .map_err(|e| errors::plumbing("listing OVS interfaces", &e))?;
        let valid = req.valid_set();
        unplug_invalid(binder, &found, OVS_KEYS, &valid).await.map_or(Ok(()), Err)
    }
}

impl CniHandler for K8sCni {
    async fn add(&self, req: AttachmentRequest) -> Result<AddResult, CniError> {
        let span = attachment_span("ADD", &req);
        self.add_attachment(&req).instrument(span).await
    }

    async fn del(&self, req: AttachmentRequest) -> Result<(), CniError> {
        let span = attachment_span("DEL", &req);
        // Before the lock: an ADD waiting on the controller gives up now;
        // one already binding finishes (bounded by the ACTIVE wait), then
        // this DEL removes what it made.
        self.cancel_pending(&req);
        let _serial = self.attachments.lock(&req.container_id, &req.ifname).await;
        self.del_attachment(&req).instrument(span).await
    }

    async fn check(&self, req: AttachmentRequest) -> Result<(), CniError> {
        let span = attachment_span("CHECK", &req);
        let _serial = self.attachments.lock(&req.container_id, &req.ifname).await;
        self.check_attachment(&req).instrument(span).await
    }

    async fn gc(&self, req: GcRequest) -> Result<(), CniError> {
        let span = info_span!("k8s_cni", verb = "GC", valid = req.valid_attachments.len());
        self.garbage_collect(&req).instrument(span).await
    }

    async fn status(&self, _req: StatusRequest) -> Result<(), CniError> {
        if self.ports.synced() {
            Ok(())
        } else {
            Err(CniError::plugin_not_available(format!(
                "kuryr daemon has not listed node {}'s KuryrPorts from the apiserver yet",
                self.settings.node
            )))
        }
    }
}

/// What an ADD whose attachment a DEL removed while it waited answers.
fn deleted_meanwhile() -> CniError {
    CniError::try_again_later(
        "a DEL of this attachment came while the ADD waited for its KuryrPort; nothing was bound",
    )
}

/// A call's span: the verb, the attachment and, when `CNI_ARGS` name it,
/// its pod.
fn attachment_span(verb: &'static str, req: &AttachmentRequest) -> tracing::Span {
    let pod = format!(
        "{}/{}",
        req.args.k8s_pod_namespace().unwrap_or("?"),
        req.args.k8s_pod_name().unwrap_or("?")
    );
    info_span!("k8s_cni", verb, container_id = %req.container_id, ifname = %req.ifname, pod)
}
