//! The stack under test: an admin Neutron client on the kit's own
//! runtime, the stack's nodes, the lookups tests make through the client,
//! and upstream's id tags (written out here, not taken from the code under
//! test).
//!
//! The stack handle knows its nodes ([`Stack::nodes`], one [`Node`] per
//! host of `scripts/stack`: one today, [`Stack::local`]); what a test needs
//! of a host (the `binding:host_id` of its ports, its bridge, OVSDB socket
//! and dockerd) it asks that node, so a multi-node test iterates
//! `stack.nodes` with the same helpers.

use std::future::Future;
use std::time::Duration;

use openstack::neutron::{
    Network, NetworkCreate, Neutron, Port, Query, Subnet, SubnetCreate, SubnetPool,
};
use openstack::AuthOptions;

use crate::{fresh_v4, wait_for, Node};

/// The stack under test.
pub struct Stack {
    rt: tokio::runtime::Runtime,
    /// An admin Neutron client.
    pub neutron: Neutron,
    /// The stack's nodes, the one the tests run on first (one today).
    pub nodes: Vec<Node>,
}

/// Whether the stack under test runs in auth `mode` (`noauth` or
/// `keystone`, as `scripts/stack env` says in `KURYR_STACK_AUTH`); when it
/// does not (or there is none), prints the test's skip notice.
pub fn stack_in_mode(test: &str, mode: &str) -> bool {
    let actual = std::env::var("KURYR_STACK_AUTH").unwrap_or_default();
    if actual != mode {
        let how = if mode == "keystone" { " --keystone" } else { "" };
        eprintln!(
            "{test}: skipped: needs the {mode} stack (scripts/stack up{how}; eval \"$(scripts/stack env)\"), not {actual:?}"
        );
    }
    actual == mode
}

/// The stack, or `None` (after printing why) when the test must skip.
pub fn stack(test: &str) -> Option<Stack> {
    let Ok(auth) = std::env::var("KURYR_STACK_AUTH") else {
        eprintln!("{test}: skipped: no stack (run via scripts/test)");
        return None;
    };
    match auth.as_str() {
        "noauth" => {}
        "keystone" => {
            eprintln!(
                "{test}: skipped: the Docker tests run in noauth mode only \
                 (the Keystone path is tested in the openstack crate)"
            );
            return None;
        }
        other => panic!("KURYR_STACK_AUTH={other:?}: expected noauth or keystone"),
    }
    let opts = AuthOptions::from_env().expect("OS_* variables from scripts/stack env");
    let neutron = Neutron::new(opts).expect("a Neutron client for the stack");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    Some(Stack { rt, neutron, nodes: vec![Node::from_env()] })
}

impl Stack {
    /// The node the tests run on (the stack's only one today): where their
    /// commands run and where Kuryr binds their ports.
    pub fn local(&self) -> &Node {
        self.nodes.first().expect("a stack has at least one node")
    }

    /// Runs a future on the kit's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// What `get` (a Neutron GET of object `id`) finds, or None on a 404.
    fn found<T>(
        &self,
        id: &str,
        get: impl Future<Output = Result<T, openstack::Error>>,
    ) -> Option<T> {
        match self.block_on(get) {
            Ok(object) => Some(object),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("GET {} {id}: {e}", std::any::type_name::<T>()),
        }
    }

    /// What `list` (a Neutron list) returns; a failure fails the test.
    fn listed<T>(&self, list: impl Future<Output = Result<Vec<T>, openstack::Error>>) -> Vec<T> {
        self.block_on(list)
            .unwrap_or_else(|e| panic!("listing {}: {e}", std::any::type_name::<T>()))
    }

    /// A network, or None when Neutron has none with that id.
    pub fn network(&self, id: &str) -> Option<Network> {
        self.found(id, self.neutron.get_network(id))
    }

    /// A subnet, or None.
    pub fn subnet(&self, id: &str) -> Option<Subnet> {
        self.found(id, self.neutron.get_subnet(id))
    }

    /// A subnetpool, or None.
    pub fn subnetpool(&self, id: &str) -> Option<SubnetPool> {
        self.found(id, self.neutron.get_subnetpool(id))
    }

    /// A port, or None.
    pub fn port(&self, id: &str) -> Option<Port> {
        self.found(id, self.neutron.get_port(id))
    }

    /// Networks matching the query.
    pub fn networks(&self, query: Query) -> Vec<Network> {
        self.listed(self.neutron.list_networks(&query))
    }

    /// Subnets matching the query.
    pub fn subnets(&self, query: Query) -> Vec<Subnet> {
        self.listed(self.neutron.list_subnets(&query))
    }

    /// The one subnet of a network: asserts the network has exactly one.
    pub fn only_subnet_of(&self, network_id: &str) -> Subnet {
        let mut subnets = self.subnets(Query::new().network_id(network_id));
        assert_eq!(subnets.len(), 1, "one subnet on network {network_id}: {subnets:#?}");
        subnets.remove(0)
    }

    /// Subnetpools matching the query.
    pub fn subnetpools(&self, query: Query) -> Vec<SubnetPool> {
        self.listed(self.neutron.list_subnetpools(&query))
    }

    /// Ports matching the query.
    pub fn ports(&self, query: Query) -> Vec<Port> {
        self.listed(self.neutron.list_ports(&query))
    }

    /// Neutron networks tagged for a Docker network (upstream's two halves).
    pub fn networks_of_docker(&self, docker_net: &str) -> Vec<Network> {
        self.networks(Query::new().tags(id_tags(docker_net)))
    }

    /// The one Neutron network Kuryr made or adopted for a Docker network.
    pub fn network_of_docker(&self, docker_net: &str) -> Network {
        let mut found = self.networks_of_docker(docker_net);
        assert_eq!(
            found.len(),
            1,
            "exactly one Neutron network tagged for Docker network {docker_net}: {found:#?}"
        );
        found.remove(0)
    }

    /// The ports of an endpoint (device_id = endpoint id).
    pub fn ports_of_endpoint(&self, endpoint: &str) -> Vec<Port> {
        self.ports(Query::new().device_id(endpoint))
    }

    /// The one port of an endpoint.
    pub fn port_of_endpoint(&self, endpoint: &str) -> Port {
        let mut ports = self.ports_of_endpoint(endpoint);
        assert_eq!(
            ports.len(),
            1,
            "exactly one Neutron port with device_id {endpoint}: {ports:#?}"
        );
        ports.remove(0)
    }

    /// Subnetpools named `kuryrPool-<cidr>`.
    pub fn kuryr_pools(&self, cidr: &str) -> Vec<SubnetPool> {
        self.subnetpools(Query::new().name(format!("kuryrPool-{cidr}")))
    }

    /// Subnets with this cidr (any network).
    pub fn subnets_with_cidr(&self, cidr: &str) -> Vec<Subnet> {
        self.subnets(Query::new().cidr(cidr))
    }

    /// Waits until an endpoint has exactly one port (device_id = endpoint
    /// id) and Neutron reports it ACTIVE; returns it.
    pub fn wait_active_port_of_endpoint(&self, endpoint: &str, timeout: Duration) -> Port {
        wait_for(&format!("one ACTIVE port with device_id {endpoint}"), timeout, || {
            let ports = self.ports_of_endpoint(endpoint);
            (ports.len() == 1 && ports[0].status == "ACTIVE").then(|| ports[0].clone())
        })
    }

    /// Creates a Neutron network (admin up) as a user would before
    /// handing it to Kuryr.
    pub fn create_network_named(&self, name: impl Into<String>) -> Network {
        let name = name.into();
        self.block_on(self.neutron.create_network(&NetworkCreate {
            name: Some(name.clone()),
            admin_state_up: Some(true),
            ..NetworkCreate::default()
        }))
        .unwrap_or_else(|e| panic!("creating network {name}: {e}"))
    }

    /// Gives a network a [`fresh_v4`] /24 subnet, gateway `.1`; returns the
    /// prefix (`a.b.c`).
    pub fn add_fresh_subnet(&self, network_id: &str) -> String {
        let prefix = fresh_v4();
        let gateway = format!("{prefix}.1").parse().expect("a gateway address");
        self.create_subnet_named(network_id, None, &format!("{prefix}.0/24"), Some(gateway));
        prefix
    }

    /// A subnet `cidr` on a network, as an operator makes one: named
    /// `name` when given, with `gateway` (None: no gateway).
    pub fn create_subnet_named(
        &self,
        network_id: &str,
        name: Option<String>,
        cidr: &str,
        gateway: Option<std::net::IpAddr>,
    ) -> Subnet {
        self.block_on(self.neutron.create_subnet(&SubnetCreate {
            name,
            gateway_ip: Some(gateway),
            ..SubnetCreate::new(network_id.to_string(), cidr.to_string())
        }))
        .unwrap_or_else(|e| panic!("creating subnet {cidr} on {network_id}: {e}"))
    }

    /// Best-effort cleanup of a network a test made: each port's host
    /// devices and the port, then the network.
    pub fn remove_network_and_ports(&self, network_id: &str) {
        let ports = self
            .block_on(self.neutron.list_ports(&Query::new().network_id(network_id)))
            .unwrap_or_default();
        for port in ports {
            self.local().cleanup_devices(&port.id);
            let _ = self.block_on(self.neutron.delete_port(&port.id));
        }
        let _ = self.block_on(self.neutron.delete_network(network_id));
    }

    /// The ports of a network other than Neutron's own
    /// (`network:distributed` metadata port, `network:dhcp`, routers).
    pub fn non_neutron_ports(&self, network_id: &str) -> Vec<Port> {
        self.ports(Query::new().network_id(network_id))
            .into_iter()
            .filter(|p| !p.device_owner.starts_with("network:"))
            .collect()
    }

    /// The id of a default subnetpool (`kuryr`, `kuryr6`).
    pub fn default_pool(&self, name: &str) -> SubnetPool {
        let mut pools = self.subnetpools(Query::new().name(name));
        assert_eq!(pools.len(), 1, "default subnetpool {name} must exist once");
        pools.remove(0)
    }
}

/// Upstream's network/endpoint id tags: `kuryr.net.uuid.lh:<id[0:32]>`,
/// `kuryr.net.uuid.uh:<id[32:64]>` (written out here, not taken from the
/// code under test).
pub fn id_tags(id: &str) -> Vec<String> {
    assert_eq!(id.len(), 64, "a Docker id has 64 hex digits: {id}");
    vec![format!("kuryr.net.uuid.lh:{}", &id[..32]), format!("kuryr.net.uuid.uh:{}", &id[32..])]
}

/// Our addition on ports: the Docker network id in two halves.
pub fn docker_net_tags(id: &str) -> Vec<String> {
    vec![format!("kuryr.docker.net.lh:{}", &id[..32]), format!("kuryr.docker.net.uh:{}", &id[32..])]
}
