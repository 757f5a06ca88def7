//! A test's fixture: its plugin plus everything to clean up when the
//! test ends (containers, Docker networks, Neutron objects).

use std::cell::RefCell;
use std::process::{Command, Output};
use std::time::Duration;

use openstack::neutron::{Network, Query, Resource};

use crate::{
    attachment, docker, eventually, fresh_v4, id_tags, kuryr_bin, run, run_with_timeout, stack,
    stdout_of_success, Attachment, Kuryr, Stack,
};

/// Neutron objects a test made itself (deleted at the end, reverse order).
#[derive(Debug, Clone)]
enum Made {
    Neutron(Resource, String),
}

/// A test's plugin plus everything to clean up when the test ends.
pub struct Fixture {
    /// The stack.
    pub stack: Stack,
    /// This test's plugin.
    pub kuryr: Kuryr,
    containers: RefCell<Vec<String>>,
    networks: RefCell<Vec<String>>,
    docker_net_ids: RefCell<Vec<String>>,
    endpoints: RefCell<Vec<String>>,
    cidrs: RefCell<Vec<String>>,
    made: RefCell<Vec<Made>>,
}

impl Fixture {
    /// The fixture with the default `kuryr.conf` (nothing but what the
    /// test needs; credentials come from the environment).
    pub fn new(test: &str) -> Option<Fixture> {
        Fixture::with_config(test, "[DEFAULT]\n")
    }

    /// The fixture with this `kuryr.conf`.
    pub fn with_config(test: &str, config: &str) -> Option<Fixture> {
        let stack = stack(test)?;
        let kuryr = Kuryr::start(config);
        eprintln!("{test}: driver {}", kuryr.name);
        Some(Fixture::around(stack, kuryr))
    }

    /// The fixture with its plugin prepared but not started: the test
    /// starts it with `f.kuryr.launch()` (after another driver served
    /// first, say). Cleanup works either way.
    pub fn with_plugin_stopped(test: &str, config: &str) -> Option<Fixture> {
        let stack = stack(test)?;
        let kuryr = Kuryr::prepare(config);
        eprintln!("{test}: driver {} (not started yet)", kuryr.name);
        Some(Fixture::around(stack, kuryr))
    }

    fn around(stack: Stack, kuryr: Kuryr) -> Fixture {
        Fixture {
            stack,
            kuryr,
            containers: RefCell::default(),
            networks: RefCell::default(),
            docker_net_ids: RefCell::default(),
            endpoints: RefCell::default(),
            cidrs: RefCell::default(),
            made: RefCell::default(),
        }
    }

    /// `kuryr --config-file <this test's kuryr.conf> --host <the local
    /// node> <args>` to its end: whether it succeeded, and its stdout (its
    /// stdout and stderr are echoed into the test's output).
    pub fn kuryr_command(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(kuryr_bin())
            .arg("--config-file")
            .arg(&self.kuryr.config)
            .args(["--host", &self.stack.local().host])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running kuryr {args:?}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("kuryr {args:?}:\n{stdout}{stderr}");
        (out.status.success(), stdout)
    }

    /// The Docker driver name this test's plugin serves.
    pub fn driver(&self) -> &str {
        &self.kuryr.name
    }

    /// A name for a container or network unique to this test (≥ 2 chars).
    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.kuryr.name)
    }

    /// Remembers a cidr the test uses, to sweep `kuryrPool-<cidr>` and
    /// `kuryr-subnet-<cidr>` leftovers when it ends.
    pub fn uses_cidr(&self, cidr: &str) {
        self.cidrs.borrow_mut().push(cidr.to_string());
    }

    /// A [`fresh_v4`] /24 the test uses ([`Fixture::uses_cidr`]): its
    /// prefix (`a.b.c`) and the cidr (`a.b.c.0/24`).
    pub fn fresh_cidr(&self) -> (String, String) {
        let prefix = fresh_v4();
        let cidr = format!("{prefix}.0/24");
        self.uses_cidr(&cidr);
        (prefix, cidr)
    }

    /// A Docker network of this test's driver named [`Fixture::name`]`(what)`:
    /// its name and Docker id.
    pub fn network_named(&self, what: &str, args: &[&str]) -> (String, String) {
        let name = self.name(what);
        let id = self.create_network(&name, args);
        (name, id)
    }

    /// A Docker network `net` of this test's driver on a [`Fixture::fresh_cidr`]
    /// (`--subnet`): the cidr, the network's name and its Docker id.
    pub fn fresh_network(&self) -> (String, String, String) {
        let (_, cidr) = self.fresh_cidr();
        let (name, id) = self.network_named("net", &["--subnet", &cidr]);
        (cidr, name, id)
    }

    /// A [`Fixture::fresh_network`] and the one Neutron network Kuryr made
    /// for it: the cidr, the Docker name and id, and the Neutron network.
    pub fn fresh_neutron_network(&self) -> (String, String, String, Network) {
        let (cidr, name, id) = self.fresh_network();
        let network = self.stack.network_of_docker(&id);
        (cidr, name, id, network)
    }

    /// `docker network create -d <driver> --ipam-driver <driver> <args> <name>`;
    /// returns the Docker network id.
    pub fn create_network(&self, name: &str, args: &[&str]) -> String {
        let driver = self.driver().to_string();
        self.create_network_with(&driver, name, args)
    }

    /// Same, expected to fail: returns Docker's error message.
    pub fn create_network_fails(&self, name: &str, args: &[&str]) -> String {
        let out = self.try_create_network(name, args);
        assert!(
            !out.status.success(),
            "docker network create {name} {args:?} should have failed; it made {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    }

    fn try_create_network(&self, name: &str, args: &[&str]) -> Output {
        let driver = self.driver().to_string();
        self.try_create_network_with(&driver, name, args)
    }

    /// [`Fixture::create_network`] through another driver name (e.g. one
    /// registered by a spec file); the network is removed at the end too.
    pub fn create_network_with(&self, driver: &str, name: &str, args: &[&str]) -> String {
        let out = self.try_create_network_with(driver, name, args);
        let id =
            stdout_of_success(&format!("docker network create -d {driver} {name} {args:?}"), &out);
        self.docker_net_ids.borrow_mut().push(id.clone());
        id
    }

    fn try_create_network_with(&self, driver: &str, name: &str, args: &[&str]) -> Output {
        self.networks.borrow_mut().push(name.to_string());
        let mut all = vec!["network", "create", "-d", driver, "--ipam-driver", driver];
        all.extend_from_slice(args);
        all.push(name);
        run("docker", &all)
    }

    /// `docker run -d --network <net> --name <name> <extra> kbox sleep 1000`.
    pub fn run_detached(&self, name: &str, network: &str, extra: &[&str]) -> Attachment {
        let out = self.try_run_detached(name, network, extra);
        stdout_of_success(&format!("docker run {name}"), &out);
        let att = attachment(name, network);
        self.endpoints.borrow_mut().push(att.endpoint.clone());
        att
    }

    /// `docker run -d` of `kbox sleep 1000` on `network`; the output, success or not.
    pub fn try_run_detached(&self, name: &str, network: &str, extra: &[&str]) -> Output {
        self.try_run_detached_with("docker", name, network, extra)
    }

    /// Like [`Fixture::try_run_detached`] with another docker client (the
    /// engine's own 20.10 CLI speaks API 1.41, which `--mac-address` needs).
    pub fn try_run_detached_with(
        &self,
        client: &str,
        name: &str,
        network: &str,
        extra: &[&str],
    ) -> Output {
        self.containers.borrow_mut().push(name.to_string());
        let mut all = vec!["run", "-d", "--network", network, "--name", name];
        all.extend_from_slice(extra);
        all.extend_from_slice(&["kbox", "sleep", "1000"]);
        run(client, &all)
    }

    /// `docker rm -f`.
    pub fn remove_container(&self, name: &str) {
        docker(&["rm", "-f", name]);
        self.containers.borrow_mut().retain(|c| c != name);
    }

    /// `docker network disconnect <network> <container>`.
    pub fn disconnect(&self, network: &str, container: &str) {
        docker(&["network", "disconnect", network, container]);
    }

    /// `docker network rm`.
    pub fn remove_network(&self, name: &str) {
        docker(&["network", "rm", name]);
        self.networks.borrow_mut().retain(|n| n != name);
    }

    /// Records a Neutron object the test made itself.
    pub fn made(&self, res: Resource, id: &str) {
        self.made.borrow_mut().push(Made::Neutron(res, id.to_string()));
    }

    /// Asserts that Neutron holds nothing Kuryr made for this Docker
    /// network, these endpoints and cidrs: no port, subnet, Kuryr
    /// subnetpool or network; and no veth or OVS port of the given ports.
    pub fn assert_clean(&self, docker_net: &str, cidrs: &[&str], port_ids: &[&str]) {
        eventually("nothing left behind", || self.leftovers(docker_net, cidrs, port_ids));
    }

    /// Asserts that Neutron holds nothing Kuryr made for this Docker
    /// network and these cidrs (network, Kuryr subnetpool and subnets),
    /// whatever other containers of the test still run.
    pub fn assert_network_clean(&self, docker_net: &str, cidrs: &[&str]) {
        eventually("nothing left of the network", || self.network_leftovers(docker_net, cidrs));
    }

    fn leftovers(&self, docker_net: &str, cidrs: &[&str], port_ids: &[&str]) -> Vec<String> {
        let s = &self.stack;
        let mut left = self.network_leftovers(docker_net, cidrs);
        for port in port_ids {
            if s.port(port).is_some() {
                left.push(format!("Neutron port {port}"));
            }
            left.extend(s.local().leftovers(port));
        }
        for ep in self.endpoints.borrow().iter() {
            for p in s.ports_of_endpoint(ep) {
                left.push(format!("port {} of endpoint {ep}", p.id));
            }
            if !s.local().ovs_interfaces_with("vm-uuid", ep).is_empty() {
                left.push(format!("OVS interface of endpoint {ep}"));
            }
        }
        left
    }

    fn network_leftovers(&self, docker_net: &str, cidrs: &[&str]) -> Vec<String> {
        let s = &self.stack;
        let mut left = Vec::new();
        for n in s.networks_of_docker(docker_net) {
            left.push(format!("network {} ({}) tagged for {docker_net}", n.id, n.name));
        }
        for cidr in cidrs {
            for p in s.kuryr_pools(cidr) {
                left.push(format!("subnetpool {} kuryrPool-{cidr}", p.id));
            }
            for sn in s.subnets_with_cidr(cidr) {
                if sn.name == format!("kuryr-subnet-{cidr}") {
                    left.push(format!("subnet {} {}", sn.id, sn.name));
                }
            }
        }
        left
    }

    /// Waits until Neutron no longer has this port (and its devices are gone).
    pub fn assert_port_gone(&self, port_id: &str) {
        eventually(&format!("port {port_id} deleted"), || {
            let mut left = self.stack.local().leftovers(port_id);
            if self.stack.port(port_id).is_some() {
                left.push(format!("Neutron port {port_id}"));
            }
            left
        });
    }

    /// Best effort removal of everything the test made.
    fn sweep(&self) {
        for c in self.containers.borrow().iter() {
            let _ = run_with_timeout("docker", &["rm", "-f", c], Duration::from_secs(60));
        }
        for n in self.networks.borrow().iter().rev() {
            let _ = run_with_timeout("docker", &["network", "rm", n], Duration::from_secs(60));
        }
    }

    fn sweep_neutron(&self) {
        let s = &self.stack;
        let n = &s.neutron;
        let quiet = |what: String, r: Result<(), openstack::Error>| {
            if let Err(e) = r {
                if !e.is_not_found() {
                    eprintln!("cleanup: {what}: {e}");
                }
            }
        };
        // The ports a query finds, with their devices on the local node.
        let delete_ports = |query: Query| {
            for p in s.block_on(n.list_ports(&query)).unwrap_or_default() {
                s.local().cleanup_devices(&p.id);
                quiet(format!("port {}", p.id), s.block_on(n.delete_port(&p.id)));
            }
        };
        for ep in self.endpoints.borrow().iter() {
            delete_ports(Query::new().device_id(ep));
        }
        for id in self.docker_net_ids.borrow().iter() {
            let Ok(nets) = s.block_on(n.list_networks(&Query::new().tags(id_tags(id)))) else {
                continue;
            };
            for net in nets {
                let made_by_test =
                    self.made.borrow().iter().any(|Made::Neutron(_, made)| *made == net.id);
                if made_by_test {
                    continue;
                }
                delete_ports(Query::new().network_id(&net.id));
                quiet(format!("network {}", net.id), s.block_on(n.delete_network(&net.id)));
            }
        }
        for cidr in self.cidrs.borrow().iter() {
            if let Ok(subnets) =
                s.block_on(n.list_subnets(&Query::new().name(format!("kuryr-subnet-{cidr}"))))
            {
                for sn in subnets {
                    delete_ports(Query::new().fixed_ip_subnet(&sn.id));
                    quiet(format!("subnet {}", sn.id), s.block_on(n.delete_subnet(&sn.id)));
                }
            }
            if let Ok(pools) =
                s.block_on(n.list_subnetpools(&Query::new().name(format!("kuryrPool-{cidr}"))))
            {
                for p in pools {
                    quiet(format!("subnetpool {}", p.id), s.block_on(n.delete_subnetpool(&p.id)));
                }
            }
        }
        let made: Vec<Made> = self.made.borrow().iter().rev().cloned().collect();
        for Made::Neutron(res, id) in made {
            if res == Resource::Networks {
                delete_ports(Query::new().network_id(&id));
            }
            quiet(format!("{res} {id}"), s.block_on(n.delete(res, &id)));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Docker objects go first, while the plugin still answers.
        self.sweep();
        self.kuryr.kill();
        self.sweep_neutron();
    }
}

// ------------------------------------------------------------- gc, status, crash

impl Fixture {
    /// Registers a container the test runs itself (e.g. from another
    /// thread), so the fixture removes it at the end.
    pub fn track_container(&self, name: &str) {
        self.containers.borrow_mut().push(name.to_string());
    }
}
