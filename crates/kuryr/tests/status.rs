//! Functional tests of `kuryr status` against the real stack: with the
//! plugin running it shows the Docker network and its Neutron network, the
//! container's port with its address, MAC, veth and OVN state, and healthy
//! sockets; with the plugin killed the same view is rebuilt and the socket
//! reported down.
//!
//! `eval "$(scripts/stack env)"; cargo test -p kuryr --test status`.

use kuryr_testkit::*;
use serde_json::Value;

fn kuryr_status(f: &Fixture, args: &[&str]) -> (bool, String) {
    let socket = f.kuryr.socket.to_string_lossy().into_owned();
    let mut all = vec!["status", "--plugin-socket", &socket];
    all.extend_from_slice(&["--cni-socket", "/nonexistent/cni.sock"]);
    all.extend_from_slice(args);
    f.kuryr_command(&all)
}

fn status_json(f: &Fixture) -> Value {
    let (success, out) = kuryr_status(f, &["--json"]);
    assert!(success, "{out}");
    serde_json::from_str(&out).expect("status --json prints JSON")
}

#[test]
fn status_shows_networks_attachments_and_health() {
    let mut f = fixture_or_skip!("status_shows_networks_attachments_and_health");
    let (_, net, docker_net, network) = f.fresh_neutron_network();
    let att = f.run_detached(&f.name("c"), &net, &[]);
    let port = f.stack.port_of_endpoint(&att.endpoint);
    // Neutron's status follows ovn-installed shortly.
    wait_for("the port to be ACTIVE", std::time::Duration::from_secs(30), || {
        (f.stack.port(&port.id)?.status == "ACTIVE").then_some(())
    });

    let view = status_json(&f);
    assert_eq!(view["health"]["neutron"]["ok"], true, "{view:#}");
    assert_eq!(view["health"]["libnetwork_socket"]["ok"], true, "{view:#}");
    assert_eq!(view["health"]["docker"]["ok"], true, "{view:#}");
    assert_eq!(view["health"]["cni_socket"]["ok"], false, "{view:#}");
    assert_eq!(view["docker_driver"], f.driver());
    let networks = view["networks"].as_array().expect("networks");
    assert!(
        networks.iter().any(|n| n["docker_network"] == docker_net.as_str()
            && n["neutron_network"] == network.id.as_str()
            && n["name"] == net.as_str()),
        "{view:#}"
    );
    let find = |view: &Value| -> Value {
        view["attachments"]
            .as_array()
            .expect("attachments")
            .iter()
            .find(|a| a["port_id"] == port.id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("port {} not in {view:#}", port.id))
    };
    let a = find(&view);
    let ip = att.ip.expect("container IPv4").to_string();
    assert_eq!(a["ips"], serde_json::json!([ip]));
    assert_eq!(a["mac"], port.mac_address.as_str());
    assert_eq!(a["host_veth_exists"], true);
    assert_eq!(a["ovn_installed"], true);
    assert_eq!(a["neutron_status"], "ACTIVE");
    assert_eq!(a["gc"], "in use");
    assert!(a["owner"].as_str().expect("owner").contains(&att.endpoint[..12]));

    // The text form says the same.
    let (_, text) = kuryr_status(&f, &[]);
    assert!(text.contains(port.id.as_str()) && text.contains(&ip), "{text}");

    // With the plugin down the view is rebuilt all the same.
    f.kuryr.kill();
    let view = status_json(&f);
    assert_eq!(view["health"]["libnetwork_socket"]["ok"], false, "{view:#}");
    assert_eq!(find(&view)["gc"], "in use");
    f.kuryr.crash_and_restart();
}
