//! Podman containers on Kuryr networks: ping through OVN, a second
//! attachment, DEL after the container dies.

use super::*;

// ------------------------------------------------------------- tests

#[test]
fn podman_containers_ping_through_ovn() {
    let mut w = podman_world!("podman_containers_ping_through_ovn");
    let net = w.make_net("a", true);
    let cni_name = w.nets[net].cni_name.clone();
    let listed = w.podman(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(
        listed.lines().any(|l| l == format!("{cni_name} kuryr-cni")),
        "podman sees the kuryr-cni network: {listed}"
    );

    let c1 = w.run("one", &[&cni_name]);
    let c2 = w.run("two", &[&cni_name]);
    let p1 = w.checked_port(c1, "eth0", net);
    let p2 = w.checked_port(c2, "eth0", net);
    assert_eq!(w.ports_of(c1).len(), 1, "one port per attachment");
    assert_eq!(w.ports_of(c2).len(), 1, "one port per attachment");
    let ip1 = w.assert_inside(c1, "eth0", net, &p1);
    let ip2 = w.assert_inside(c2, "eth0", net, &p2);
    let routes = w.exec(c1, &["ip", "route"]);
    let gateway = format!("default via {}.1 dev eth0", w.nets[net].prefix);
    assert!(routes.lines().any(|l| l.trim() == gateway), "{gateway}: {routes}");

    let started = Instant::now();
    w.assert_ping(c1, &ip2);
    eprintln!("timing: first ping through OVN {} ms", started.elapsed().as_millis());
    w.assert_ping(c2, &ip1);

    w.remove_and_check(c1, &[p1]);
    // The other container is untouched by the first one's DEL.
    assert_eq!(w.ports_of(c2).len(), 1);
    w.remove_and_check(c2, &[p2]);
}

#[test]
fn podman_second_attachment_on_another_network() {
    let mut w = podman_world!("podman_second_attachment_on_another_network");
    let a = w.make_net("a", true);
    // No gateway: the default route stays on eth0.
    let b = w.make_net("b", false);
    let (name_a, name_b) = (w.nets[a].cni_name.clone(), w.nets[b].cni_name.clone());

    // podman 4.3 keeps networks in a map: without interface_name, which
    // network gets eth0 varies from run to run.
    let nets = [format!("{name_a}:interface_name=eth0"), format!("{name_b}:interface_name=eth1")];
    let nets = [nets[0].as_str(), nets[1].as_str()];
    let c1 = w.run("one", &nets);
    let c2 = w.run("two", &nets);
    let mut ports = Vec::new();
    let mut eth1_ips = Vec::new();
    for c in [c1, c2] {
        assert_eq!(w.ports_of(c).len(), 2, "one port per attachment");
        let eth0 = w.checked_port(c, "eth0", a);
        let eth1 = w.checked_port(c, "eth1", b);
        w.assert_inside(c, "eth0", a, &eth0);
        eth1_ips.push(w.assert_inside(c, "eth1", b, &eth1));
        // busybox `ip route` ignores a `default` selector: filter here.
        let routes = w.exec(c, &["ip", "route"]);
        let defaults: Vec<&str> = routes.lines().filter(|l| l.starts_with("default")).collect();
        assert_eq!(defaults.len(), 1, "one default route: {routes}");
        assert!(defaults[0].contains(" dev eth0"), "the default route is on eth0: {routes}");
        ports.push(vec![eth0, eth1]);
    }
    // Through the second network (its own OVN logical switch).
    w.assert_ping(c1, &eth1_ips[1]);
    w.assert_ping(c2, &eth1_ips[0]);

    let p2 = ports.pop().expect("ports of two");
    let p1 = ports.pop().expect("ports of one");
    w.remove_and_check(c1, &p1);
    w.remove_and_check(c2, &p2);
}

#[test]
fn podman_cleanup_after_the_container_dies_runs_del() {
    let mut w = podman_world!("podman_cleanup_after_the_container_dies_runs_del");
    let net = w.make_net("a", true);
    let cni_name = w.nets[net].cni_name.clone();
    let c = w.run("one", &[&cni_name]);
    let port = w.checked_port(c, "eth0", net);
    // `podman kill` only signals: the teardown is `podman container
    // cleanup`, run by conmon with containers.conf's `conmon_env_vars`.
    let name = w.containers[c].name.clone();
    w.podman(&["kill", &name]);
    let started = Instant::now();
    wait_for("the port to go after the container died", Duration::from_secs(60), || {
        w.stack.port(&port.id).is_none().then_some(())
    });
    eprintln!("timing: port gone {} ms after podman kill", started.elapsed().as_millis());
    w.stack.local().assert_unplugged(&port.id);
    assert!(w.ports_of(c).is_empty(), "a port of {name} is left");
    let state = w.podman(&["inspect", "--format", "{{.State.Status}}", &name]);
    assert_eq!(state, "exited");
    // Removing the stopped container finds nothing more to do.
    w.podman(&["rm", &name]);
    assert!(w.ports_of(c).is_empty());
}
