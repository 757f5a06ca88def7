//! The controller's Neutron side: a namespace's network, subnet and router
//! interface (found again by name after a crash, made otherwise), a pod's
//! port, and what the controller remembers to keep Neutron calls few, all
//! rebuilt from Neutron at start:
//!
//! - the **port index**: every port tagged with this cluster, by
//!   `device_id` (the pod's uid), listed once at start (and after winning
//!   leadership), so a port POSTed before a crash is found again instead of
//!   made twice, and no pod costs a GET;
//! - the **known** subnets, networks' MTUs and subnetpools' IP versions:
//!   each fetched at most once per controller lifetime, and seeded from the
//!   replies of the POSTs that made them.
//!
//! Pods' port POSTs go together: while one POST is on its way, the ports
//! asked for meanwhile queue, and the next request creates them all in one
//! bulk POST (Neutron handles port POSTs one at a time, and a bulk of 10
//! takes about half as long as 10 POSTs). A bulk Neutron refuses is sent
//! again one port at a time, so each pod gets its own answer.
//!
//! The bodies come from `crate::namespace` and `crate::pod` (pure); here
//! are only the calls. docs/kubernetes.md § How it maps. Deletes are idempotent (404 is done).

use std::collections::HashMap;
use std::sync::Mutex;

use kuryr_core::config::{NamespaceSubnetOptions, NeutronDefaultsOptions};
use kuryr_core::naming;
use openstack::neutron::{Neutron, Port, PortCreate, Query, Resource, Subnet};
use tokio::sync::oneshot;
use tracing::{debug, info};

use super::error::Error;
use crate::namespace::{network_create, subnet_create, NamespaceIdentity};
use crate::pod::{port_create, PodIdentity};
use crate::vif::{Binding, Vif};

/// A namespace's network as the KuryrNetwork's status records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceNetwork {
    /// The network.
    pub network_id: String,
    /// Its subnet.
    pub subnet_id: String,
    /// The subnet's CIDR.
    pub cidr: String,
    /// The router the subnet is attached to.
    pub router_id: String,
}

/// Where a namespace's cleanup is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// Pods' ports are still on the network: come back later.
    PortsRemain(usize),
    /// Router interface, subnet and network are gone.
    Done,
}

/// What is remembered of Neutron objects that do not change under us.
#[derive(Debug, Default)]
struct Known {
    subnets: HashMap<String, Subnet>,
    mtus: HashMap<String, Option<u32>>,
    pool_versions: HashMap<String, u8>,
}

/// What became of a queued port POST.
#[derive(Debug)]
enum Posted {
    /// Made (and indexed).
    Made(Box<Port>),
    /// Neutron refused it.
    Failed(openstack::Error),
    /// No answer: Neutron may have made it (the pod is marked uncertain).
    Unanswered(String),
}

/// A port POST waiting for the next request.
#[derive(Debug)]
struct Waiting {
    uid: String,
    body: PortCreate,
    reply: oneshot::Sender<Posted>,
}

/// The port POSTs waiting, and whether a caller is sending them.
#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Waiting>,
    sending: bool,
}

/// The most ports one bulk POST carries.
const MAX_BULK: usize = 50;

/// The controller's Neutron client, with its index and what it knows.
#[derive(Debug)]
pub struct NeutronSide {
    neutron: Neutron,
    cluster: String,
    defaults: NeutronDefaultsOptions,
    namespace_subnet: NamespaceSubnetOptions,
    known: Mutex<Known>,
    ports: Mutex<HashMap<String, Vec<Port>>>,
    /// Pods whose port POST had no answer (timeout, reset): Neutron may
    /// have made the port, so it is looked for before another POST.
    uncertain: Mutex<std::collections::HashSet<String>>,
    queue: Mutex<Queue>,
}

/// Ends a sender's turn if its future is dropped mid-send, so the next
/// caller sends (the POSTs it had taken are told unanswered by their
/// dropped reply channels).
struct SendingTurn<'a> {
    queue: &'a Mutex<Queue>,
    done: bool,
}

impl Drop for SendingTurn<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.queue.lock().unwrap_or_else(|p| p.into_inner()).sending = false;
        }
    }
}

impl NeutronSide {
    /// The Neutron side of the controller of `cluster` (the uid of its
    /// `kube-system`), with `[neutron_defaults]` and `[namespace_subnet]`.
    pub fn new(
        neutron: Neutron,
        cluster: String,
        defaults: NeutronDefaultsOptions,
        namespace_subnet: NamespaceSubnetOptions,
    ) -> NeutronSide {
        NeutronSide {
            neutron,
            cluster,
            defaults,
            namespace_subnet,
            known: Mutex::default(),
            ports: Mutex::default(),
            uncertain: Mutex::default(),
            queue: Mutex::default(),
        }
    }

    /// The Neutron client (its call counters tell the calls made).
    pub fn neutron(&self) -> &Neutron {
        &self.neutron
    }

    /// The cluster id.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn index(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Port>>> {
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ------------------------------------------------------------ index

    /// Lists every port tagged with this cluster (one call, all pages) and
    /// makes it the index; returns how many ports it holds.
    pub async fn index_ports(&self) -> Result<usize, Error> {
        let query = Query::new()
            .device_owner(naming::DEVICE_OWNER)
            .tags([naming::pod::cluster_tag(&self.cluster)]);
        let ports = self
            .neutron
            .list_ports(&query)
            .await
            .map_err(|e| Error::neutron("listing the cluster's ports", e))?;
        let count = ports.len();
        let mut by_pod: HashMap<String, Vec<Port>> = HashMap::new();
        for port in ports {
            by_pod.entry(port.device_id.clone()).or_default().push(port);
        }
        *self.index() = by_pod;
        info!(ports = count, "indexed the cluster's ports");
        Ok(count)
    }

    /// The ports the index holds for pod `uid`.
    pub fn ports_of(&self, uid: &str) -> Vec<Port> {
        self.index().get(uid).cloned().unwrap_or_default()
    }

    fn remember_port(&self, port: &Port) {
        let mut index = self.index();
        let ports = index.entry(port.device_id.clone()).or_default();
        ports.retain(|p| p.id != port.id);
        ports.push(port.clone());
    }

    fn forget_port(&self, uid: &str, port_id: &str) {
        let mut index = self.index();
        if let Some(ports) = index.get_mut(uid) {
            ports.retain(|p| p.id != port_id);
            if ports.is_empty() {
                index.remove(uid);
            }
        }
    }

    // -------------------------------------------------------- namespaces

    /// Finds or makes namespace `id`'s network and subnet (by their
    /// upstream names, which carry the namespace's uid: a network POSTed
    /// before a crash, even untagged, is found), tags them, and attaches
    /// the subnet to `[namespace_subnet] pod_router`.
    pub async fn ensure_namespace_network(
        &self,
        id: &NamespaceIdentity,
    ) -> Result<NamespaceNetwork, Error> {
        let (router, pool) = self.namespace_options()?;
        let (net_body, tags) = network_create(id, &self.cluster, &self.defaults);
        let name = net_body.name.clone().unwrap_or_default();
        let what = |step: &str| format!("{step} of namespace {}", id.name);
        let found = self
            .neutron
            .list_networks(&Query::new().name(&name))
            .await
            .map_err(|e| Error::neutron(what("finding the network"), e))?;
        let (network, fresh) = match found.into_iter().next() {
            Some(network) => (network, false),
            None => {
                let network = self
                    .neutron
                    .create_network(&net_body)
                    .await
                    .map_err(|e| Error::neutron(what("creating the network"), e))?;
                info!(namespace = %id.name, network = %network.id, "created the namespace's network");
                (network, true)
            }
        };
        self.ensure_tags(Resource::Networks, &network.id, &network.tags, &tags)
            .await
            .map_err(|e| Error::neutron(what("tagging the network"), e))?;
        self.known().mtus.insert(network.id.to_string(), network.mtu);
        // A network just made has no subnet: no need to look.
        let existing = if fresh {
            None
        } else {
            self.neutron
                .list_subnets(&Query::new().network_id(network.id.as_str()).name(&name))
                .await
                .map_err(|e| Error::neutron(what("finding the subnet"), e))?
                .into_iter()
                .next()
        };
        let (subnet, subnet_fresh) = match existing {
            Some(subnet) => (subnet, false),
            None => {
                let version = self.pool_version(pool).await?;
                let (body, _) =
                    subnet_create(id, &self.cluster, &network.id, (pool, version), &self.defaults);
                let subnet = self
                    .neutron
                    .create_subnet(&body)
                    .await
                    .map_err(|e| Error::neutron(what("creating the subnet"), e))?;
                info!(namespace = %id.name, subnet = %subnet.id, cidr = %subnet.cidr, "created the namespace's subnet");
                (subnet, true)
            }
        };
        self.ensure_tags(Resource::Subnets, &subnet.id, &subnet.tags, &tags)
            .await
            .map_err(|e| Error::neutron(what("tagging the subnet"), e))?;
        self.known().subnets.insert(subnet.id.to_string(), subnet.clone());
        // A subnet found again may be attached already (a crash after the
        // PUT): ask the router's ports rather than reading an error text.
        let attached = !subnet_fresh && self.is_attached(router, &subnet.id).await?;
        if !attached {
            match self
                .neutron
                .router_interface(openstack::neutron::InterfaceAction::Add, router, &subnet.id)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() && e.neutron_type() == Some("RouterNotFound") => {
                    return Err(missing_router(router))
                }
                Err(e) => {
                    return Err(Error::neutron(what("attaching the subnet to the router"), e))
                }
            }
        }
        Ok(NamespaceNetwork {
            network_id: network.id.to_string(),
            subnet_id: subnet.id.to_string(),
            cidr: subnet.cidr.clone(),
            router_id: router.to_string(),
        })
    }

    /// Deletes namespace `id`'s router interface, subnet and network once
    /// no pod's port is left on the network. `recorded` is what its
    /// KuryrNetwork's status says (else they are found by name).
    pub async fn delete_namespace_network(
        &self,
        id: &NamespaceIdentity,
        recorded: Option<(String, Option<String>)>,
    ) -> Result<Cleanup, Error> {
        let name = naming::pod::namespace_network_name(&id.name, &id.uid);
        let what = |step: &str| format!("{step} of namespace {}", id.name);
        let (network_id, subnet_id) = match recorded {
            Some((net, subnet)) => (net, subnet),
            None => {
                // By name when the namespace's uid is known, else by tags.
                let query = if id.uid.is_empty() {
                    Query::new().tags(naming::pod::namespace_network_tags(&id.name, &self.cluster))
                } else {
                    Query::new().name(&name)
                };
                let found = self
                    .neutron
                    .list_networks(&query)
                    .await
                    .map_err(|e| Error::neutron(what("finding the network"), e))?;
                match found.into_iter().next() {
                    Some(n) => (n.id.to_string(), n.subnets.first().map(ToString::to_string)),
                    None => return Ok(Cleanup::Done),
                }
            }
        };
        let pods = self
            .neutron
            .list_ports(
                &Query::new()
                    .network_id(&network_id)
                    .device_owner(naming::DEVICE_OWNER)
                    .fields(["id"]),
            )
            .await
            .map_err(|e| Error::neutron(what("listing the ports"), e))?;
        if !pods.is_empty() {
            return Ok(Cleanup::PortsRemain(pods.len()));
        }
        if let (Some(subnet), Some(router)) = (&subnet_id, &self.namespace_subnet.pod_router) {
            match self
                .neutron
                .router_interface(openstack::neutron::InterfaceAction::Remove, router, subnet)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => debug!(subnet, "no router interface to remove"),
                Err(e) => return Err(Error::neutron(what("detaching the subnet"), e)),
            }
        }
        if let Some(subnet) = &subnet_id {
            gone(self.neutron.delete_subnet(subnet).await)
                .map_err(|e| Error::neutron(what("deleting the subnet"), e))?;
            self.known().subnets.remove(subnet);
        }
        gone(self.neutron.delete_network(&network_id).await)
            .map_err(|e| Error::neutron(what("deleting the network"), e))?;
        self.known().mtus.remove(&network_id);
        info!(namespace = %id.name, network = %network_id, "deleted the namespace's network");
        Ok(Cleanup::Done)
    }

    fn namespace_options(&self) -> Result<(&str, &str), Error> {
        let router = self.namespace_subnet.pod_router.as_deref().ok_or(Error::Missing {
            what: "router",
            id: String::new(),
            option: "[namespace_subnet] pod_router",
        })?;
        let pool = self.namespace_subnet.pod_subnet_pool.as_deref().ok_or(Error::Missing {
            what: "subnetpool",
            id: String::new(),
            option: "[namespace_subnet] pod_subnet_pool",
        })?;
        Ok((router, pool))
    }

    /// Puts `tags` on a network or subnet that lacks one of them (found
    /// again after a crash between its POST and its tags): one PUT, none
    /// when it has them all.
    async fn ensure_tags(
        &self,
        res: Resource,
        id: &str,
        has: &[String],
        tags: &[String],
    ) -> Result<(), openstack::Error> {
        if tags.iter().all(|t| has.contains(t)) {
            return Ok(());
        }
        self.neutron.replace_tags(res, id, tags).await.map(|_| ())
    }

    async fn pool_version(&self, pool: &str) -> Result<u8, Error> {
        if let Some(v) = self.known().pool_versions.get(pool) {
            return Ok(*v);
        }
        let found = match self.neutron.get_subnetpool(pool).await {
            Ok(found) => found,
            Err(e) if e.is_not_found() => {
                return Err(Error::Missing {
                    what: "subnetpool",
                    id: pool.to_string(),
                    option: "[namespace_subnet] pod_subnet_pool",
                })
            }
            Err(e) => return Err(Error::neutron(format!("reading subnetpool {pool}"), e)),
        };
        let version = match found.ip_version {
            Some(6) => 6,
            _ => 4,
        };
        self.known().pool_versions.insert(pool.to_string(), version);
        Ok(version)
    }

    async fn is_attached(&self, router: &str, subnet_id: &str) -> Result<bool, Error> {
        let ports = self
            .neutron
            .list_ports(&Query::new().device_id(router).fixed_ip_subnet(subnet_id).fields(["id"]))
            .await
            .map_err(|e| Error::neutron(format!("listing the ports of router {router}"), e))?;
        Ok(!ports.is_empty())
    }

    // -------------------------------------------------------------- pods

    /// The port of pod `id` on `subnet_id` of `network_id`: the one the
    /// index holds, else a new one (one POST, then indexed). Extra ports
    /// of the pod (left by an older bug or a race) are deleted.
    pub async fn pod_port(
        &self,
        id: &PodIdentity,
        network_id: &str,
        subnet_id: &str,
    ) -> Result<Port, Error> {
        let uncertain = self.uncertain.lock().unwrap_or_else(|p| p.into_inner()).remove(&id.uid);
        if uncertain {
            self.look_for_ports(&id.uid).await?;
        }
        let mut existing = self.ports_of(&id.uid);
        if let Some(keep) = existing.pop() {
            for extra in existing {
                info!(pod = %id.uid, port = %extra.id, "deleting a second port of the pod");
                self.delete_port(&id.uid, &extra.id).await?;
            }
            debug!(pod = %id.uid, port = %keep.id, "the pod's port is indexed");
            return Ok(keep);
        }
        let body = port_create(id, &self.cluster, network_id, subnet_id, &self.defaults);
        let action = || format!("creating the port of pod {}/{}", id.namespace, id.name);
        match self.post_port(id.uid.clone(), body).await {
            Posted::Made(port) => {
                let port = *port;
                info!(pod = %format!("{}/{}", id.namespace, id.name), port = %port.id, "created the pod's port");
                Ok(port)
            }
            Posted::Failed(e) => Err(Error::neutron(action(), e)),
            Posted::Unanswered(message) => Err(Error::Unanswered { action: action(), message }),
        }
    }

    /// Queues the POST of `body` for pod `uid`; the first caller to find no
    /// one sending sends every queued POST, in bulk, until none is left.
    async fn post_port(&self, uid: String, body: PortCreate) -> Posted {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.waiting.push(Waiting { uid, body, reply });
            !std::mem::replace(&mut queue.sending, true)
        };
        if lead {
            let mut turn = SendingTurn { queue: &self.queue, done: false };
            loop {
                let batch: Vec<Waiting> = {
                    let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                    if queue.waiting.is_empty() {
                        queue.sending = false;
                        turn.done = true;
                        break;
                    }
                    let n = queue.waiting.len().min(MAX_BULK);
                    queue.waiting.drain(..n).collect()
                };
                self.send_ports(batch).await;
            }
        }
        answer.await.unwrap_or_else(|_| {
            Posted::Unanswered("the controller stopped before Neutron answered".into())
        })
    }

    /// POSTs `batch` (in bulk when more than one), indexes what was made
    /// and answers each waiter; a refused bulk goes again one by one.
    async fn send_ports(&self, batch: Vec<Waiting>) {
        if batch.len() > 1 {
            let bodies: Vec<PortCreate> = batch.iter().map(|w| w.body.clone()).collect();
            match self.neutron.create_ports(&bodies).await {
                Ok(ports) if ports.len() == batch.len() => {
                    debug!(ports = ports.len(), "created ports in one bulk POST");
                    for (waiting, port) in batch.into_iter().zip(ports) {
                        self.remember_port(&port);
                        let _ = waiting.reply.send(Posted::Made(Box::new(port)));
                    }
                    return;
                }
                Ok(ports) => {
                    for port in &ports {
                        self.remember_port(port);
                    }
                    let message = format!("Neutron made {} of {} ports", ports.len(), batch.len());
                    return self.unanswered(batch, &message);
                }
                Err(e) if e.is_timeout() || e.is_transport() => {
                    return self.unanswered(batch, &e.to_string())
                }
                Err(e) => debug!(error = %e, "bulk POST refused; one port at a time"),
            }
        }
        for waiting in batch {
            let posted = match self.neutron.create_port(&waiting.body).await {
                Ok(port) => {
                    self.remember_port(&port);
                    Posted::Made(Box::new(port))
                }
                Err(e) => {
                    if e.is_timeout() || e.is_transport() {
                        self.mark_uncertain(&waiting.uid);
                    }
                    Posted::Failed(e)
                }
            };
            let _ = waiting.reply.send(posted);
        }
    }

    fn unanswered(&self, batch: Vec<Waiting>, message: &str) {
        for waiting in batch {
            self.mark_uncertain(&waiting.uid);
            let _ = waiting.reply.send(Posted::Unanswered(message.to_string()));
        }
    }

    fn mark_uncertain(&self, uid: &str) {
        self.uncertain.lock().unwrap_or_else(|p| p.into_inner()).insert(uid.to_string());
    }

    /// Indexes what Neutron has for pod `uid` (one GET), after a POST whose
    /// outcome is unknown.
    async fn look_for_ports(&self, uid: &str) -> Result<(), Error> {
        let ports = self
            .neutron
            .list_ports(&Query::new().device_id(uid).device_owner(naming::DEVICE_OWNER))
            .await
            .map_err(|e| Error::neutron(format!("looking for the ports of pod {uid}"), e))?;
        for port in &ports {
            self.remember_port(port);
        }
        Ok(())
    }

    /// Reads `port` again (one GET) when it is not bound yet, and indexes
    /// what Neutron says.
    pub async fn refreshed(&self, port: Port) -> Result<Port, Error> {
        if port.binding_vif_type.is_bound() {
            return Ok(port);
        }
        let fresh = self
            .neutron
            .get_port(&port.id)
            .await
            .map_err(|e| Error::neutron(format!("reading port {}", port.id), e))?;
        self.remember_port(&fresh);
        Ok(fresh)
    }

    /// The vif of `port` bound to its node (`binding:vif_type`), from its
    /// subnets and network MTU (each fetched once, then known).
    pub async fn vif_of(&self, port: &Port) -> Result<Vif, Error> {
        let binding = Binding::of_vif_type(port)?;
        let mut subnets = Vec::new();
        for fixed in &port.fixed_ips {
            subnets.push(self.subnet(&fixed.subnet_id).await?);
        }
        let mtu = self.mtu(&port.network_id).await?;
        Ok(Vif::of_port(port, &subnets, mtu, binding)?)
    }

    /// Subnet `id` (`option` names where it was configured, for the error
    /// when it does not exist).
    pub async fn subnet_named(&self, id: &str, option: &'static str) -> Result<Subnet, Error> {
        match self.subnet(id).await {
            Err(Error::Neutron { source, .. }) if source.is_not_found() => {
                Err(Error::Missing { what: "subnet", id: id.to_string(), option })
            }
            other => other,
        }
    }

    async fn subnet(&self, id: &str) -> Result<Subnet, Error> {
        if let Some(subnet) = self.known().subnets.get(id) {
            return Ok(subnet.clone());
        }
        let subnet = self
            .neutron
            .get_subnet(id)
            .await
            .map_err(|e| Error::neutron(format!("reading subnet {id}"), e))?;
        self.known().subnets.insert(id.to_string(), subnet.clone());
        Ok(subnet)
    }

    async fn mtu(&self, network_id: &str) -> Result<Option<u32>, Error> {
        if let Some(mtu) = self.known().mtus.get(network_id) {
            return Ok(*mtu);
        }
        let network = self
            .neutron
            .get_network(network_id)
            .await
            .map_err(|e| Error::neutron(format!("reading network {network_id}"), e))?;
        self.known().mtus.insert(network_id.to_string(), network.mtu);
        Ok(network.mtu)
    }

    /// Deletes every port of pod `uid`: `recorded` (its KuryrPort's vif)
    /// and what the index holds; a port already gone is done.
    pub async fn release_pod_ports(&self, uid: &str, recorded: Option<&str>) -> Result<(), Error> {
        let mut ids: Vec<String> =
            self.ports_of(uid).into_iter().map(|p| p.id.to_string()).collect();
        if let Some(id) = recorded.filter(|r| !ids.iter().any(|i| i == r)) {
            ids.push(id.to_string());
        }
        for id in ids {
            self.delete_port(uid, &id).await?;
        }
        Ok(())
    }

    async fn delete_port(&self, uid: &str, port_id: &str) -> Result<(), Error> {
        gone(self.neutron.delete_port(port_id).await)
            .map_err(|e| Error::neutron(format!("deleting port {port_id}"), e))?;
        self.forget_port(uid, port_id);
        info!(pod = uid, port = port_id, "deleted the pod's port");
        Ok(())
    }
}

fn missing_router(router: &str) -> Error {
    Error::Missing {
        what: "router",
        id: router.to_string(),
        option: "[namespace_subnet] pod_router",
    }
}

/// A delete's result, a 404 counting as done.
fn gone(result: openstack::Result<()>) -> openstack::Result<()> {
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openstack::fake::FakeNeutron;
    use serde_json::json;

    const CLUSTER: &str = "c1";

    fn side(fake: &FakeNeutron) -> NeutronSide {
        NeutronSide::new(
            fake.client(),
            CLUSTER.into(),
            NeutronDefaultsOptions::default(),
            NamespaceSubnetOptions {
                pod_subnet_pool: Some("sp1".into()),
                pod_router: Some("r1".into()),
            },
        )
    }

    fn ns() -> NamespaceIdentity {
        NamespaceIdentity { name: "shop".into(), uid: "u1".into() }
    }

    fn pod() -> PodIdentity {
        PodIdentity {
            namespace: "shop".into(),
            name: "web-0".into(),
            uid: "pod-uid".into(),
            node: "node-1".into(),
        }
    }

    fn port_json(id: &str, device_id: &str) -> serde_json::Value {
        json!({"id": id, "network_id": "n1", "mac_address": "fa:16:3e:00:00:01",
               "device_id": device_id, "device_owner": "compute:kuryr",
               "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.1.5"}],
               "binding:vif_type": "ovs", "status": "DOWN",
               "tags": ["compute:kuryr", "kuryr.pod.ns:shop", "kuryr.k8s.cluster:c1"]})
    }

    fn script_namespace_create(fake: &FakeNeutron) {
        fake.get("/v2.0/networks", json!({"networks": []}));
        fake.on("POST", "/v2.0/networks", 201, json!({"network": {"id": "n1", "mtu": 1442}}));
        fake.ok("PUT", "/v2.0/networks/n1/tags", json!({"tags": []}));
        fake.get("/v2.0/subnetpools/sp1", json!({"subnetpool": {"id": "sp1", "ip_version": 4}}));
        fake.on(
            "POST",
            "/v2.0/subnets",
            201,
            json!({"subnet": {"id": "s1", "network_id": "n1", "cidr": "10.0.1.0/24",
                              "gateway_ip": "10.0.1.1"}}),
        );
        fake.ok("PUT", "/v2.0/subnets/s1/tags", json!({"tags": []}));
        fake.ok(
            "PUT",
            "/v2.0/routers/r1/add_router_interface",
            json!({"id": "r1", "subnet_id": "s1", "port_id": "rp1"}),
        );
    }

    #[tokio::test]
    async fn a_namespace_gets_a_tagged_network_subnet_and_router_interface() {
        let fake = FakeNeutron::start().await;
        script_namespace_create(&fake);
        let side = side(&fake);
        let net = side.ensure_namespace_network(&ns()).await.expect("network");
        assert_eq!(
            net,
            NamespaceNetwork {
                network_id: "n1".into(),
                subnet_id: "s1".into(),
                cidr: "10.0.1.0/24".into(),
                router_id: "r1".into()
            }
        );
        assert_eq!(
            fake.lines(),
            [
                "GET /v2.0/networks",
                "POST /v2.0/networks",
                "PUT /v2.0/networks/n1/tags",
                "GET /v2.0/subnetpools/sp1",
                "POST /v2.0/subnets",
                "PUT /v2.0/subnets/s1/tags",
                "PUT /v2.0/routers/r1/add_router_interface",
            ]
        );
        let calls = fake.calls();
        assert!(calls[0].query.contains("name=u1%2Fshop"), "{}", calls[0].query);
        assert_eq!(calls[2].body["tags"], json!(["kuryr.k8s.ns:shop", "kuryr.k8s.cluster:c1"]));
        assert_eq!(calls[4].body["subnet"]["subnetpool_id"], "sp1");
        assert_eq!(calls[6].body, json!({"subnet_id": "s1"}));
        // The pods' vifs need neither the subnet nor the MTU again.
        fake.on("POST", "/v2.0/ports", 201, json!({"port": port_json("p1", "pod-uid")}));
        let port = side.pod_port(&pod(), "n1", "s1").await.expect("port");
        let vif = side.vif_of(&port).await.expect("vif");
        assert_eq!(vif.mtu, Some(1442));
        assert_eq!(vif.layout.addresses[0].address.to_string(), "10.0.1.5/24");
        assert_eq!(fake.lines().len(), 8, "one POST more: {:?}", fake.lines());
    }

    #[tokio::test]
    async fn a_network_made_before_a_crash_is_found_and_finished() {
        let fake = FakeNeutron::start().await;
        script_namespace_create(&fake);
        // POSTed, not tagged, subnet attached already.
        fake.get("/v2.0/networks", json!({"networks": [{"id": "n1", "mtu": 1442, "tags": []}]}));
        fake.get(
            "/v2.0/subnets",
            json!({"subnets": [{"id": "s1", "network_id": "n1", "cidr": "10.0.1.0/24",
                                "tags": ["kuryr.k8s.ns:shop", "kuryr.k8s.cluster:c1"]}]}),
        );
        fake.get("/v2.0/ports", json!({"ports": [{"id": "rp1"}]}));
        let side = side(&fake);
        side.ensure_namespace_network(&ns()).await.expect("network");
        assert_eq!(
            fake.lines(),
            [
                "GET /v2.0/networks",
                "PUT /v2.0/networks/n1/tags",
                "GET /v2.0/subnets",
                "GET /v2.0/ports",
            ],
            "no POST, no second interface"
        );
    }

    #[tokio::test]
    async fn a_missing_pool_or_router_is_named() {
        let fake = FakeNeutron::start().await;
        script_namespace_create(&fake);
        fake.on(
            "GET",
            "/v2.0/subnetpools/sp1",
            404,
            json!({"NeutronError": {"type": "SubnetPoolNotFound", "message": "no", "detail": ""}}),
        );
        let side = side(&fake);
        let err = side.ensure_namespace_network(&ns()).await.expect_err("no pool");
        assert!(matches!(err, Error::Missing { what: "subnetpool", .. }), "{err}");
        assert_eq!(err.kind(), "NotFound");
        fake.get("/v2.0/subnetpools/sp1", json!({"subnetpool": {"id": "sp1", "ip_version": 4}}));
        fake.on(
            "PUT",
            "/v2.0/routers/r1/add_router_interface",
            404,
            json!({"NeutronError": {"type": "RouterNotFound", "message": "Router r1 could not be found", "detail": ""}}),
        );
        let err = side.ensure_namespace_network(&ns()).await.expect_err("no router");
        assert!(err.to_string().contains("router r1"), "{err}");
    }

    #[tokio::test]
    async fn cleanup_waits_for_pods_then_deletes_everything_once() {
        let fake = FakeNeutron::start().await;
        fake.get("/v2.0/ports", json!({"ports": [{"id": "p1"}]}));
        let side = side(&fake);
        let recorded = Some(("n1".to_string(), Some("s1".to_string())));
        let step = side.delete_namespace_network(&ns(), recorded.clone()).await.expect("wait");
        assert_eq!(step, Cleanup::PortsRemain(1));
        fake.get("/v2.0/ports", json!({"ports": []}));
        // The interface is gone already: a 404 is done, as are the deletes.
        fake.on(
            "PUT",
            "/v2.0/routers/r1/remove_router_interface",
            404,
            json!({"NeutronError": {"type": "RouterInterfaceNotFoundForSubnet", "message": "", "detail": ""}}),
        );
        fake.on("DELETE", "/v2.0/subnets/s1", 204, json!(null));
        let step = side.delete_namespace_network(&ns(), recorded).await.expect("done");
        assert_eq!(step, Cleanup::Done);
        assert_eq!(
            fake.lines()[1..],
            [
                "GET /v2.0/ports",
                "PUT /v2.0/routers/r1/remove_router_interface",
                "DELETE /v2.0/subnets/s1",
                "DELETE /v2.0/networks/n1",
            ]
        );
    }

    #[tokio::test]
    async fn a_pod_costs_a_post_and_a_delete_and_a_crash_leaves_no_second_port() {
        let fake = FakeNeutron::start().await;
        fake.get(
            "/v2.0/ports",
            json!({"ports": [port_json("p0", "other-pod"), port_json("p1", "pod-uid")]}),
        );
        fake.get("/v2.0/subnets/s1", json!({"subnet": {"id": "s1", "cidr": "10.0.1.0/24"}}));
        fake.get("/v2.0/networks/n1", json!({"network": {"id": "n1", "mtu": 1442}}));
        fake.on("DELETE", "/v2.0/ports/p1", 204, json!(null));
        let side = side(&fake);
        assert_eq!(side.index_ports().await.expect("index"), 2);
        assert!(fake.calls()[0].query.contains("tags=kuryr.k8s.cluster%3Ac1"));
        // POSTed before the crash, status never written: found, not made.
        let port = side.pod_port(&pod(), "n1", "s1").await.expect("indexed");
        assert_eq!(port.id, "p1");
        side.vif_of(&port).await.expect("vif");
        side.vif_of(&port).await.expect("vif, known");
        side.release_pod_ports("pod-uid", Some("p1")).await.expect("released");
        side.release_pod_ports("pod-uid", Some("p1")).await.expect("gone is done");
        assert!(side.ports_of("pod-uid").is_empty());
        assert_eq!(
            fake.lines(),
            [
                "GET /v2.0/ports",
                "GET /v2.0/subnets/s1",
                "GET /v2.0/networks/n1",
                "DELETE /v2.0/ports/p1",
                "DELETE /v2.0/ports/p1",
            ]
        );
        fake.assert_no("POST");
    }

    #[tokio::test]
    async fn ports_asked_for_during_a_post_go_together_in_one_bulk_post() {
        let fake = FakeNeutron::start().await;
        // One reply for both shapes: a single POST reads `port`, a bulk `ports`.
        fake.on(
            "POST",
            "/v2.0/ports",
            201,
            json!({"port": port_json("p1", "u1"),
                   "ports": [port_json("p2", "u2"), port_json("p3", "u3")]}),
        );
        let side = side(&fake);
        let pods: Vec<PodIdentity> =
            (1..=3).map(|i| PodIdentity { uid: format!("u{i}"), ..pod() }).collect();
        let (a, b, c) = tokio::join!(
            side.pod_port(&pods[0], "n1", "s1"),
            side.pod_port(&pods[1], "n1", "s1"),
            side.pod_port(&pods[2], "n1", "s1"),
        );
        let ids: Vec<String> =
            [a, b, c].into_iter().map(|p| p.expect("port").id.to_string()).collect();
        assert_eq!(ids, ["p1", "p2", "p3"]);
        assert_eq!(fake.lines(), ["POST /v2.0/ports", "POST /v2.0/ports"]);
        let bulk = &fake.calls()[1].body["ports"];
        assert_eq!(bulk.as_array().map(Vec::len), Some(2), "{bulk}");
        assert_eq!(bulk[0]["device_id"], "u2");
        assert_eq!(side.ports_of("u3").len(), 1, "indexed by the sender");
    }

    /// Not a tokio test: the fault proxy runs its own runtime.
    #[test]
    fn a_post_without_an_answer_is_looked_for_before_another() {
        use kuryr_testkit::fault_proxy::{Fault, FaultProxy};
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let fake = rt.block_on(FakeNeutron::start());
        let upstream = fake.url().trim_start_matches("http://").parse().expect("address");
        let proxy = FaultProxy::start(upstream);
        // Neutron made the port; its answer never came.
        proxy.add("POST", "/v2.0/ports", Fault::Reset, Some(1));
        fake.get("/v2.0/ports", json!({"ports": [port_json("p1", "pod-uid")]}));
        let neutron = Neutron::new(openstack::AuthOptions::noauth(proxy.url())).expect("client");
        let side = NeutronSide::new(
            neutron,
            CLUSTER.into(),
            NeutronDefaultsOptions::default(),
            NamespaceSubnetOptions::default(),
        );
        rt.block_on(async {
            let err = side.pod_port(&pod(), "n1", "s1").await.expect_err("no answer");
            assert_eq!(err.kind(), "NeutronUnreachable", "{err}");
            let port = side.pod_port(&pod(), "n1", "s1").await.expect("found");
            assert_eq!(port.id, "p1");
        });
        let calls = fake.calls();
        assert_eq!(fake.lines(), ["GET /v2.0/ports"], "one look, no second POST");
        assert!(calls[0].query.contains("device_id=pod-uid"), "{}", calls[0].query);
        drop(proxy);
    }

    #[tokio::test]
    async fn neutron_failures_have_kinds() {
        let fake = FakeNeutron::start().await;
        let side = side(&fake);
        for (ty, kind) in [
            ("OverQuota", "OverQuota"),
            ("IpAddressGenerationFailure", "SubnetFull"),
            ("SecurityGroupNotFound", "NotFound"),
            ("InvalidInput", "NeutronError"),
        ] {
            fake.on(
                "POST",
                "/v2.0/ports",
                409,
                json!({"NeutronError": {"type": ty, "message": "m", "detail": ""}}),
            );
            let err = side.pod_port(&pod(), "n1", "s1").await.expect_err(ty);
            assert_eq!(err.kind(), kind, "{ty}");
            assert!(err.to_string().contains("creating the port of pod shop/web-0"), "{err}");
        }
        fake.on("POST", "/v2.0/ports", 503, json!({"message": "down"}));
        let err = side.pod_port(&pod(), "n1", "s1").await.expect_err("503");
        assert_eq!(err.kind(), "NeutronUnreachable");
    }
}
