//! Switching from upstream kuryr-libnetwork to `kuryr libnetwork`, tested
//! through the real Docker engine, Neutron ML2/OVN and OVS of
//! `scripts/stack` (docs/migration.md describes the same steps for an
//! operator).
//!
//! 1. Upstream 18.0.0 (`kuryr-server` from its venv, `KURYR_UPSTREAM_VENV`,
//!    default /opt/kuryr-stack/upstream-venv: install it with
//!    `scripts/upstream install`) serves driver `kuryrmig` on
//!    127.0.0.1:23781, registered by /etc/docker/plugins/kuryrmig.spec. It
//!    makes three networks (`--subnet` + `--gateway`; `--subnet` +
//!    `--ip-range` + `--gateway`; one adopting a Neutron network made by the
//!    test) and four containers.
//! 2. Upstream is stopped by PID; ours starts on the same address
//!    (`[DEFAULT] kuryr_uri`) behind the same spec file, with `KURYR_NO_GC`.
//! 3. The old containers keep pinging (also during the switch);
//!    `kuryr gc --dry-run` and `kuryr status` see upstream's ports in use;
//!    new containers join upstream's networks, with ours in its default mode
//!    and with `ip_range_as_subnet = true`; an upstream container restarted
//!    gets its new port from ours; then disconnecting and removing
//!    upstream's containers and removing upstream's networks leaves nothing
//!    upstream made, in Neutron or on the host.
//!
//! Run: `eval "$(scripts/stack env)"; cargo test -p kuryr --test migration -- --nocapture`.
//! Without a stack the test prints a skip notice and passes; without
//! upstream's venv it fails.

use kuryr_testkit::upstream;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use kuryr_testkit::*;
use openstack::neutron::{Network, Port, Query, Resource, Subnet, SubnetPoolCreate};
use upstream::{SpecFile, Upstream};

mod checks;

use checks::*;

/// The driver name Docker knows both plugins by (one after the other).
const DRIVER: &str = "kuryrmig";
/// The loopback port both serve on.
const PORT: u16 = 23781;
const WAIT: Duration = Duration::from_secs(60);
/// A tag the operator put on the Neutron network and subnet that a Docker
/// network adopts: it must survive.
const USER_TAG: &str = "team:mig";

fn ours_config(ip_range_as_subnet: bool) -> String {
    format!(
        "[DEFAULT]\nkuryr_uri = http://127.0.0.1:{PORT}\nip_range_as_subnet = {ip_range_as_subnet}\n"
    )
}

fn step(t0: Instant, what: &str) {
    eprintln!("[migration {:>6.1}s] {what}", t0.elapsed().as_secs_f64());
}

fn pings_both_ways(a: &str, a_ip: IpAddr, b: &str, b_ip: IpAddr) {
    ping(a, b_ip);
    ping(b, a_ip);
}

#[test]
fn switch_from_upstream_kuryr_libnetwork() {
    let t0 = Instant::now();
    let test = "switch_from_upstream_kuryr_libnetwork";
    // Declared before the fixture so they are dropped after it: the
    // fixture removes containers and networks while a plugin still serves
    // the driver name (upstream if the test fails before the switch).
    let _spec: SpecFile;
    let mut up: Upstream;
    let Some(mut f) = Fixture::with_plugin_stopped(test, &ours_config(false)) else {
        return;
    };
    let venv = upstream::venv();
    upstream::server_bin(&venv);
    let addr: SocketAddr = ([127, 0, 0, 1], PORT).into();
    upstream::assert_port_free(PORT);
    let neutron_url = std::env::var("OS_ENDPOINT")
        .or_else(|_| std::env::var("OS_NEUTRON_ENDPOINT"))
        .expect("OS_ENDPOINT from scripts/stack env");

    // ------------------------------------------------------------ names
    let h = hex(6);
    // Even, so that third + 2 starts a /23: third, +1, +2/+3 (the
    // operator's subnetpool), +4.
    let third = 10 + u8::from_str_radix(&hex(2), 16).expect("hex") % 40 * 6;
    let cidr1 = format!("10.231.{third}.0/24");
    let gw1 = format!("10.231.{third}.1");
    let cidr3 = format!("10.231.{}.0/24", third + 1);
    let gw3 = format!("10.231.{}.1", third + 1);
    let (cidr2, range2, gw2) = ("10.232.0.0/16", "10.232.0.0/24", "10.232.0.1");
    let pool_prefix5 = format!("10.231.{}.0/23", third + 2);
    let cidr5 = format!("10.231.{}.0/24", third + 2);
    let gw5 = format!("10.231.{}.1", third + 2);
    for c in [&cidr1, cidr2, range2, &cidr3, &cidr5] {
        f.uses_cidr(c);
    }
    {
        let s = &f.stack;
        for c in [&cidr1, cidr2, range2, &cidr3, &cidr5, &pool_prefix5] {
            assert!(
                s.subnets_with_cidr(c).is_empty() && s.kuryr_pools(c).is_empty(),
                "Neutron already has a subnet or kuryrPool for {c}: a leftover of an earlier run?"
            );
        }
    }
    let net1 = format!("mig-net-{h}");
    let net2 = format!("mig-range-{h}");
    let net3 = format!("mig-adopt-{h}");
    let net5 = format!("mig-pool-{h}");
    let op_pool_name = format!("mig-oppool-{h}");
    let premade = format!("mig-premade-{h}");
    let c = |n: &str| format!("mig-{n}-{h}");

    // The operator's Neutron network that a Docker network adopts.
    let s = &f.stack;
    let pre = s.create_network_named(premade.clone());
    f.made(Resource::Networks, &pre.id);
    let gateway = Some(gw3.parse().expect("ip"));
    let pre_subnet =
        s.create_subnet_named(&pre.id, Some(format!("{premade}-subnet")), &cidr3, gateway);
    for (res, id) in
        [(Resource::Networks, pre.id.as_str()), (Resource::Subnets, pre_subnet.id.as_str())]
    {
        s.block_on(s.neutron.replace_tags(res, id, &[USER_TAG]))
            .expect("tagging the pre-made objects");
    }

    // The operator's subnetpool that a Docker network takes its subnet from
    // (`--ipam-opt neutron.pool.name=…`, upstream's documented recipe).
    let op_pool = s
        .block_on(s.neutron.create_subnetpool(&SubnetPoolCreate {
            name: op_pool_name.clone(),
            prefixes: vec![pool_prefix5.clone()],
            default_prefixlen: Some(24),
            ..SubnetPoolCreate::default()
        }))
        .expect("creating the operator's subnetpool");
    f.made(Resource::SubnetPools, &op_pool.id);

    // ------------------------------------------------------------ 1. upstream
    _spec = SpecFile::register(DRIVER, addr);
    up = Upstream::start(&venv, addr, &neutron_url);
    step(
        t0,
        &format!("upstream kuryr-server pid {} serves {DRIVER} on {addr}", up.pid().unwrap_or(0)),
    );
    let id1 = f.create_network_with(DRIVER, &net1, &["--subnet", &cidr1, "--gateway", &gw1]);
    let id2 = f.create_network_with(
        DRIVER,
        &net2,
        &["--subnet", cidr2, "--ip-range", range2, "--gateway", gw2],
    );
    let id3 = f.create_network_with(
        DRIVER,
        &net3,
        &["--subnet", &cidr3, "--gateway", &gw3, "-o", &format!("neutron.net.name={premade}")],
    );
    let pool_opt = format!("neutron.pool.name={op_pool_name}");
    let id5 = f.create_network_with(
        DRIVER,
        &net5,
        &["--subnet", &cidr5, "--gateway", &gw5, "--ipam-opt", &pool_opt, "-o", &pool_opt],
    );
    step(t0, "upstream made four networks");

    // What upstream made in Neutron, as docs/mapping.md names it.
    let n1 = s.network_of_docker(&id1);
    assert_eq!(n1.name, format!("kuryr-net-{}", &id1[..8]));
    let n2 = s.network_of_docker(&id2);
    let n3 = s.network_of_docker(&id3);
    assert_eq!(n3.id, pre.id, "upstream adopted the pre-made network");
    assert!(
        n3.tags.contains(&format!("kuryr.net.existing:{}", &id3[..12])),
        "adopted network tags: {:?}",
        n3.tags
    );
    let sub1 = s.only_subnet_of(&n1.id);
    assert_eq!(sub1.cidr, cidr1);
    assert_eq!(sub1.name, format!("kuryr-subnet-{cidr1}"));
    let sub2 = s.only_subnet_of(&n2.id);
    // Upstream makes the --ip-range the subnet (docs/migration.md).
    assert_eq!(sub2.cidr, range2, "upstream: the range is the subnet");
    assert_eq!(sub2.name, format!("kuryr-subnet-{range2}"));
    assert_eq!(s.kuryr_pools(&cidr1).len(), 1, "kuryrPool-{cidr1}");
    assert_eq!(s.kuryr_pools(range2).len(), 1, "kuryrPool-{range2}");
    let pool3 = s.kuryr_pools(&cidr3);
    assert_eq!(pool3.len(), 1, "kuryrPool-{cidr3} for the adopted network");
    let n5 = s.network_of_docker(&id5);
    let sub5 = s.only_subnet_of(&n5.id);
    assert_eq!(sub5.cidr, cidr5);
    let up_pools5 = s.kuryr_pools(&cidr5);
    eprintln!(
        "  upstream's network on the operator's pool: subnet {} subnetpool_id {:?} tags {:?}; \
         kuryrPool-{cidr5}: {:?}; operator's pool tags {:?}",
        sub5.id,
        sub5.subnetpool_id,
        sub5.tags,
        up_pools5.iter().map(|p| &p.id).collect::<Vec<_>>(),
        s.subnetpool(&op_pool.id).map(|p| p.tags)
    );
    let tagged = s.subnet(&pre_subnet.id).expect("the pre-made subnet");
    assert!(
        tagged.tags.contains(&pool3[0].id.to_string()),
        "upstream tags the adopted subnet with its pool: {:?}",
        tagged.tags
    );

    let (a1, a2, a3, a4) = (c("a1"), c("a2"), c("a3"), c("a4"));
    let att_a1 = f.run_detached(&a1, &net1, &[]);
    let att_a2 = f.run_detached(&a2, &net1, &[]);
    let att_a3 = f.run_detached(&a3, &net2, &[]);
    let att_a4 = f.run_detached(&a4, &net3, &[]);
    let a5 = c("a5");
    let att_a5 = f.run_detached(&a5, &net5, &[]);
    let port_a1 = check_attachment(&f, &att_a1, &n1.id, &cidr1);
    let port_a2 = check_attachment(&f, &att_a2, &n1.id, &cidr1);
    let port_a3 = check_attachment(&f, &att_a3, &n2.id, range2);
    let port_a4 = check_attachment(&f, &att_a4, &n3.id, &cidr3);
    let port_a5 = check_attachment(&f, &att_a5, &n5.id, &cidr5);
    step(t0, "upstream started five containers; their ports are ACTIVE");
    let upstream_ports = [&port_a1, &port_a2, &port_a3, &port_a4, &port_a5];
    for p in upstream_ports {
        eprintln!("  upstream port {} name {:?} tags {:?}", p.id, p.name, p.tags);
    }
    let (ip_a1, ip_a2, ip_a3, ip_a4) = (
        att_a1.ip.expect("a1 ip"),
        att_a2.ip.expect("a2 ip"),
        att_a3.ip.expect("a3 ip"),
        att_a4.ip.expect("a4 ip"),
    );
    pings_both_ways(&a1, ip_a1, &a2, ip_a2);
    step(t0, "a1 and a2 ping each other through OVN (upstream)");
    start_background_ping(&a1, ip_a2, "across");

    // ------------------------------------------------------------ 2. the switch
    let switch = Instant::now();
    up.stop();
    f.kuryr.set_env("KURYR_NO_GC", "true");
    f.kuryr.launch();
    upstream::wait_activate(addr, WAIT, || true);
    step(
        t0,
        &format!(
            "upstream stopped, ours (pid {}) serves {DRIVER} on {addr}: switch took {:.1}s",
            f.kuryr.pid(),
            switch.elapsed().as_secs_f64()
        ),
    );
    let upstream_errors = up.errors();
    if !upstream_errors.is_empty() {
        eprintln!("upstream logged errors:\n{}", upstream_errors.join("\n"));
    }

    // Ours runs with KURYR_NO_GC here; what would its garbage collector
    // say of upstream's ports? (Dry run, on these networks only, judged as
    // driver kuryrmig: the plugin socket's file name is the driver name.)
    tools_see_upstream_in_use(
        &f,
        t0,
        &[&n1, &n2, &n3, &n5],
        &[&id1, &id2, &id3, &id5],
        &upstream_ports,
    );

    // ------------------------------------------------------------ 3a. old containers
    pings_both_ways(&a1, ip_a1, &a2, ip_a2);
    step(t0, "a1 and a2 still ping each other (ours serving)");

    // New containers on upstream's networks, ours in its default mode.
    let (b1, b2, b3) = (c("b1"), c("b2"), c("b3"));
    let att_b1 = f.run_detached(&b1, &net1, &[]);
    let att_b2 = f.run_detached(&b2, &net2, &[]);
    let att_b3 = f.run_detached(&b3, &net3, &[]);
    let port_b1 = check_attachment(&f, &att_b1, &n1.id, &cidr1);
    let port_b2 = check_attachment(&f, &att_b2, &n2.id, range2);
    let port_b3 = check_attachment(&f, &att_b3, &n3.id, &cidr3);
    for (old, new) in [(&att_a1, &att_b1), (&att_a3, &att_b2), (&att_a4, &att_b3)] {
        assert_eq!(new.prefix, old.prefix, "prefix of a new container vs an old one");
        assert_eq!(new.gateway, old.gateway, "gateway of a new container vs an old one");
    }
    assert_eq!(att_b2.prefix, 24, "upstream's range network: a /24 subnet");
    let ip_b1 = att_b1.ip.expect("b1 ip");
    let ip_b2 = att_b2.ip.expect("b2 ip");
    let ip_b3 = att_b3.ip.expect("b3 ip");
    pings_both_ways(&b1, ip_b1, &a1, ip_a1);
    pings_both_ways(&b2, ip_b2, &a3, ip_a3);
    pings_both_ways(&b3, ip_b3, &a4, ip_a4);
    step(t0, "ours: new containers on the three upstream networks ping the old ones");

    // An upstream container restarted: Docker deletes its endpoint (ours
    // releases upstream's port) and makes a new one (ours makes the port).
    docker(&["restart", "-t", "1", &a4]);
    f.assert_port_gone(&port_a4.id);
    let att_a4r = attachment(&a4, &net3);
    assert_ne!(att_a4r.endpoint, att_a4.endpoint, "a new endpoint after restart");
    let port_a4r = check_attachment(&f, &att_a4r, &n3.id, &cidr3);
    pings_both_ways(&a4, att_a4r.ip.expect("a4 ip"), &b3, ip_b3);
    let ip_a4 = att_a4r.ip.expect("a4 ip");
    step(t0, "docker restart of an upstream container: upstream's port released, ours made, pings");

    // A new container on upstream's network from the operator's subnetpool.
    // Docker's pool id there is the `kuryrPool-<cidr>` upstream made in
    // RequestPool, while upstream allocated the subnet from the operator's
    // pool: ours finds it as upstream does, by the pool's cidr.
    let b5 = c("b5");
    let att_b5 = f.run_detached(&b5, &net5, &[]);
    let port_b5 = check_attachment(&f, &att_b5, &n5.id, &cidr5);
    pings_both_ways(&b5, att_b5.ip.expect("b5 ip"), &a5, att_a5.ip.expect("a5 ip"));
    step(t0, "ours: a new container on upstream's network from the operator's subnetpool pings");

    // ------------------------------------------------------------ 3b. ip_range_as_subnet
    restart_ours(&mut f, addr, true);
    assert!(
        !f.kuryr.log_text().contains("unknown option [DEFAULT] ip_range_as_subnet"),
        "this build does not know [DEFAULT] ip_range_as_subnet"
    );
    step(t0, "ours restarted with ip_range_as_subnet = true");
    // The mode is in force: a new network's --ip-range becomes its subnet.
    {
        let third4 = third + 4;
        let cidr4 = format!("10.231.{third4}.0/24");
        let range4 = format!("10.231.{third4}.128/25");
        let gw4 = format!("10.231.{third4}.129");
        f.uses_cidr(&cidr4);
        f.uses_cidr(&range4);
        let net4 = format!("mig-new-{h}");
        let id4 = f.create_network_with(
            DRIVER,
            &net4,
            &["--subnet", &cidr4, "--ip-range", &range4, "--gateway", &gw4],
        );
        let s = &f.stack;
        let n4 = s.network_of_docker(&id4);
        let sub4 = s.only_subnet_of(&n4.id);
        assert_eq!(sub4.cidr, range4, "ip_range_as_subnet: the range is the subnet");
        f.remove_network(&net4);
        f.assert_network_clean(&id4, &[&cidr4, &range4]);
        step(t0, "ip_range_as_subnet in force: a new network's range is its subnet");
    }
    let (d1, d2, d3) = (c("d1"), c("d2"), c("d3"));
    let att_d1 = f.run_detached(&d1, &net1, &[]);
    let att_d2 = f.run_detached(&d2, &net2, &[]);
    let att_d3 = f.run_detached(&d3, &net3, &[]);
    let port_d1 = check_attachment(&f, &att_d1, &n1.id, &cidr1);
    let port_d2 = check_attachment(&f, &att_d2, &n2.id, range2);
    let port_d3 = check_attachment(&f, &att_d3, &n3.id, &cidr3);
    assert_eq!(att_d2.prefix, 24);
    ping(&d1, ip_a2);
    ping(&d2, ip_a3);
    ping(&d3, ip_a4);
    ping(&a3, att_d2.ip.expect("d2 ip"));
    for (name, port) in [(&d1, &port_d1), (&d2, &port_d2), (&d3, &port_d3)] {
        f.remove_container(name);
        f.assert_port_gone(&port.id);
    }
    step(t0, "ours with ip_range_as_subnet: containers joined, pinged, removed cleanly");
    restart_ours(&mut f, addr, false);
    step(t0, "ours restarted in its default mode");

    // The ping that ran across both switches and restarts.
    let (sent, received, out) = stop_background_ping(&a1, "across");
    eprintln!("across the switch: {sent} sent, {received} received ({:.0} s)", sent as f64 * 0.2);
    assert!(sent >= 10, "the background ping ran: {out}");
    assert!(
        received + 1 >= sent,
        "a1 → a2 lost packets across the switch: {sent} sent, {received} received"
    );

    // ------------------------------------------------------------ 3c. cleanup
    let s = &f.stack;
    // An upstream endpoint taken off its network, then its container.
    f.disconnect(&net1, &a2);
    f.assert_port_gone(&port_a2.id);
    step(t0, "docker network disconnect of an upstream endpoint: port, veth, OVS port gone");
    f.remove_container(&a2);
    f.remove_container(&a1);
    f.assert_port_gone(&port_a1.id);
    f.remove_container(&b1);
    f.assert_port_gone(&port_b1.id);
    for (name, port) in [(&a3, &port_a3), (&b2, &port_b2), (&a4, &port_a4r), (&b3, &port_b3)] {
        f.remove_container(name);
        f.assert_port_gone(&port.id);
    }
    step(t0, "docker rm -f of upstream's and ours' containers: ports, veths, OVS ports gone");

    let ports5 = [port_a5.clone(), port_b5];
    f.remove_container(&a5);
    f.remove_container(&b5);
    for port in &ports5 {
        f.assert_port_gone(&port.id);
    }
    f.remove_network(&net5);
    let ids5: Vec<&str> = ports5.iter().map(|p| p.id.as_str()).collect();
    f.assert_clean(&id5, &[&cidr5], &ids5);
    assert_network_and_subnet_gone(s, &n5, &sub5);
    step(t0, "docker network rm of upstream's network from the operator's pool: nothing left");
    // The operator's pool stays. Upstream tagged it `kuryr.subnetpool.existing`
    // in RequestPool and, for a --subnet other than the pool's prefix, never
    // removes that tag itself (its ReleasePool gets the kuryrPool's id); ours
    // leaves it too (docs/migration.md).
    let op_pool_after = s.subnetpool(&op_pool.id).expect("the operator's subnetpool is kept");
    eprintln!("  operator's pool tags after network rm: {:?}", op_pool_after.tags);

    f.remove_network(&net1);
    f.assert_clean(&id1, &[&cidr1], &[&port_a1.id, &port_a2.id, &port_b1.id]);
    assert_network_and_subnet_gone(s, &n1, &sub1);
    step(t0, "docker network rm of upstream's --subnet network: nothing left");

    f.remove_network(&net2);
    f.assert_clean(&id2, &[cidr2, range2], &[&port_a3.id, &port_b2.id, &port_d2.id]);
    assert_network_and_subnet_gone(s, &n2, &sub2);
    step(t0, "docker network rm of upstream's --ip-range network: nothing left");

    f.remove_network(&net3);
    f.assert_clean(&id3, &[&cidr3], &[&port_a4.id, &port_a4r.id, &port_b3.id, &port_d3.id]);
    assert_adopted_network_restored(s, &pre, &pre_subnet, &premade, &cidr3);
    step(t0, "docker network rm of the adopted network: network and subnet kept, untagged");

    // Nothing of Kuryr's on the host: no veth or OVS port of any port.
    let all_ports = [
        &port_a1, &port_a2, &port_a3, &port_a4, &port_a4r, &port_b1, &port_b2, &port_b3, &port_d1,
        &port_d2, &port_d3,
    ];
    for p in all_ports.into_iter().chain(&ports5) {
        s.local().assert_unplugged(&p.id);
        assert!(s.port(&p.id).is_none(), "port {} left", p.id);
    }
    let tags_left: Vec<String> =
        s.networks(Query::new().tags_any(id_tags(&id3))).iter().map(|n| n.id.to_string()).collect();
    assert!(tags_left.is_empty(), "networks still tagged: {tags_left:?}");
    // Who served what: upstream made a1..a5, ours the others.
    let ours_log = f.kuryr.log_text();
    assert_who_served(
        &up.log_text(),
        &ours_log,
        &[&att_a1, &att_a2, &att_a3, &att_a4, &att_a5],
        &[&att_b1, &att_b2, &att_b3, &att_a4r, &att_d1, &att_d2, &att_d3, &att_b5],
    );
    let complaints: Vec<&str> =
        ours_log.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).collect();
    eprintln!(
        "ours logged {} warnings/errors over the whole run:\n{}",
        complaints.len(),
        complaints.join("\n")
    );
    step(t0, &format!("done in {:.1}s", t0.elapsed().as_secs_f64()));
}
