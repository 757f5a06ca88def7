//! Containers: what Docker reports of an attachment, what a container
//! sees of its eth0, and pings from inside it.

use std::net::IpAddr;
use std::time::Duration;

use crate::{docker, inspect, run, wait_for};

/// One container's attachment to one Docker network, per `docker inspect`.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// Docker's endpoint id.
    pub endpoint: String,
    /// Docker's network id.
    pub network_id: String,
    /// IPv4 address.
    pub ip: Option<IpAddr>,
    /// IPv4 prefix length.
    pub prefix: u8,
    /// IPv4 gateway.
    pub gateway: Option<IpAddr>,
    /// IPv6 address.
    pub ipv6: Option<IpAddr>,
    /// IPv6 prefix length.
    pub ipv6_prefix: u8,
    /// IPv6 gateway.
    pub ipv6_gateway: Option<IpAddr>,
    /// MAC address.
    pub mac: String,
}

/// A container's attachment to a network, from `docker inspect`.
pub fn attachment(container: &str, network: &str) -> Attachment {
    let info = inspect(container);
    let net = &info["NetworkSettings"]["Networks"][network];
    assert!(
        net.is_object(),
        "container {container} is not on network {network}: {}",
        info["NetworkSettings"]["Networks"]
    );
    let s = |k: &str| net[k].as_str().unwrap_or_default().to_string();
    let ip = |k: &str| net[k].as_str().and_then(|v| v.parse().ok());
    Attachment {
        endpoint: s("EndpointID"),
        network_id: s("NetworkID"),
        ip: ip("IPAddress"),
        prefix: net["IPPrefixLen"].as_u64().unwrap_or(0) as u8,
        gateway: ip("Gateway"),
        ipv6: ip("GlobalIPv6Address"),
        ipv6_prefix: net["GlobalIPv6PrefixLen"].as_u64().unwrap_or(0) as u8,
        ipv6_gateway: ip("IPv6Gateway"),
        mac: s("MacAddress"),
    }
}

/// A throwaway container on `network` pings `target` once (`docker run
/// --rm … ping -c 1 -W 5`); must succeed.
pub fn ping_from_new_container(network: &str, target: IpAddr) {
    docker(&[
        "run",
        "--rm",
        "--network",
        network,
        "kbox",
        "ping",
        "-c",
        "1",
        "-W",
        "5",
        &target.to_string(),
    ]);
}

/// `docker exec <c> <args>`; must succeed.
pub fn exec(container: &str, args: &[&str]) -> String {
    let mut all = vec!["exec", container];
    all.extend_from_slice(args);
    docker(&all)
}

/// What eth0 looks like inside a container.
#[derive(Debug)]
pub struct Eth0 {
    /// MAC address, lower case.
    pub mac: String,
    /// MTU.
    pub mtu: u32,
    /// `addr/prefix` of every global address.
    pub addresses: Vec<String>,
    /// `ip route` lines (IPv4).
    pub routes: Vec<String>,
    /// `ip -6 route` lines.
    pub routes6: Vec<String>,
}

impl Eth0 {
    /// Asserts eth0 holds `address` (`addr/prefix`).
    pub fn assert_address(&self, address: &str) {
        assert!(
            self.addresses.iter().any(|a| a == address),
            "{address} not on eth0: {:?}",
            self.addresses
        );
    }

    /// Asserts eth0 has the IPv4 route `route` (an `ip route` line).
    pub fn assert_route(&self, route: &str) {
        assert!(self.routes.iter().any(|r| r == route), "{route} not on eth0: {:?}", self.routes);
    }

    /// Asserts eth0 has an IPv4 route whose `ip route` line starts with
    /// `prefix` (the line goes on with what the kernel adds: proto, metric).
    pub fn assert_route_starting(&self, prefix: &str) {
        assert_starting(&self.routes, prefix);
    }

    /// Asserts eth0 has an IPv6 route whose `ip -6 route` line starts with
    /// `prefix`.
    pub fn assert_route6_starting(&self, prefix: &str) {
        assert_starting(&self.routes6, prefix);
    }
}

fn assert_starting(routes: &[String], prefix: &str) {
    assert!(
        routes.iter().any(|r| r.starts_with(prefix)),
        "no route {prefix}... on eth0: {routes:?}"
    );
}

/// The container's `eth0`, from `ip` inside it.
pub fn eth0(container: &str) -> Eth0 {
    let mac = exec(container, &["cat", "/sys/class/net/eth0/address"]);
    let mtu = exec(container, &["cat", "/sys/class/net/eth0/mtu"]).parse().expect("mtu");
    let addr_out = exec(container, &["ip", "-o", "addr", "show", "dev", "eth0"]);
    let addresses = addr_out
        .lines()
        .filter(|l| !l.contains("scope link"))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            words.next().map(str::to_string)
        })
        .collect();
    let routes = exec(container, &["ip", "route"])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let routes6 = exec(container, &["ip", "-6", "route"])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    Eth0 { mac, mtu, addresses, routes, routes6 }
}

/// Pings `target` from inside `container` (a few tries: the first packet
/// may race the neighbour's flows).
pub fn ping(container: &str, target: IpAddr) {
    let target = target.to_string();
    let mut last = String::new();
    for _ in 0..5 {
        let out = run("docker", &["exec", container, "ping", "-c", "1", "-W", "2", &target]);
        if out.status.success() {
            return;
        }
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    panic!("{container} cannot ping {target}: {last}");
}

/// Starts `ping -i 0.2 <target>` in the background inside `container`,
/// writing to `/tmp/<tag>.ping` there; [`stop_background_ping`] ends it.
pub fn start_background_ping(container: &str, target: IpAddr, tag: &str) {
    docker(&[
        "exec",
        "-d",
        container,
        "sh",
        "-c",
        &format!("exec ping -i 0.2 {target} >/tmp/{tag}.ping 2>&1"),
    ]);
}

/// Interrupts the background ping of [`start_background_ping`] (so it
/// prints its statistics); returns (transmitted, received) and the output.
pub fn stop_background_ping(container: &str, tag: &str) -> (u64, u64, String) {
    docker(&["exec", container, "killall", "-INT", "ping"]);
    let path = format!("/tmp/{tag}.ping");
    let text = wait_for("the background ping's statistics", Duration::from_secs(10), || {
        let text = docker(&["exec", container, "cat", &path]);
        text.contains("packets received").then_some(text)
    });
    let stats =
        text.lines().find(|l| l.contains("packets transmitted")).unwrap_or_default().to_string();
    let number_before = |word: &str| -> u64 {
        let words: Vec<&str> = stats.split_whitespace().collect();
        words
            .iter()
            .position(|w| w.starts_with(word))
            .and_then(|i| i.checked_sub(2))
            .and_then(|i| words.get(i))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {word} count in {stats:?}"))
    };
    (number_before("transmitted"), number_before("received"), text)
}
