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
        eprintln!(
            "{test}: skipped: only for {mode:?} mode (stack is {:?})",
            s.mode
        );
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
        Cleanup {
            opts: s.opts.clone(),
            items: Mutex::new(Vec::new()),
        }
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
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let neutron = Neutron::new(opts).unwrap();
                for item in items.into_iter().rev() {
                    let outcome = match &item {
                        Item::Neutron(res, id) => match neutron.delete(*res, id).await {
                            Err(e) if !e.is_not_found() => Err(e.to_string()),
                            _ => Ok(()),
                        },
                        Item::Quota(project) => neutron
                            .reset_quota(project)
                            .await
                            .map_err(|e| e.to_string()),
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
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// A network with one IPv4 subnet, both registered for cleanup.
async fn network_with_subnet(s: &Stack, c: &Cleanup, tag: &str, cidr: &str) -> (Network, Subnet) {
    let net = s
        .neutron
        .create_network(&NetworkCreate {
            name: Some(format!("ostest-{tag}")),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::Networks, &net.id);
    let subnet = s
        .neutron
        .create_subnet(&SubnetCreate {
            name: Some(format!("ostest-{tag}")),
            ..SubnetCreate::new(&net.id, cidr)
        })
        .await
        .unwrap();
    c.neutron(Resource::Subnets, &subnet.id);
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
    ports
        .into_iter()
        .filter(|p| !p.device_owner.starts_with("network:"))
        .collect()
}

// ----------------------------------------------------------- discovery

#[tokio::test]
async fn extensions_include_what_kuryr_needs() {
    let Some(s) = stack("extensions_include_what_kuryr_needs") else {
        return;
    };
    let aliases: BTreeSet<String> = s
        .neutron
        .list_extensions()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.alias)
        .collect();
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
    let Some(s) = stack("network_and_subnet_crud") else {
        return;
    };
    let c = Cleanup::new(&s);
    let tag = suffix();
    let net = s
        .neutron
        .create_network(&NetworkCreate {
            name: Some(format!("ostest-{tag}")),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::Networks, &net.id);
    assert_eq!(net.name, format!("ostest-{tag}"));
    assert!(net.admin_state_up);
    assert!(net.mtu.is_some());
    assert!(net.revision_number.is_some());
    assert!(
        net.network_type.is_some(),
        "admin sees provider:network_type"
    );

    let found = s
        .neutron
        .list_networks(&Query::new().name(format!("ostest-{tag}")))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, net.id);

    let updated = s
        .neutron
        .update_network(
            &net.id,
            &NetworkUpdate {
                name: Some(format!("ostest-{tag}-b")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, format!("ostest-{tag}-b"));

    let subnet = s
        .neutron
        .create_subnet(&SubnetCreate {
            name: Some(format!("ostest-{tag}")),
            gateway_ip: Some(Some(ip("10.77.0.1"))),
            allocation_pools: Some(vec![openstack::neutron::AllocationPool {
                start: ip("10.77.0.10"),
                end: ip("10.77.0.20"),
            }]),
            dns_nameservers: Some(vec!["10.77.0.53".into()]),
            enable_dhcp: Some(false),
            ..SubnetCreate::new(&net.id, "10.77.0.0/24")
        })
        .await
        .unwrap();
    c.neutron(Resource::Subnets, &subnet.id);
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
        .update_subnet(
            &subnet.id,
            &SubnetUpdate {
                gateway_ip: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(no_gw.gateway_ip, None);
    assert_eq!(
        s.neutron.get_subnet(&subnet.id).await.unwrap().gateway_ip,
        None
    );
    let listed = s
        .neutron
        .list_subnets(&Query::new().network_id(&net.id))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    let v6 = s
        .neutron
        .create_subnet(&SubnetCreate::new(&net.id, "fd77::/64"))
        .await
        .unwrap();
    c.neutron(Resource::Subnets, &v6.id);
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
    let Some(s) = stack("subnetpool_crud_and_allocation") else {
        return;
    };
    let c = Cleanup::new(&s);
    let tag = suffix();
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

    let net = s
        .neutron
        .create_network(&NetworkCreate {
            name: Some(format!("ostest-{tag}")),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::Networks, &net.id);
    let subnet = s
        .neutron
        .create_subnet(&SubnetCreate {
            network_id: net.id.clone(),
            ip_version: 4,
            subnetpool_id: Some(pool.id.clone()),
            prefixlen: Some(28),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::Subnets, &subnet.id);
    assert_eq!(subnet.subnetpool_id.as_deref(), Some(pool.id.as_str()));
    assert!(subnet.cidr.ends_with("/28"), "{}", subnet.cidr);
    assert!(subnet.cidr.starts_with(&format!("10.{second}.")));

    let updated = s
        .neutron
        .update_subnetpool(
            &pool.id,
            &SubnetPoolUpdate {
                name: Some(format!("ostest-{tag}-b")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, format!("ostest-{tag}-b"));
    let listed = s
        .neutron
        .list_subnetpools(&Query::new().name(format!("ostest-{tag}-b")))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].default_prefixlen, Some(26));
    assert_eq!(
        s.neutron.get_subnetpool(&pool.id).await.unwrap().id,
        pool.id
    );

    s.neutron.delete_subnet(&subnet.id).await.unwrap();
    s.neutron.delete_subnetpool(&pool.id).await.unwrap();
    assert!(s
        .neutron
        .get_subnetpool(&pool.id)
        .await
        .unwrap_err()
        .is_not_found());
}

// ----------------------------------------------------------------- ports

#[tokio::test]
async fn port_crud_filters_and_revisions() {
    let Some(s) = stack("port_crud_filters_and_revisions") else {
        return;
    };
    let c = Cleanup::new(&s);
    let tag = suffix();
    let (net, subnet) = network_with_subnet(&s, &c, &tag, "10.1.0.0/24").await;
    let device_id = format!("dev-{tag}");
    let port = port_on(
        &s,
        &c,
        PortCreate {
            name: Some(format!("ostest-{tag}")),
            mac_address: Some("fa:16:3e:12:34:56".into()),
            fixed_ips: Some(vec![FixedIpRequest::address(
                ip("10.1.0.50"),
                Some(subnet.id.clone()),
            )]),
            device_owner: Some("compute:kuryr".into()),
            device_id: Some(device_id.clone()),
            tags: Some(vec![format!("t-{tag}")]),
            ..PortCreate::new(&net.id)
        },
    )
    .await;
    assert_eq!(port.network_id, net.id);
    assert_eq!(port.mac_address, "fa:16:3e:12:34:56");
    assert_eq!(port.fixed_ips.len(), 1);
    assert_eq!(port.fixed_ips[0].ip_address, ip("10.1.0.50"));
    assert_eq!(port.fixed_ips[0].subnet_id, subnet.id);
    assert_eq!(port.tags, [format!("t-{tag}")]);
    assert_eq!(port.status, "DOWN");
    assert_eq!(port.binding_vif_type, "unbound");
    assert_eq!(port.port_security_enabled, Some(true));
    assert_eq!(port.security_groups.len(), 1, "the default group");
    let other = port_on(
        &s,
        &c,
        PortCreate {
            fixed_ips: Some(vec![FixedIpRequest::subnet(&subnet.id)]),
            ..PortCreate::new(&net.id)
        },
    )
    .await;

    let one = |q: Query| {
        let n = s.neutron.clone();
        async move { ids(&ours(n.list_ports(&q).await.unwrap())) }
    };
    let just_port = BTreeSet::from([port.id.clone()]);
    let both = BTreeSet::from([port.id.clone(), other.id.clone()]);
    assert_eq!(
        one(Query::new().fixed_ip_address(ip("10.1.0.50")))
            .await
            .intersection(&both)
            .count(),
        1
    );
    assert_eq!(
        one(Query::new()
            .network_id(&net.id)
            .fixed_ip_address(ip("10.1.0.50")))
        .await,
        just_port
    );
    assert_eq!(one(Query::new().fixed_ip_subnet(&subnet.id)).await, both);
    assert_eq!(
        one(Query::new()
            .network_id(&net.id)
            .mac_address("fa:16:3e:12:34:56"))
        .await,
        just_port
    );
    assert_eq!(one(Query::new().device_id(&device_id)).await, just_port);
    assert_eq!(
        one(Query::new()
            .network_id(&net.id)
            .device_owner("compute:kuryr"))
        .await,
        just_port
    );
    assert_eq!(
        one(Query::new().name(format!("ostest-{tag}"))).await,
        just_port
    );
    assert_eq!(one(Query::new().network_id(&net.id)).await, both);

    // fields= selection returns partial objects.
    let partial = s
        .neutron
        .list_ports(
            &Query::new()
                .device_id(&device_id)
                .fields(["id", "fixed_ips"]),
        )
        .await
        .unwrap();
    assert_eq!(partial[0].id, port.id);
    assert_eq!(partial[0].fixed_ips, port.fixed_ips);
    assert_eq!(partial[0].mac_address, "", "not selected");
    let shown: Port = s
        .neutron
        .show(
            Resource::Ports,
            &port.id,
            &Query::new().fields(["id", "revision_number"]),
        )
        .await
        .unwrap();
    assert_eq!(shown.revision_number, port.revision_number);
    assert!(shown.name.is_empty());

    // Updates, then If-Match on the revision.
    let updated = s
        .neutron
        .update_port(
            &port.id,
            &PortUpdate {
                name: Some(format!("ostest-{tag}-b")),
                allowed_address_pairs: Some(vec![AddressPair {
                    ip_address: "10.1.0.200".into(),
                    mac_address: None,
                }]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, format!("ostest-{tag}-b"));
    assert_eq!(updated.allowed_address_pairs[0].ip_address, "10.1.0.200");
    assert_eq!(
        updated.allowed_address_pairs[0].mac_address.as_deref(),
        Some("fa:16:3e:12:34:56")
    );
    let rev = updated.revision_number.unwrap();
    assert!(rev > port.revision_number.unwrap());
    let pairs = |ip: &str| PortUpdate {
        allowed_address_pairs: Some(vec![AddressPair {
            ip_address: ip.into(),
            mac_address: None,
        }]),
        ..Default::default()
    };
    let ok = s
        .neutron
        .update_port_if_revision(&port.id, &pairs("10.1.0.201"), rev)
        .await
        .unwrap();
    assert_eq!(ok.allowed_address_pairs[0].ip_address, "10.1.0.201");
    let err = s
        .neutron
        .update_port_if_revision(&port.id, &pairs("10.1.0.202"), rev)
        .await
        .unwrap_err();
    assert!(err.is_precondition_failed(), "{err}");
    assert_eq!(
        s.neutron
            .get_port(&port.id)
            .await
            .unwrap()
            .allowed_address_pairs[0]
            .ip_address,
        "10.1.0.201",
        "a stale revision changes nothing"
    );

    s.neutron.delete_port(&port.id).await.unwrap();
    let err = s.neutron.get_port(&port.id).await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.neutron_type(), Some("PortNotFound"));
    let err = s.neutron.delete_port(&port.id).await.unwrap_err();
    assert!(err.is_not_found());
}

#[tokio::test]
async fn duplicate_fixed_ip_is_a_conflict() {
    let Some(s) = stack("duplicate_fixed_ip_is_a_conflict") else {
        return;
    };
    let c = Cleanup::new(&s);
    let tag = suffix();
    let (net, subnet) = network_with_subnet(&s, &c, &tag, "10.2.0.0/24").await;
    let body = PortCreate {
        fixed_ips: Some(vec![FixedIpRequest::address(
            ip("10.2.0.9"),
            Some(subnet.id.clone()),
        )]),
        ..PortCreate::new(&net.id)
    };
    port_on(&s, &c, body.clone()).await;
    let err = s.neutron.create_port(&body).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.neutron_type(), Some("IpAddressAlreadyAllocated"));
    let api = err.api().unwrap();
    assert!(api.message.contains("10.2.0.9"), "{}", api.message);
    assert_eq!(
        (api.method.as_str(), api.path.as_str()),
        ("POST", "/v2.0/ports")
    );
    assert!(api.request_id.is_some());
    assert_eq!(
        ours(
            s.neutron
                .list_ports(&Query::new().network_id(&net.id))
                .await
                .unwrap()
        )
        .len(),
        1
    );
}

#[tokio::test]
async fn bulk_port_create_is_atomic() {
    let Some(s) = stack("bulk_port_create_is_atomic") else {
        return;
    };
    let c = Cleanup::new(&s);
    let tag = suffix();
    let (net, subnet) = network_with_subnet(&s, &c, &tag, "10.3.0.0/24").await;
    let with_ip = |addr: &str, name: &str| PortCreate {
        name: Some(format!("ostest-{tag}-{name}")),
        fixed_ips: Some(vec![FixedIpRequest::address(
            ip(addr),
            Some(subnet.id.clone()),
        )]),
        tags: Some(vec![format!("bulk-{tag}")]),
        ..PortCreate::new(&net.id)
    };
    let created = s
        .neutron
        .create_ports(&[with_ip("10.3.0.10", "a"), with_ip("10.3.0.11", "b")])
        .await
        .unwrap();
    for p in &created {
        c.neutron(Resource::Ports, &p.id);
    }
    assert_eq!(created.len(), 2);
    assert!(created.iter().all(|p| p.tags == [format!("bulk-{tag}")]));
    assert_eq!(created[1].fixed_ips[0].ip_address, ip("10.3.0.11"));

    // One conflicting port (10.3.0.10 is taken): nothing is created.
    let err = s
        .neutron
        .create_ports(&[with_ip("10.3.0.12", "c"), with_ip("10.3.0.10", "d")])
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.neutron_type(), Some("IpAddressAlreadyAllocated"));
    let left = ours(
        s.neutron
            .list_ports(&Query::new().network_id(&net.id))
            .await
            .unwrap(),
    );
    for p in &left {
        c.neutron(Resource::Ports, &p.id);
    }
    assert_eq!(
        ids(&left),
        ids(&created),
        "the failed bulk left nothing behind"
    );
    assert!(s
        .neutron
        .list_ports(
            &Query::new()
                .fixed_ip_address(ip("10.3.0.12"))
                .network_id(&net.id)
        )
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn tags_and_tag_filters() {
    let Some(s) = stack("tags_and_tag_filters") else {
        return;
    };
    let c = Cleanup::new(&s);
    let tag = suffix();
    let (net, _) = network_with_subnet(&s, &c, &tag, "10.4.0.0/24").await;
    let (a, b, k) = (format!("a-{tag}"), format!("b-{tag}"), format!("k-{tag}"));
    let p1 = port_on(&s, &c, PortCreate::new(&net.id)).await;
    let p2 = port_on(&s, &c, PortCreate::new(&net.id)).await;

    s.neutron
        .add_tag(Resource::Ports, &p1.id, &a)
        .await
        .unwrap();
    s.neutron
        .add_tag(Resource::Ports, &p1.id, &b)
        .await
        .unwrap();
    s.neutron
        .add_tag(Resource::Ports, &p1.id, &b)
        .await
        .unwrap();
    s.neutron
        .add_tag(Resource::Ports, &p2.id, &a)
        .await
        .unwrap();
    let mut t1 = s.neutron.get_tags(Resource::Ports, &p1.id).await.unwrap();
    t1.sort();
    assert_eq!(t1, [a.clone(), b.clone()]);

    let scope = || Query::new().network_id(&net.id);
    let q = |q: Query| {
        let n = s.neutron.clone();
        async move { ids(&ours(n.list_ports(&q).await.unwrap())) }
    };
    let only1 = BTreeSet::from([p1.id.clone()]);
    let only2 = BTreeSet::from([p2.id.clone()]);
    let both = BTreeSet::from([p1.id.clone(), p2.id.clone()]);
    assert_eq!(q(scope().tags([&a, &b])).await, only1);
    assert_eq!(q(scope().tags([&a])).await, both);
    assert_eq!(q(scope().tags_any([&b, &k])).await, only1);
    assert_eq!(q(scope().not_tags([&a, &b])).await, only2);
    assert_eq!(q(scope().not_tags_any([&b])).await, only2);
    assert_eq!(q(scope().not_tags_any([&a])).await, BTreeSet::new());

    let replaced = s
        .neutron
        .replace_tags(Resource::Ports, &p1.id, &[&k])
        .await
        .unwrap();
    assert_eq!(replaced, [k.as_str()]);
    assert_eq!(q(scope().tags([&k])).await, only1);
    s.neutron
        .remove_tag(Resource::Ports, &p1.id, &k)
        .await
        .unwrap();
    let err = s
        .neutron
        .remove_tag(Resource::Ports, &p1.id, &k)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(s
        .neutron
        .get_tags(Resource::Ports, &p1.id)
        .await
        .unwrap()
        .is_empty());

    // Other resources: networks.
    s.neutron
        .replace_tags(Resource::Networks, &net.id, &[&a, &b])
        .await
        .unwrap();
    let nets = s
        .neutron
        .list_networks(&Query::new().tags([&a, &b]))
        .await
        .unwrap();
    assert_eq!(nets.len(), 1);
    assert_eq!(nets[0].id, net.id);
    s.neutron
        .remove_all_tags(Resource::Networks, &net.id)
        .await
        .unwrap();
    assert!(s
        .neutron
        .get_network(&net.id)
        .await
        .unwrap()
        .tags
        .is_empty());
}

#[tokio::test]
async fn lists_follow_pages() {
    let Some(s) = stack("lists_follow_pages") else {
        return;
    };
    let c = Cleanup::new(&s);
    let tag = suffix();
    let (net, _) = network_with_subnet(&s, &c, &tag, "10.5.0.0/24").await;
    let bodies: Vec<PortCreate> = (0..5)
        .map(|_| PortCreate {
            tags: Some(vec![format!("page-{tag}")]),
            ..PortCreate::new(&net.id)
        })
        .collect();
    let created = s.neutron.create_ports(&bodies).await.unwrap();
    for p in &created {
        c.neutron(Resource::Ports, &p.id);
    }
    let before = s.neutron.calls();
    let listed = s
        .neutron
        .list_ports(&Query::new().tags([format!("page-{tag}")]).limit(2))
        .await
        .unwrap();
    let gets = s.neutron.calls().since(&before).get;
    assert_eq!(ids(&listed), ids(&created));
    assert_eq!(listed.len(), 5, "no duplicates across pages");
    assert!(
        gets >= 3,
        "5 items in pages of 2 need at least 3 GETs, saw {gets}"
    );
}

// ---------------------------------------------------------------- trunks

#[tokio::test]
async fn trunks_with_subports() {
    let Some(s) = stack("trunks_with_subports") else {
        return;
    };
    let c = Cleanup::new(&s);
    let tag = suffix();
    let (net, _) = network_with_subnet(&s, &c, &tag, "10.6.0.0/24").await;
    let parent = port_on(&s, &c, PortCreate::new(&net.id)).await;
    let sub1 = port_on(&s, &c, PortCreate::new(&net.id)).await;
    let sub2 = port_on(&s, &c, PortCreate::new(&net.id)).await;

    let trunk = s
        .neutron
        .create_trunk(&TrunkCreate {
            port_id: parent.id.clone(),
            name: Some(format!("ostest-{tag}")),
            sub_ports: Some(vec![SubPort::vlan(&sub1.id, 101)]),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::Trunks, &trunk.id);
    assert_eq!(trunk.port_id, parent.id);
    assert_eq!(trunk.sub_ports.len(), 1);
    assert_eq!(trunk.sub_ports[0].segmentation_id, Some(101));

    let added = s
        .neutron
        .add_subports(&trunk.id, &[SubPort::vlan(&sub2.id, 102)])
        .await
        .unwrap();
    assert_eq!(added.id, trunk.id);
    let vlans: BTreeSet<_> = added
        .sub_ports
        .iter()
        .filter_map(|p| p.segmentation_id)
        .collect();
    assert_eq!(vlans, BTreeSet::from([101, 102]));

    let subs = s.neutron.get_subports(&trunk.id).await.unwrap();
    assert_eq!(subs.len(), 2);
    let sub2_vlan = subs.iter().find(|p| p.port_id == sub2.id).unwrap();
    assert_eq!(sub2_vlan.segmentation_id, Some(102));

    let details = s
        .neutron
        .get_port(&parent.id)
        .await
        .unwrap()
        .trunk_details
        .expect("trunk_details on the parent");
    assert_eq!(details.trunk_id, trunk.id);
    assert_eq!(details.sub_ports.len(), 2);
    let sub2_mac = &details
        .sub_ports
        .iter()
        .find(|p| p.port_id == sub2.id)
        .unwrap()
        .mac_address;
    assert_eq!(sub2_mac.as_deref(), Some(sub2.mac_address.as_str()));
    assert_eq!(
        s.neutron.get_port(&sub1.id).await.unwrap().device_owner,
        "trunk:subport"
    );

    let listed = s
        .neutron
        .list_trunks(&Query::new().port_id(&parent.id))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    // A VLAN id already used on the trunk is refused.
    let err = s
        .neutron
        .add_subports(&trunk.id, &[SubPort::vlan(&sub2.id, 101)])
        .await
        .unwrap_err();
    assert!(err.is_conflict() || err.is_bad_request(), "{err}");

    let removed = s
        .neutron
        .remove_subports(&trunk.id, &[&sub1.id])
        .await
        .unwrap();
    assert_eq!(removed.sub_ports.len(), 1);
    assert_eq!(removed.sub_ports[0].port_id, sub2.id);

    let renamed = s
        .neutron
        .update_trunk(
            &trunk.id,
            &TrunkUpdate {
                name: Some(format!("ostest-{tag}-b")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, format!("ostest-{tag}-b"));
    assert_eq!(
        s.neutron.get_trunk(&trunk.id).await.unwrap().name,
        renamed.name
    );

    s.neutron
        .remove_subports(&trunk.id, &[&sub2.id])
        .await
        .unwrap();
    s.neutron.delete_trunk(&trunk.id).await.unwrap();
    let err = s.neutron.get_trunk(&trunk.id).await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.neutron_type(), Some("TrunkNotFound"));
}

// ------------------------------------------------------- security groups

#[tokio::test]
async fn security_groups_and_rules() {
    let Some(s) = stack("security_groups_and_rules") else {
        return;
    };
    let c = Cleanup::new(&s);
    let tag = suffix();
    let sg = s
        .neutron
        .create_security_group(&SecurityGroupCreate {
            name: format!("ostest-{tag}"),
            description: Some("functional test".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::SecurityGroups, &sg.id);
    assert_eq!(sg.name, format!("ostest-{tag}"));
    assert!(
        sg.security_group_rules
            .iter()
            .any(|r| r.direction == "egress"),
        "new groups get default egress rules"
    );

    let rule = s
        .neutron
        .create_security_group_rule(&SecurityGroupRuleCreate {
            security_group_id: sg.id.clone(),
            direction: "ingress".into(),
            ethertype: Some("IPv4".into()),
            protocol: Some("tcp".into()),
            port_range_min: Some(22),
            port_range_max: Some(22),
            remote_ip_prefix: Some("10.0.0.0/8".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::SecurityGroupRules, &rule.id);
    assert_eq!(rule.port_range_min, Some(22));
    assert_eq!(rule.protocol.as_deref(), Some("tcp"));

    let rules = s
        .neutron
        .list_security_group_rules(
            &Query::new()
                .security_group_id(&sg.id)
                .param("direction", "ingress"),
        )
        .await
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].id, rule.id);
    let groups = s
        .neutron
        .list_security_groups(&Query::new().name(format!("ostest-{tag}")))
        .await
        .unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        s.neutron
            .get_security_group(&sg.id)
            .await
            .unwrap()
            .security_group_rules
            .len(),
        sg.security_group_rules.len() + 1
    );

    // A port can use it.
    let (net, _) = network_with_subnet(&s, &c, &tag, "10.8.0.0/24").await;
    let port = port_on(
        &s,
        &c,
        PortCreate {
            security_groups: Some(vec![sg.id.clone()]),
            ..PortCreate::new(&net.id)
        },
    )
    .await;
    assert_eq!(port.security_groups, [sg.id.as_str()]);
    let err = s.neutron.delete_security_group(&sg.id).await.unwrap_err();
    assert!(err.is_conflict(), "in use: {err}");
    s.neutron.delete_port(&port.id).await.unwrap();

    s.neutron
        .delete_security_group_rule(&rule.id)
        .await
        .unwrap();
    s.neutron.delete_security_group(&sg.id).await.unwrap();
    assert!(s
        .neutron
        .get_security_group(&sg.id)
        .await
        .unwrap_err()
        .is_not_found());
}

// ---------------------------------------------------------- floating IPs

#[tokio::test]
async fn floating_ips() {
    let Some(s) = stack("floating_ips") else {
        return;
    };
    let c = Cleanup::new(&s);
    let tag = suffix();
    let ext = s
        .neutron
        .create_network(&NetworkCreate {
            name: Some(format!("ostest-ext-{tag}")),
            router_external: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::Networks, &ext.id);
    assert!(ext.router_external);
    let ext_subnet = s
        .neutron
        .create_subnet(&SubnetCreate::new(&ext.id, "172.31.250.0/24"))
        .await
        .unwrap();
    c.neutron(Resource::Subnets, &ext_subnet.id);

    let fip = s
        .neutron
        .create_floating_ip(&FloatingIpCreate {
            floating_network_id: ext.id.clone(),
            floating_ip_address: Some(ip("172.31.250.77")),
            description: Some("first".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::FloatingIps, &fip.id);
    assert_eq!(fip.floating_ip_address, Some(ip("172.31.250.77")));
    assert_eq!(fip.port_id, None);

    let listed = s
        .neutron
        .list_floating_ips(&Query::new().param("floating_network_id", &ext.id))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let updated = s
        .neutron
        .update_floating_ip(
            &fip.id,
            &FloatingIpUpdate {
                description: Some("second".into()),
                port_id: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.description, "second");
    assert_eq!(
        s.neutron
            .get_floating_ip(&fip.id)
            .await
            .unwrap()
            .description,
        "second"
    );
    s.neutron.delete_floating_ip(&fip.id).await.unwrap();
    assert!(s
        .neutron
        .get_floating_ip(&fip.id)
        .await
        .unwrap_err()
        .is_not_found());
}

// ---------------------------------------------------------------- quotas

#[tokio::test]
async fn port_quota_is_enforced() {
    let Some(s) = stack("port_quota_is_enforced") else {
        return;
    };
    let c = Cleanup::new(&s);
    let tag = suffix();
    let project = format!("ostest{tag}");
    let defaults = s.neutron.get_quota(&project).await.unwrap();
    assert!(defaults.port.is_some());
    c.add(Item::ProjectSecurityGroups(project.clone()));
    c.add(Item::Quota(project.clone()));
    let q = s
        .neutron
        .update_quota(
            &project,
            &Quota {
                port: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(q.port, Some(1));
    assert_eq!(q.network, defaults.network, "only the set quota changes");
    assert_eq!(s.neutron.get_quota(&project).await.unwrap().port, Some(1));

    // The quota bites: the project's second port is refused.
    let net = s
        .neutron
        .create_network(&NetworkCreate {
            name: Some(format!("ostest-{tag}")),
            shared: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::Networks, &net.id);
    let body = PortCreate {
        project_id: Some(project.clone().into()),
        ..PortCreate::new(&net.id)
    };
    let first = port_on(&s, &c, body.clone()).await;
    assert_eq!(first.project_id.as_deref(), Some(project.as_str()));
    let err = s.neutron.create_port(&body).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.neutron_type(), Some("OverQuota"));

    s.neutron.reset_quota(&project).await.unwrap();
    assert_eq!(
        s.neutron.get_quota(&project).await.unwrap().port,
        defaults.port
    );
}

// --------------------------------------------------- binding and ACTIVE

/// A veth whose host end is on the integration bridge with the port's
/// iface-id; registered for cleanup before each step so nothing leaks.
fn plug(c: &Cleanup, bridge: &str, tag: &str, port: &Port) -> Result<(), String> {
    let (ns, host, peer) = (
        format!("ostest-{tag}"),
        format!("ot{tag}"),
        format!("ot{tag}p"),
    );
    c.add(Item::Netns(ns.clone()));
    sh("ip", &["netns", "add", &ns])?;
    c.add(Item::Link(host.clone()));
    sh(
        "ip",
        &["link", "add", &host, "type", "veth", "peer", "name", &peer],
    )?;
    sh("ip", &["link", "set", &peer, "netns", &ns])?;
    sh(
        "ip",
        &[
            "-n",
            &ns,
            "link",
            "set",
            &peer,
            "address",
            &port.mac_address,
        ],
    )?;
    sh("ip", &["-n", &ns, "link", "set", &peer, "up"])?;
    sh("ip", &["link", "set", &host, "up"])?;
    c.add(Item::OvsPort(bridge.to_owned(), host.clone()));
    sh(
        "ovs-vsctl",
        &[
            "--timeout=10",
            "--",
            "--may-exist",
            "add-port",
            bridge,
            &host,
            "--",
            "set",
            "Interface",
            &host,
            &format!("external_ids:iface-id={}", port.id),
            &format!("external_ids:attached-mac={}", port.mac_address),
            "external_ids:iface-status=active",
            &format!("external_ids:vm-uuid={}", port.device_id),
        ],
    )
}

async fn wait_for_status(n: &Neutron, port_id: &str, want: &str) -> Port {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let port = n.get_port(port_id).await.unwrap();
        if port.status == want || Instant::now() > deadline {
            return port;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn bound_port_goes_active_when_plugged() {
    let Some(s) = stack("bound_port_goes_active_when_plugged") else {
        return;
    };
    let c = Cleanup::new(&s);
    let tag = suffix();
    let (net, subnet) = network_with_subnet(&s, &c, &tag, "10.9.0.0/24").await;
    let port = port_on(
        &s,
        &c,
        PortCreate {
            name: Some(format!("ostest-{tag}")),
            device_owner: Some("compute:kuryr".into()),
            device_id: Some(format!("dev-{tag}")),
            binding_host_id: Some(s.host.clone()),
            fixed_ips: Some(vec![FixedIpRequest::subnet(&subnet.id)]),
            ..PortCreate::new(&net.id)
        },
    )
    .await;
    assert_eq!(port.binding_host_id, s.host);
    assert_eq!(port.binding_vif_type, "ovs", "ML2/OVN bound the port");
    assert_eq!(port.binding_vif_details["bridge_name"], s.bridge.as_str());
    assert_eq!(port.status, "DOWN");
    assert_eq!(
        s.neutron
            .list_ports(
                &Query::new()
                    .binding_host_id(&s.host)
                    .device_id(format!("dev-{tag}"))
            )
            .await
            .unwrap()
            .len(),
        1
    );

    plug(&c, &s.bridge, &tag, &port).unwrap();
    let active = wait_for_status(&s.neutron, &port.id, "ACTIVE").await;
    assert_eq!(active.status, "ACTIVE", "the plugged port becomes ACTIVE");

    // Unplugging takes it down again.
    sh(
        "ovs-vsctl",
        &[
            "--timeout=10",
            "--if-exists",
            "del-port",
            &s.bridge,
            &format!("ot{tag}"),
        ],
    )
    .unwrap();
    let down = wait_for_status(&s.neutron, &port.id, "DOWN").await;
    assert_eq!(down.status, "DOWN");
}

// ---------------------------------------------------------- mode-specific

#[tokio::test]
async fn noauth_takes_the_project_from_the_body() {
    let Some(s) = stack("noauth_takes_the_project_from_the_body") else {
        return;
    };
    if !only_in("noauth_takes_the_project_from_the_body", &s, Mode::NoAuth) {
        return;
    }
    assert_eq!(s.opts.effective_auth_type(), AuthType::NoAuth);
    let c = Cleanup::new(&s);
    let tag = suffix();
    c.add(Item::ProjectSecurityGroups(format!("proj{tag}")));
    let net = s
        .neutron
        .create_network(&NetworkCreate {
            name: Some(format!("ostest-{tag}")),
            project_id: Some(format!("proj{tag}").into()),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::Networks, &net.id);
    assert_eq!(net.project_id, Some(format!("proj{tag}").into()));
    assert_eq!(s.neutron.calls().auth, 0, "no Keystone in noauth mode");
}

#[tokio::test]
async fn keystone_password_auth_uses_the_catalog() {
    let Some(s) = stack("keystone_password_auth_uses_the_catalog") else {
        return;
    };
    if !only_in(
        "keystone_password_auth_uses_the_catalog",
        &s,
        Mode::Keystone,
    ) {
        return;
    }
    let opts = AuthOptions {
        endpoint: None,
        ..s.opts.clone()
    };
    let client = Client::new(opts).unwrap();
    let endpoint = client.endpoint().await.unwrap();
    assert!(endpoint.as_str().contains(":9696"), "{endpoint}");
    let neutron = Neutron::from_client(client);
    neutron.list_networks(&Query::new().limit(1)).await.unwrap();
    neutron.list_networks(&Query::new().limit(1)).await.unwrap();
    assert_eq!(neutron.calls().auth, 1, "the token is cached");
}

#[tokio::test]
async fn keystone_bad_token_is_unauthorized() {
    let Some(s) = stack("keystone_bad_token_is_unauthorized") else {
        return;
    };
    if !only_in("keystone_bad_token_is_unauthorized", &s, Mode::Keystone) {
        return;
    }
    let endpoint = s.neutron.client().endpoint().await.unwrap();
    let bogus = Neutron::new(AuthOptions {
        auth_type: Some(AuthType::Token),
        token: Some("not-a-real-token".into()),
        endpoint: Some(endpoint.to_string()),
        ..Default::default()
    })
    .unwrap();
    let err = bogus.list_networks(&Query::new()).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");

    let wrong_password = Neutron::new(AuthOptions {
        password: Some("definitely-wrong".into()),
        ..s.opts.clone()
    })
    .unwrap();
    let err = wrong_password
        .list_networks(&Query::new())
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert_eq!(err.api().unwrap().path, "/v3/auth/tokens");
    assert!(!err.to_string().contains("definitely-wrong"));
}

#[tokio::test]
async fn keystone_member_cannot_bind_ports() {
    let Some(s) = stack("keystone_member_cannot_bind_ports") else {
        return;
    };
    if !only_in("keystone_member_cannot_bind_ports", &s, Mode::Keystone) {
        return;
    }
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set in keystone mode"));
    let member_opts = AuthOptions {
        username: Some(env("KURYR_STACK_DEMO_USER")),
        password: Some(env("KURYR_STACK_DEMO_PASSWORD").into()),
        project_name: Some(env("KURYR_STACK_DEMO_PROJECT")),
        user_id: None,
        project_id: None,
        ..s.opts.clone()
    };
    let member = Neutron::new(member_opts.clone()).unwrap();
    let member_stack = Stack {
        mode: s.mode,
        opts: member_opts,
        neutron: member.clone(),
        host: s.host.clone(),
        bridge: s.bridge.clone(),
    };
    let c = Cleanup::new(&member_stack);
    let tag = suffix();
    let (net, _) = network_with_subnet(&member_stack, &c, &tag, "10.10.0.0/24").await;
    let err = member
        .create_port(&PortCreate {
            binding_host_id: Some(s.host.clone()),
            ..PortCreate::new(&net.id)
        })
        .await
        .unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    let port = port_on(&member_stack, &c, PortCreate::new(&net.id)).await;
    assert_eq!(
        port.binding_host_id, "",
        "members do not see binding:* fields"
    );
}
