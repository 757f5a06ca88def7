//! The checks of the migration test that stand alone: a port as its
//! plugin left it, the operator's tools on upstream's objects, restarting
//! ours in a mode, what is gone or restored after the switch, and which
//! plugin served which endpoint.

use super::*;

/// A container's port as the driver that attached it left it: bound here,
/// ACTIVE, holding the address Docker reports, on the expected network, and
/// inside `subnet_cidr`; its host end on br-int.
pub(super) fn check_attachment(
    f: &Fixture,
    att: &Attachment,
    network_id: &str,
    subnet_cidr: &str,
) -> Port {
    let s = &f.stack;
    let port = s.wait_active_port_of_endpoint(&att.endpoint, WAIT);
    assert_eq!(port.network_id, network_id, "port {} network", port.id);
    assert_eq!(port.binding_host_id, s.local().host, "port {} binding:host_id", port.id);
    assert_eq!(port.binding_vif_type, "ovs", "port {} vif_type", port.id);
    assert_eq!(port.device_owner, "compute:kuryr", "port {} owner", port.id);
    let ip = att.ip.expect("an IPv4 address");
    assert!(
        port.fixed_ips.iter().any(|f| f.ip_address == ip),
        "port {} holds {:?}, Docker says {ip}",
        port.id,
        port.fixed_ips
    );
    assert!(v4_cidr_contains(subnet_cidr, &format!("{ip}/32")), "{ip} is not in {subnet_cidr}");
    assert!(
        port.mac_address.eq_ignore_ascii_case(&att.mac),
        "MAC: port {} vs Docker {}",
        port.mac_address,
        att.mac
    );
    let (tap, _) = veth_names(&port.id);
    assert!(link_exists(&tap), "host veth {tap} missing");
    assert!(s.local().ovs_ports().contains(&tap), "{tap} not on {}", s.local().bridge);
    assert_eq!(ovs_external_id(&tap, "iface-id").as_deref(), Some(port.id.as_str()));
    port
}

/// `kuryr gc --dry-run` (on these networks only, judged as driver
/// kuryrmig: the plugin socket's file name is the driver name) leaves
/// upstream's live ports alone, and `kuryr status` lists upstream's networks
/// and attachments, in use.
pub(super) fn tools_see_upstream_in_use(
    f: &Fixture,
    t0: Instant,
    networks: &[&Network],
    docker_ids: &[&String],
    upstream_ports: &[&Port],
) {
    let mut args = vec![
        "--config-file".to_string(),
        f.kuryr.config.display().to_string(),
        "gc".to_string(),
        "--dry-run".to_string(),
        "--min-age".to_string(),
        "0".to_string(),
        "--plugin-socket".to_string(),
        format!("/run/docker/plugins/{DRIVER}.sock"),
    ];
    for n in networks {
        args.push("--network".to_string());
        args.push(n.id.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let kuryr = kuryr_bin();
    let out = run(&kuryr.to_string_lossy(), &args);
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("kuryr gc --dry-run on upstream's networks:\n{text}");
    assert!(out.status.success(), "kuryr gc --dry-run failed");
    for p in upstream_ports {
        assert!(
            !text.lines().any(|l| l.contains(p.id.as_str())),
            "gc would touch upstream's live port {}",
            p.id
        );
    }
    assert!(text.contains("5 ports in use"), "gc sees upstream's 5 ports in use");
    step(t0, "kuryr gc --dry-run leaves upstream's live ports alone");

    // And `kuryr status` lists upstream's networks and attachments.
    let kuryr = kuryr_bin();
    let out = run(
        &kuryr.to_string_lossy(),
        &[
            "--config-file",
            &f.kuryr.config.display().to_string(),
            "status",
            "--plugin-socket",
            &format!("/run/docker/plugins/{DRIVER}.sock"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "kuryr status failed: {text}");
    for id in docker_ids {
        assert!(
            text.lines().any(|l| l.contains(&id[..12])),
            "kuryr status lists Docker network {id}:\n{text}"
        );
    }
    for p in upstream_ports {
        assert!(
            text.lines().any(|l| l.contains(p.id.as_str()) && l.contains("[in use]")),
            "kuryr status lists upstream's port {} in use:\n{text}",
            p.id
        );
    }
    step(t0, "kuryr status lists upstream's networks and ports, in use");
}

/// Restarts ours on the same address with `ip_range_as_subnet` as given;
/// returns once it answers Plugin.Activate.
pub(super) fn restart_ours(f: &mut Fixture, addr: SocketAddr, ip_range_as_subnet: bool) {
    f.kuryr.stop();
    f.kuryr.rewrite_config(&ours_config(ip_range_as_subnet));
    f.kuryr.launch();
    upstream::wait_activate(addr, WAIT, || true);
}

/// Asserts Neutron has neither the network nor its subnet any more.
pub(super) fn assert_network_and_subnet_gone(s: &Stack, network: &Network, subnet: &Subnet) {
    assert!(s.network(&network.id).is_none(), "network {} deleted", network.id);
    assert!(s.subnet(&subnet.id).is_none(), "subnet {} deleted", subnet.id);
}

/// Waits until the network a Docker network adopted is back as the
/// operator made it: not deleted, not renamed, only the operator's tag on it
/// and its subnet, no ports and no kuryrPool left.
pub(super) fn assert_adopted_network_restored(
    s: &Stack,
    pre: &Network,
    pre_subnet: &Subnet,
    premade: &str,
    cidr3: &str,
) {
    eventually("the adopted network back as the operator made it", || {
        let mut wrong = Vec::new();
        match s.network(&pre.id) {
            None => wrong.push(format!("the adopted network {} was deleted", pre.id)),
            Some(n) => {
                if n.tags != [USER_TAG.to_string()] {
                    wrong.push(format!("network tags {:?}", n.tags));
                }
                if n.name != premade {
                    wrong.push(format!("network renamed to {:?}", n.name));
                }
            }
        }
        match s.subnet(&pre_subnet.id) {
            None => wrong.push(format!("its subnet {} was deleted", pre_subnet.id)),
            Some(sn) => {
                if sn.tags != [USER_TAG.to_string()] {
                    wrong.push(format!("subnet tags {:?}", sn.tags));
                }
            }
        }
        for p in s.non_neutron_ports(&pre.id) {
            wrong.push(format!("port {} ({}) left", p.id, p.name));
        }
        for p in s.kuryr_pools(cidr3) {
            wrong.push(format!("subnetpool {} left", p.id));
        }
        wrong
    });
}

/// Asserts each log shows the endpoints its plugin served, and upstream's
/// none of ours.
pub(super) fn assert_who_served(
    up_log: &str,
    ours_log: &str,
    upstream: &[&Attachment],
    ours: &[&Attachment],
) {
    for att in upstream {
        assert!(up_log.contains(&att.endpoint), "upstream served {}", att.endpoint);
    }
    for att in ours {
        assert!(ours_log.contains(&att.endpoint), "ours served {}", att.endpoint);
        assert!(!up_log.contains(&att.endpoint), "upstream did not serve {}", att.endpoint);
    }
}
