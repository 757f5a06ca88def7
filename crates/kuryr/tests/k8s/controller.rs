//! The controller's mapping, end to end: namespace → KuryrNetwork → Neutron
//! network, subnet and router interface; pod → KuryrPort → one Neutron
//! port; deletes leave nothing; kill -9 mid-rollout converges; bad
//! configuration is an Event naming the cause.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kuryr_testkit::k8s::{controller_conf, Cluster, ControllerProcess, ControllerWorld};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

fn conf(pool: &str, router: &str) -> String {
    controller_conf(pool, router, "")
}

#[test]
fn a_namespace_and_a_pod_map_to_neutron_and_leave_nothing() {
    let Some(mut world) = ControllerWorld::new("k8s::a_namespace_and_a_pod", conf) else { return };
    let ns = world.namespace();
    let started = Instant::now();
    let kn = world.wait_network(&ns, WAIT);
    eprintln!("latency namespace -> KuryrNetwork populated: {:?}", started.elapsed());
    let status = &kn["status"];
    let (net_id, subnet_id) =
        (status["netId"].as_str().expect("netId"), status["subnetId"].as_str().expect("subnetId"));
    assert_eq!(status["routerId"], world.router.as_str());
    let uid = world.cluster.get(&["namespace", &ns]).expect("namespace")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    let network = world.stack.network(net_id).expect("the namespace's network");
    assert_eq!(network.name, format!("{uid}/{ns}"));
    assert!(network.tags.contains(&format!("kuryr.k8s.ns:{ns}")), "{:?}", network.tags);
    assert!(network.tags.iter().any(|t| t.starts_with("kuryr.k8s.cluster:")), "{:?}", network.tags);
    let subnet = world.stack.subnet(subnet_id).expect("the namespace's subnet");
    assert_eq!(subnet.subnetpool_id.as_ref().map(ToString::to_string), Some(world.pool.clone()));
    assert_eq!(status["subnetCIDR"], subnet.cidr.as_str());
    assert!(subnet.tags.contains(&format!("kuryr.k8s.ns:{ns}")), "{:?}", subnet.tags);
    assert!(world.router_subnets().contains(&subnet_id.to_string()), "router interface");

    // A pod: one port, bound to the node, named and tagged; 2 Neutron calls.
    let before = world.controller.neutron_requests();
    let started = Instant::now();
    world.pod(&ns, "web-0");
    let kp = world.wait_vif(&ns, "web-0", WAIT);
    eprintln!("latency pod -> KuryrPort vif: {:?}", started.elapsed());
    let pod = world.cluster.get(&["pod", "-n", &ns, "web-0"]).expect("pod");
    let pod_uid = pod["metadata"]["uid"].as_str().expect("pod uid");
    assert!(
        pod["metadata"]["finalizers"].to_string().contains("kuryr.openstack.org/pod-finalizer"),
        "{}",
        pod["metadata"]
    );
    assert_eq!(kp["spec"]["podUid"], pod_uid);
    assert_eq!(kp["metadata"]["ownerReferences"][0]["uid"], pod_uid);
    let vif = &kp["status"]["vifs"]["eth0"];
    let ports = world.pod_ports(&ns);
    assert_eq!(ports.len(), 1, "one port: {ports:?}");
    let port = &ports[0];
    assert_eq!(vif["portId"], port.id.as_str());
    assert_eq!(vif["networkId"], net_id);
    assert_eq!(vif["binding"]["mode"], "ovs");
    assert_eq!(port.device_owner, "compute:kuryr");
    assert_eq!(port.device_id, pod_uid);
    assert_eq!(port.binding_host_id, world.node);
    assert_eq!(port.name, format!("{ns}/web-0"));
    assert_eq!(port.network_id, net_id);
    assert!(port.tags.contains(&format!("kuryr.pod.ns:{ns}")), "{:?}", port.tags);
    assert!(port.tags.iter().any(|t| t.starts_with("kuryr.k8s.cluster:")), "{:?}", port.tags);
    let address = vif["addresses"][0]["address"].as_str().expect("an address");
    assert!(address.starts_with(&port.fixed_ips[0].ip_address.to_string()), "{address}");

    // Deleting the pod releases the port before the finalizer goes.
    let started = Instant::now();
    world.cluster.kubectl(&["delete", "pod", "-n", &ns, "web-0", "--grace-period=0", "--force"]);
    world.cluster.wait_gone("the pod gone", WAIT, &["pod", "-n", &ns, "web-0"]);
    eprintln!("latency pod delete -> pod gone: {:?}", started.elapsed());
    assert!(world.stack.port(&port.id).is_none(), "the port is gone before the pod");
    world.cluster.wait_gone(
        "the KuryrPort gone",
        WAIT,
        &["kuryrports.openstack.org", "-n", &ns, "web-0"],
    );
    let calls = world.controller.neutron_requests() - before;
    eprintln!("neutron calls for one pod's lifecycle: {calls}");
    assert!(calls <= 3, "at most 3 Neutron calls per pod lifecycle, made {calls}");

    // Deleting the namespace deletes its network, subnet and interface.
    let started = Instant::now();
    world.delete_namespace(&ns, WAIT);
    eprintln!("latency namespace delete -> gone: {:?}", started.elapsed());
    assert!(world.stack.network(net_id).is_none(), "network {net_id} left");
    assert!(world.stack.subnet(subnet_id).is_none(), "subnet {subnet_id} left");
    assert!(!world.router_subnets().contains(&subnet_id.to_string()), "router interface left");
}

/// The uid of every pod of `ns`, by name.
fn pod_uids(world: &ControllerWorld, ns: &str) -> BTreeMap<String, String> {
    world
        .cluster
        .list(&["pods", "-n", ns])
        .iter()
        .map(|p| {
            let name = p["metadata"]["name"].as_str().unwrap_or_default().to_string();
            (name, p["metadata"]["uid"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

#[test]
fn kill_9_mid_rollout_converges_to_one_port_per_pod() {
    let Some(mut world) = ControllerWorld::new("k8s::kill_9_mid_rollout", conf) else { return };
    let ns = world.ready_namespace(WAIT);
    const PODS: usize = 20;
    world.pods(&ns, PODS);
    // Kill it as the first ports are made, then again soon after its
    // restart: each time some pods have a port and others not yet, and a
    // port may be POSTed with its status unwritten.
    for pause in [Duration::from_millis(0), Duration::from_millis(700)] {
        std::thread::sleep(pause);
        kuryr_testkit::wait_for("a first port", WAIT, || {
            (!world.pod_ports(&ns).is_empty()).then_some(())
        });
        world.controller.kill9();
        let vifs = world.vifs(&ns);
        eprintln!(
            "killed with {} ports and {vifs} vifs of {PODS} pods",
            world.pod_ports(&ns).len()
        );
        world.controller.restart();
    }
    for i in 0..PODS {
        world.wait_vif(&ns, &format!("p{i}"), WAIT);
    }
    let uids = pod_uids(&world, &ns);
    let ports = world.pod_ports(&ns);
    assert_eq!(ports.len(), PODS, "one port per pod, none twice: {ports:?}");
    let mut owners: Vec<&str> = ports.iter().map(|p| p.device_id.as_str()).collect();
    owners.sort_unstable();
    owners.dedup();
    assert_eq!(owners.len(), PODS, "every port a different pod's");
    for uid in uids.values() {
        assert!(owners.contains(&uid.as_str()), "pod {uid} has no port");
    }
    let mut addresses: Vec<String> =
        ports.iter().map(|p| p.fixed_ips[0].ip_address.to_string()).collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), PODS, "no address given twice");

    // Kill it again mid-deletion: nothing is left.
    world.cluster.kubectl(&[
        "delete",
        "pods",
        "--all",
        "-n",
        &ns,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    world.controller.kill9();
    world.controller.restart();
    kuryr_testkit::wait_for("every pod gone", WAIT, || {
        world.cluster.list(&["pods", "-n", &ns]).is_empty().then_some(())
    });
    kuryr_testkit::wait_for("every port gone", WAIT, || {
        world.pod_ports(&ns).is_empty().then_some(())
    });
    assert!(world.cluster.list(&["kuryrports.openstack.org", "-n", &ns]).is_empty());
}

#[test]
fn a_missing_subnetpool_is_an_event_on_the_namespace_until_it_is_fixed() {
    let missing = kuryr_testkit::fresh_uuid();
    let bad = |_: &str, router: &str| controller_conf(&missing, router, "");
    let Some(mut world) = ControllerWorld::new("k8s::a_missing_subnetpool", bad) else { return };
    let ns = world.namespace();
    let message = world.cluster.wait_event(
        "default",
        ("Namespace", &ns),
        "KuryrNetworkFailed",
        &missing,
        WAIT,
    );
    assert!(message.contains("pod_subnet_pool"), "{message}");
    world.pod(&ns, "web-0");
    // The pod waits, told why.
    let message =
        world.cluster.wait_event(&ns, ("Pod", "web-0"), "KuryrPortFailed", "not populated", WAIT);
    assert!(message.contains(&missing), "the pod's Event names the cause: {message}");
    assert!(world.namespace_networks(&ns).len() <= 1, "no network made twice");
    // Fixed: the same objects recover by themselves.
    let good = controller_conf(&world.pool, &world.router, "");
    std::fs::write(&world.controller.conf, good).expect("kuryr.conf");
    world.controller.restart();
    world.wait_network(&ns, WAIT);
    world.wait_vif(&ns, "web-0", WAIT);
}

#[test]
fn a_missing_security_group_is_an_event_on_the_pod() {
    let missing = kuryr_testkit::fresh_uuid();
    let bad = |pool: &str, router: &str| {
        controller_conf(
            pool,
            router,
            &format!("[neutron_defaults]\npod_security_groups = {missing}\n"),
        )
    };
    let Some(mut world) = ControllerWorld::new("k8s::a_missing_security_group", bad) else {
        return;
    };
    let ns = world.ready_namespace(WAIT);
    world.pod(&ns, "web-0");
    let message =
        world.cluster.wait_event(&ns, ("Pod", "web-0"), "KuryrPortFailed", &missing, WAIT);
    eprintln!("the pod's Event: {message}");
    assert!(world.pod_ports(&ns).is_empty(), "nothing half-made");
    let kp: Option<Value> = world.cluster.get(&["kuryrports.openstack.org", "-n", &ns, "web-0"]);
    assert!(kp.is_some_and(|kp| kp["status"]["vifs"]["eth0"].is_null()));
}

/// The replica among `replicas` whose identity (`<hostname>-<pid>`) holds
/// the Lease in `ns`.
fn leader(cluster: &Cluster, ns: &str, replicas: &[&ControllerProcess]) -> usize {
    kuryr_testkit::wait_for("a Lease holder", WAIT, || {
        let lease = cluster.get(&["leases.coordination.k8s.io", "-n", ns, "kuryr-controller"])?;
        let holder = lease["spec"]["holderIdentity"].as_str()?.to_string();
        replicas
            .iter()
            .position(|r| r.pid().is_some_and(|pid| holder.ends_with(&format!("-{pid}"))))
    })
}

#[test]
fn of_two_replicas_one_leads_and_the_other_takes_over() {
    let Some(cluster) = Cluster::or_skip("k8s::of_two_replicas") else { return };
    let lease_ns = cluster.namespace("ctl-lease");
    let env = [("POD_NAMESPACE", lease_ns.name.as_str())];
    let ha = |pool: &str, router: &str| {
        controller_conf(pool, router, "").replacen(
            "[kubernetes]\n",
            "[kubernetes]\ncontroller_ha = true\n",
            1,
        )
    };
    let Some(mut world) = ControllerWorld::with_env("k8s::of_two_replicas", ha, &env) else {
        return;
    };
    let mut second = world.replica("second", &env);
    let first = leader(&cluster, &lease_ns.name, &[&world.controller, &second]);
    let health = |r: &ControllerProcess| r.get("/healthz");
    let (lead, standby) =
        if first == 0 { (&world.controller, &second) } else { (&second, &world.controller) };
    kuryr_testkit::wait_for("the leader healthy", WAIT, || (health(lead) == "ok\n").then_some(()));
    assert_ne!(health(standby), "ok\n", "a standby is not ready");
    let ns = world.ready_namespace(WAIT);
    world.pod(&ns, "a");
    world.wait_vif(&ns, "a", WAIT);
    // kill -9 the leader: the standby takes the Lease once it expires.
    let started = Instant::now();
    if first == 0 {
        world.controller.kill9();
    } else {
        second.kill9();
    }
    world.pod(&ns, "b");
    world.wait_vif(&ns, "b", Duration::from_secs(60));
    eprintln!("latency leader killed -> the standby made a pod's port: {:?}", started.elapsed());
    let now = leader(&cluster, &lease_ns.name, &[&world.controller, &second]);
    assert_ne!(now, first, "the other replica holds the Lease");
    assert_eq!(world.pod_ports(&ns).len(), 2, "one port per pod");
    // Deleted while the new leader runs.
    world.delete_namespace(&ns, WAIT);
    assert!(world.namespace_networks(&ns).is_empty());
}

#[test]
fn twenty_pods_cost_at_most_two_neutron_calls_each() {
    let Some(mut world) = ControllerWorld::new("k8s::twenty_pods", conf) else { return };
    let ns = world.ready_namespace(WAIT);
    const PODS: usize = 20;
    let before = world.controller.neutron_requests();
    let started = Instant::now();
    world.pods(&ns, PODS);
    kuryr_testkit::wait_for("every vif", WAIT, || (world.vifs(&ns) == PODS).then_some(()));
    eprintln!("latency 20 pods applied -> 20 vifs: {:?}", started.elapsed());
    eprintln!("controller RSS with 20 pods: {:?} KiB", world.controller.rss_kib());
    let started = Instant::now();
    world.cluster.kubectl(&["delete", "pods", "--all", "-n", &ns, "--grace-period=0", "--force"]);
    kuryr_testkit::wait_for("every port gone", WAIT, || {
        world.pod_ports(&ns).is_empty().then_some(())
    });
    eprintln!("latency 20 pods deleted -> 0 ports: {:?}", started.elapsed());
    kuryr_testkit::wait_for("every KuryrPort gone", WAIT, || {
        world.cluster.list(&["kuryrports.openstack.org", "-n", &ns]).is_empty().then_some(())
    });
    let calls = world.controller.neutron_requests() - before;
    eprintln!("neutron calls for 20 pods' lifecycles: {calls}");
    assert!(calls <= 2 * PODS as u64, "at most 2 Neutron calls per pod, made {calls} for {PODS}");
}

/// Resets a test project's quota when dropped.
struct QuotaReset<'a>(&'a kuryr_testkit::Stack, String);

impl Drop for QuotaReset<'_> {
    fn drop(&mut self) {
        let _ = self.0.block_on(self.0.neutron.reset_quota(&self.1));
    }
}

#[test]
fn quota_and_an_unreachable_neutron_are_events_and_recover() {
    use kuryr_testkit::fault_proxy::{neutron_addr, Fault, FaultProxy};
    if !kuryr_testkit::stack_in_mode("k8s::quota_and_an_unreachable_neutron", "noauth") {
        return;
    }
    let proxy = FaultProxy::start(neutron_addr());
    // Pods' ports count against a project of the test's, through the proxy.
    let project = format!("ctlq{}", kuryr_testkit::hex(12));
    proxy.add("POST", "/v2.0/ports", Fault::SetProject(project.clone()), None);
    let url = proxy.url();
    let through_proxy = |pool: &str, router: &str| {
        controller_conf(pool, router, &format!("[neutron]\nauth_type = none\nendpoint = {url}\n"))
    };
    let test = "k8s::quota_and_an_unreachable_neutron";
    let Some(mut world) = ControllerWorld::new(test, through_proxy) else { return };
    let ns = world.namespace();
    let stack = &world.stack;
    let _reset = QuotaReset(stack, project.clone());
    let quota = |n: i64| {
        let q = openstack::neutron::Quota { port: Some(n), ..Default::default() };
        stack.block_on(stack.neutron.update_quota(&project, &q)).expect("setting the port quota");
    };
    quota(1);
    world.wait_network(&ns, WAIT);
    world.pod(&ns, "p0");
    world.wait_vif(&ns, "p0", WAIT);
    world.pod(&ns, "p1");
    let message =
        world.cluster.wait_event(&ns, ("Pod", "p1"), "KuryrPortFailed", "OverQuota", WAIT);
    eprintln!("over quota: {message}");
    assert_eq!(world.pod_ports(&ns).len(), 1, "nothing half-made");
    quota(3);
    world.wait_vif(&ns, "p1", WAIT);

    // Neutron answering 503 to every port POST: an Event, then recovery.
    let body = kuryr_testkit::fault_proxy::neutron_error("ServiceUnavailable", "down for the test");
    // (The first matching rule applies: the 503 replaces the project's.)
    proxy.clear();
    let down = proxy.add("POST", "/v2.0/ports", Fault::Status(503, body), None);
    world.pod(&ns, "p2");
    let message = world.cluster.wait_event(&ns, ("Pod", "p2"), "KuryrPortFailed", "503", WAIT);
    eprintln!("Neutron down: {message}");
    assert!(proxy.hits(down) > 0);
    proxy.clear();
    proxy.add("POST", "/v2.0/ports", Fault::SetProject(project.clone()), None);
    world.wait_vif(&ns, "p2", WAIT);
    assert_eq!(world.pod_ports(&ns).len(), 3, "one port per pod");
}

/// Deletes a network of the test's (its ports first) when dropped.
struct NetworkGuard(kuryr_testkit::Stack, String);

impl Drop for NetworkGuard {
    fn drop(&mut self) {
        self.0.remove_network_and_ports(&self.1);
    }
}

#[test]
fn the_default_driver_puts_every_pod_on_pod_subnet() {
    let test = "k8s::the_default_driver";
    let Some(stack) = kuryr_testkit::stack(test) else { return };
    if Cluster::or_skip(test).is_none() {
        return;
    }
    let network = stack.create_network_named(format!("ctl-{}", kuryr_testkit::hex(6)));
    let net = NetworkGuard(stack, network.id.to_string());
    let prefix = kuryr_testkit::fresh_v4();
    let gateway = format!("{prefix}.1").parse().ok();
    let subnet = net.0.create_subnet_named(&network.id, None, &format!("{prefix}.0/24"), gateway);
    let default_driver = |pool: &str, router: &str| {
        controller_conf(pool, router, &format!("[neutron_defaults]\npod_subnet = {}\n", subnet.id))
            .replacen("[kubernetes]\n", "[kubernetes]\npod_subnets_driver = default\n", 1)
    };
    let Some(mut world) = ControllerWorld::new(test, default_driver) else { return };
    let ns = world.namespace();
    world.pod(&ns, "web-0");
    let kp = world.wait_vif(&ns, "web-0", WAIT);
    assert_eq!(kp["status"]["vifs"]["eth0"]["networkId"], network.id.as_str());
    assert_eq!(kp["status"]["vifs"]["eth0"]["addresses"][0]["subnetId"], subnet.id.as_str());
    assert_eq!(kp["status"]["vifs"]["eth0"]["addresses"][0]["gateway"], format!("{prefix}.1"));
    assert!(
        world.cluster.get(&["kuryrnetworks.openstack.org", "-n", &ns, &ns]).is_none(),
        "no KuryrNetwork with the default driver"
    );
    assert_eq!(world.pod_ports(&ns).len(), 1);
    world.cluster.kubectl(&["delete", "pod", "-n", &ns, "web-0", "--grace-period=0", "--force"]);
    kuryr_testkit::wait_for("the port gone", WAIT, || {
        world.pod_ports(&ns).is_empty().then_some(())
    });
}
