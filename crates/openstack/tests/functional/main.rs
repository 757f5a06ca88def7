//! Functional tests against the real Neutron (and Keystone) of `scripts/stack`.
//!
//! They read `eval "$(scripts/stack env)"`: the `OS_*` variables, plus
//! `KURYR_STACK_AUTH` (noauth|keystone), `KURYR_STACK_HOST`,
//! `KURYR_STACK_BRIDGE` and, in keystone mode, `KURYR_STACK_DEMO_USER`,
//! `_PASSWORD` and `_PROJECT`. Without `KURYR_STACK_AUTH` every test prints
//! a skip notice and passes. Each test names its objects with a random
//! suffix and deletes them, even when it fails (see `Cleanup`).

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use openstack::neutron::{
    AddressPair, FixedIpRequest, FloatingIpCreate, FloatingIpUpdate, Network, NetworkCreate,
    NetworkUpdate, Neutron, Port, PortCreate, PortId, PortUpdate, Query, Quota, Resource,
    SecurityGroupCreate, SecurityGroupRuleCreate, SubPort, Subnet, SubnetCreate, SubnetPoolCreate,
    SubnetPoolUpdate, SubnetUpdate, TrunkCreate, TrunkUpdate,
};
use openstack::{AuthOptions, AuthType, Client};

/// The stack under test ([`stack`]), or a skip: the calling test returns at
/// once when there is none.
macro_rules! stack_or_skip {
    ($test:expr) => {
        match stack($test) {
            Some(s) => s,
            None => return,
        }
    };
}

/// The stack under test with a cleanup and a name suffix for the test's
/// objects, or a skip (see [`stack_or_skip`]).
macro_rules! setup_or_skip {
    ($test:expr) => {{
        let s = stack_or_skip!($test);
        let c = Cleanup::new(&s);
        (s, c, suffix())
    }};
}

mod binding;
mod extensions;
mod ports;

/// Whether a lookup says the object is gone (a 404).
fn is_gone<T>(lookup: Result<T, openstack::Error>) -> bool {
    lookup.err().is_some_and(|e| e.is_not_found())
}

// ------------------------------------------------------------- harness

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    NoAuth,
    Keystone,
}

struct Stack {
    mode: Mode,
    opts: AuthOptions,
    neutron: Neutron,
    host: String,
    bridge: String,
}

/// The stack under test, or `None` (after printing why) when there is none.
fn stack(test: &str) -> Option<Stack> {
    let Ok(auth) = std::env::var("KURYR_STACK_AUTH") else {
        eprintln!("{test}: skipped: no stack (run via scripts/test)");
        return None;
    };
    let mode = match auth.as_str() {
        "noauth" => Mode::NoAuth,
        "keystone" => Mode::Keystone,
        other => panic!("KURYR_STACK_AUTH={other:?}: expected noauth or keystone"),
    };
    let opts = AuthOptions::from_env().expect("OS_* variables from scripts/stack env");
    let neutron = Neutron::new(opts.clone()).expect("a client for the stack");
    Some(Stack {
        mode,
        opts,
        neutron,
        host: std::env::var("KURYR_STACK_HOST").unwrap_or_else(|_| hostname()),
        bridge: std::env::var("KURYR_STACK_BRIDGE").unwrap_or_else(|_| "br-int".into()),
    })
}

fn only_in(test: &str, s: &Stack, mode: Mode) -> bool {
    if s.mode != mode {
        eprintln!("{test}: skipped: only for {mode:?} mode (stack is {:?})", s.mode);
        return false;
    }
    true
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// 8 random hex digits for unique names.
fn suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let h = std::collections::hash_map::RandomState::new().hash_one((
        SystemTime::now(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    ));
    format!("{:08x}", h as u32)
}

/// Objects to delete when a test ends, in reverse order of registration,
/// whether the test passed or panicked. Drop runs its own runtime and client
/// on a separate thread, because the test's runtime is blocked by then.
struct Cleanup {
    opts: AuthOptions,
    items: Mutex<Vec<Item>>,
}

#[derive(Debug)]
enum Item {
    Neutron(Resource, String),
    Quota(String),
    /// The default security group Neutron makes for a new project.
    ProjectSecurityGroups(String),
    OvsPort(String, String),
    Link(String),
    Netns(String),
}

impl Cleanup {
    fn new(s: &Stack) -> Self {
        Cleanup { opts: s.opts.clone(), items: Mutex::new(Vec::new()) }
    }

    fn add(&self, item: Item) {
        self.items.lock().unwrap().push(item);
    }

    fn neutron(&self, res: Resource, id: &str) {
        self.add(Item::Neutron(res, id.to_owned()));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let items: Vec<Item> = std::mem::take(&mut *self.items.lock().unwrap());
        if items.is_empty() {
            return;
        }
        let opts = self.opts.clone();
        let worker = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let neutron = Neutron::new(opts).unwrap();
                for item in items.into_iter().rev() {
                    let outcome = match &item {
                        Item::Neutron(res, id) => match neutron.delete(*res, id).await {
                            Err(e) if !e.is_not_found() => Err(e.to_string()),
                            _ => Ok(()),
                        },
                        Item::Quota(project) => {
                            neutron.reset_quota(project).await.map_err(|e| e.to_string())
                        }
                        Item::ProjectSecurityGroups(project) => {
                            delete_project_groups(&neutron, project).await
                        }
                        Item::OvsPort(bridge, name) => sh(
                            "ovs-vsctl",
                            &["--timeout=10", "--if-exists", "del-port", bridge, name],
                        ),
                        Item::Link(name) => {
                            if link_exists(name) {
                                sh("ip", &["link", "del", name])
                            } else {
                                Ok(())
                            }
                        }
                        Item::Netns(name) => sh("ip", &["netns", "del", name]),
                    };
                    if let Err(e) = outcome {
                        eprintln!("cleanup of {item:?} failed: {e}");
                    }
                }
            });
        });
        let _ = worker.join();
    }
}

async fn delete_project_groups(neutron: &Neutron, project: &str) -> Result<(), String> {
    let groups = neutron
        .list_security_groups(&Query::new().project_id(project).fields(["id"]))
        .await
        .map_err(|e| e.to_string())?;
    for g in groups {
        match neutron.delete_security_group(&g.id).await {
            Err(e) if !e.is_not_found() => return Err(e.to_string()),
            _ => {}
        }
    }
    Ok(())
}

fn sh(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// The body of a network named after the test's `tag`.
fn named_network(tag: &str) -> NetworkCreate {
    NetworkCreate { name: Some(format!("ostest-{tag}")), ..Default::default() }
}

/// Creates a network, registered for cleanup.
async fn create_network(s: &Stack, c: &Cleanup, body: NetworkCreate) -> Network {
    let net = s.neutron.create_network(&body).await.unwrap();
    c.neutron(Resource::Networks, &net.id);
    net
}

/// Creates a subnet, registered for cleanup.
async fn create_subnet(s: &Stack, c: &Cleanup, body: SubnetCreate) -> Subnet {
    let subnet = s.neutron.create_subnet(&body).await.unwrap();
    c.neutron(Resource::Subnets, &subnet.id);
    subnet
}

/// A port body as Kuryr makes them: named after the test's `tag`, owned by
/// the `compute:kuryr` device `dev-{tag}`.
fn kuryr_port(net: &Network, tag: &str) -> PortCreate {
    PortCreate {
        name: Some(format!("ostest-{tag}")),
        device_owner: Some("compute:kuryr".into()),
        device_id: Some(format!("dev-{tag}")),
        ..PortCreate::new(&net.id)
    }
}

/// A network with one IPv4 subnet, both registered for cleanup.
async fn network_with_subnet(s: &Stack, c: &Cleanup, tag: &str, cidr: &str) -> (Network, Subnet) {
    let net = create_network(s, c, named_network(tag)).await;
    let body =
        SubnetCreate { name: Some(format!("ostest-{tag}")), ..SubnetCreate::new(&net.id, cidr) };
    let subnet = create_subnet(s, c, body).await;
    (net, subnet)
}

async fn port_on(s: &Stack, c: &Cleanup, body: PortCreate) -> Port {
    let port = s.neutron.create_port(&body).await.unwrap();
    c.neutron(Resource::Ports, &port.id);
    port
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ids(ports: &[Port]) -> BTreeSet<PortId> {
    ports.iter().map(|p| p.id.clone()).collect()
}

/// The ports the tests made: Neutron's own (the `network:distributed`
/// metadata port ML2/OVN gives every network, DHCP, routers) left out.
fn ours(ports: Vec<Port>) -> Vec<Port> {
    ports.into_iter().filter(|p| !p.device_owner.starts_with("network:")).collect()
}

// ----------------------------------------------------------- discovery

#[tokio::test]
async fn extensions_include_what_kuryr_needs() {
    let s = stack_or_skip!("extensions_include_what_kuryr_needs");
    let aliases: BTreeSet<String> =
        s.neutron.list_extensions().await.unwrap().into_iter().map(|e| e.alias).collect();
    for needed in [
        "binding",
        "trunk",
        "trunk-details",
        "standard-attr-tag",
        "allowed-address-pairs",
        "revision-if-match",
        "pagination",
        "subnet_allocation",
    ] {
        assert!(aliases.contains(needed), "missing extension {needed}");
    }
}

// --------------------------------------------------- networks & subnets

#[tokio::test]
async fn network_and_subnet_crud() {
    let (s, c, tag) = setup_or_skip!("network_and_subnet_crud");
    let net = create_network(&s, &c, named_network(&tag)).await;
    assert_eq!(net.name, format!("ostest-{tag}"));
    assert!(net.admin_state_up);
    assert!(net.mtu.is_some());
    assert!(net.revision_number.is_some());
    assert!(net.network_type.is_some(), "admin sees provider:network_type");

    let by_name = Query::new().name(format!("ostest-{tag}"));
    let found = s.neutron.list_networks(&by_name).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, net.id);

    let rename = NetworkUpdate { name: Some(format!("ostest-{tag}-b")), ..Default::default() };
    let updated = s.neutron.update_network(&net.id, &rename).await.unwrap();
    assert_eq!(updated.name, format!("ostest-{tag}-b"));

    let body = SubnetCreate {
        name: Some(format!("ostest-{tag}")),
        gateway_ip: Some(Some(ip("10.77.0.1"))),
        allocation_pools: Some(vec![openstack::neutron::AllocationPool {
            start: ip("10.77.0.10"),
            end: ip("10.77.0.20"),
        }]),
        dns_nameservers: Some(vec!["10.77.0.53".into()]),
        enable_dhcp: Some(false),
        ..SubnetCreate::new(&net.id, "10.77.0.0/24")
    };
    let subnet = create_subnet(&s, &c, body).await;
    assert_eq!(subnet.cidr, "10.77.0.0/24");
    assert_eq!(subnet.ip_version, Some(4));
    assert_eq!(subnet.gateway_ip, Some(ip("10.77.0.1")));
    assert_eq!(subnet.allocation_pools[0].end, ip("10.77.0.20"));
    assert_eq!(subnet.dns_nameservers, ["10.77.0.53"]);
    assert!(!subnet.enable_dhcp);

    let got = s.neutron.get_network(&net.id).await.unwrap();
    assert_eq!(got.subnets, [subnet.id.as_str()]);

    let no_gw = s
        .neutron
        .update_subnet(&subnet.id, &SubnetUpdate { gateway_ip: Some(None), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(no_gw.gateway_ip, None);
    assert_eq!(s.neutron.get_subnet(&subnet.id).await.unwrap().gateway_ip, None);
    let on_net = Query::new().network_id(&net.id);
    let listed = s.neutron.list_subnets(&on_net).await.unwrap();
    assert_eq!(listed.len(), 1);

    let v6 = create_subnet(&s, &c, SubnetCreate::new(&net.id, "fd77::/64")).await;
    assert_eq!(v6.ip_version, Some(6));

    s.neutron.delete_subnet(&v6.id).await.unwrap();
    s.neutron.delete_subnet(&subnet.id).await.unwrap();
    let err = s.neutron.get_subnet(&subnet.id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.neutron_type(), Some("SubnetNotFound"));
    s.neutron.delete_network(&net.id).await.unwrap();
    let err = s.neutron.get_network(&net.id).await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.neutron_type(), Some("NetworkNotFound"));
    assert!(err.request_id().is_some_and(|r| r.starts_with("req-")));
}

#[tokio::test]
async fn subnetpool_crud_and_allocation() {
    let (s, c, tag) = setup_or_skip!("subnetpool_crud_and_allocation");
    // A prefix unlikely to collide with other tests' pools (no address
    // scope, so overlaps would be allowed anyway).
    let second = 100 + u8::from_str_radix(&tag[..2], 16).unwrap() % 100;
    let prefix = format!("10.{second}.0.0/16");
    let pool = s
        .neutron
        .create_subnetpool(&SubnetPoolCreate {
            name: format!("ostest-{tag}"),
            prefixes: vec![prefix.clone()],
            default_prefixlen: Some(26),
            min_prefixlen: Some(24),
            max_prefixlen: Some(28),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::SubnetPools, &pool.id);
    assert_eq!(pool.prefixes, [prefix.as_str()]);
    assert_eq!(pool.default_prefixlen, Some(26), "string prefixlens parse");
    assert_eq!(pool.min_prefixlen, Some(24));
    assert_eq!(pool.max_prefixlen, Some(28));
    assert_eq!(pool.ip_version, Some(4));

    let net = create_network(&s, &c, named_network(&tag)).await;
    let body = SubnetCreate {
        network_id: net.id.clone(),
        ip_version: 4,
        subnetpool_id: Some(pool.id.clone()),
        prefixlen: Some(28),
        ..Default::default()
    };
    let subnet = create_subnet(&s, &c, body).await;
    assert_eq!(subnet.subnetpool_id.as_deref(), Some(pool.id.as_str()));
    assert!(subnet.cidr.ends_with("/28"), "{}", subnet.cidr);
    assert!(subnet.cidr.starts_with(&format!("10.{second}.")));

    let rename = SubnetPoolUpdate { name: Some(format!("ostest-{tag}-b")), ..Default::default() };
    let updated = s.neutron.update_subnetpool(&pool.id, &rename).await.unwrap();
    assert_eq!(updated.name, format!("ostest-{tag}-b"));
    let by_new_name = Query::new().name(format!("ostest-{tag}-b"));
    let listed = s.neutron.list_subnetpools(&by_new_name).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].default_prefixlen, Some(26));
    assert_eq!(s.neutron.get_subnetpool(&pool.id).await.unwrap().id, pool.id);

    s.neutron.delete_subnet(&subnet.id).await.unwrap();
    s.neutron.delete_subnetpool(&pool.id).await.unwrap();
    assert!(is_gone(s.neutron.get_subnetpool(&pool.id).await));
}
