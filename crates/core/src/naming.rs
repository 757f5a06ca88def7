//! Names and tags of the Neutron objects and host devices Kuryr makes.
//!
//! They follow upstream kuryr-libnetwork exactly where upstream has a
//! convention, so an operator switching implementations finds the same
//! objects (docs/mapping.md lists them). Neutron's API limits a tag to 60
//! characters, which is why a 64-hex Docker id is split into two halves.

pub mod cni;
pub mod pod;

/// `device_owner` of every port Kuryr binds (upstream's constant). Also the
/// tag that marks a port as made by Kuryr.
pub const DEVICE_OWNER: &str = "compute:kuryr";
/// Name of a port created for an address before its endpoint exists.
pub const UNBOUND_PORT_NAME: &str = "kuryr-unbound-port";
/// Name of a pre-plugged port waiting in a pool (upstream
/// kuryr-kubernetes' constant).
pub const POOL_PORT_NAME: &str = "kuryr-pool-port";
/// Tag on a port that belongs to a pool (ready or being returned), next to
/// [`DEVICE_OWNER`]. A claimed port loses it once its owner is recorded.
pub const POOL_TAG: &str = "kuryr.pool";
/// Next to [`POOL_TAG`]: whose pools a port is in, `kuryr.pool.<service>:
/// <hash of the socket path>` (service `docker` or `cni`), so two services,
/// or two instances on their own sockets, never take each other's ports.
/// Stable across restarts on the same socket.
pub fn pool_owner_tag(service: &str, socket: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    // FNV-1a: stable across builds (unlike std's hasher).
    let hash =
        socket.as_os_str().as_bytes().iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("kuryr.pool.{service}:{hash:016x}")
}
/// OVS `external_ids` key on a ready pool port's interface, valued with its
/// Neutron network id. A ready pool port has no `vm-uuid`.
pub const OVS_POOL_KEY: &str = "kuryr-pool";
/// Tag on a pre-existing port that Kuryr adopted (reset, never deleted).
pub const EXISTING_PORT_TAG: &str = "kuryr.port.existing";
/// Whether Kuryr wrote this tag (what releasing an adopted port removes).
pub fn is_kuryr_tag(tag: &str) -> bool {
    tag == DEVICE_OWNER || tag.starts_with("kuryr.")
}
/// Tag on a pre-existing subnetpool that Kuryr uses (never deleted).
pub const EXISTING_SUBNETPOOL_TAG: &str = "kuryr.subnetpool.existing";
/// Tag on a network created for a default-pool allocation before Docker
/// named it (between RequestPool and CreateNetwork).
pub const PENDING_NETWORK_TAG: &str = "kuryr.net.pending";
/// Name of that network until CreateNetwork names it.
pub const PENDING_NETWORK_NAME: &str = "kuryr-net-pending";

const NET_NAME_PREFIX: &str = "kuryr-net-";
const SUBNET_NAME_PREFIX: &str = "kuryr-subnet-";
const ID_LOW_HALF: &str = "kuryr.net.uuid.lh:";
const ID_HIGH_HALF: &str = "kuryr.net.uuid.uh:";
const EXISTING_NET_TAG: &str = "kuryr.net.existing:";
const DOCKER_NET_LOW_HALF: &str = "kuryr.docker.net.lh:";
const DOCKER_NET_HIGH_HALF: &str = "kuryr.docker.net.uh:";
const NIC_NAME_LEN: usize = 14;
const HOST_VETH_PREFIX: &str = "tap";
const CONTAINER_VETH_PREFIX: &str = "t_c";
const EXPOSED_SG_SUFFIX: &str = "-exposed_ports";
const LINUX_BRIDGE_PREFIX: &str = "brq";

/// A Docker id split into upstream's two tag halves (`…lh:` and `…uh:`).
/// Upstream uses the same prefixes for a network's Docker network id and for
/// a port's Docker endpoint id.
pub fn id_tags(docker_id: &str) -> Vec<String> {
    split_tags(docker_id, ID_LOW_HALF, ID_HIGH_HALF)
}

/// Docker network id on a port (our addition; upstream records none).
pub fn docker_network_tags(docker_network_id: &str) -> Vec<String> {
    split_tags(docker_network_id, DOCKER_NET_LOW_HALF, DOCKER_NET_HIGH_HALF)
}

fn split_tags(id: &str, low: &str, high: &str) -> Vec<String> {
    let (lh, uh) = split_at_char(id, 32);
    let mut tags = vec![format!("{low}{lh}")];
    if !uh.is_empty() {
        let (uh, _) = split_at_char(uh, 32);
        tags.push(format!("{high}{uh}"));
    }
    tags
}

/// Rebuilds a Docker id from a tag list carrying its two halves.
pub fn id_from_tags(tags: &[String]) -> Option<String> {
    half_from_tags(tags, ID_LOW_HALF, ID_HIGH_HALF)
}

/// The Docker network id from a port's `kuryr.docker.net.lh/uh` tags.
pub fn docker_network_from_tags(tags: &[String]) -> Option<String> {
    half_from_tags(tags, DOCKER_NET_LOW_HALF, DOCKER_NET_HIGH_HALF)
}

fn half_from_tags(tags: &[String], low: &str, high: &str) -> Option<String> {
    let lh = tags.iter().find_map(|t| t.strip_prefix(low))?;
    let uh = tags.iter().find_map(|t| t.strip_prefix(high)).unwrap_or("");
    Some(format!("{lh}{uh}"))
}

/// Tag marking a pre-existing network adopted for a Docker network.
pub fn existing_network_tag(docker_network_id: &str) -> String {
    format!("{EXISTING_NET_TAG}{}", split_at_char(docker_network_id, 12).0)
}

/// `kuryr-net-<docker network id[:8]>`.
pub fn network_name(docker_network_id: &str) -> String {
    format!("{NET_NAME_PREFIX}{}", split_at_char(docker_network_id, 8).0)
}

/// `kuryr-subnet-<cidr>`.
pub fn subnet_name(cidr: &str) -> String {
    format!("{SUBNET_NAME_PREFIX}{cidr}")
}

/// Whether Kuryr named (and so made) this subnet.
pub fn is_kuryr_subnet_name(name: &str) -> bool {
    name.starts_with(SUBNET_NAME_PREFIX)
}

/// `<prefix>-<cidr>` (`kuryrPool-10.0.0.0/24`).
pub fn subnetpool_name(prefix: &str, cidr: &str) -> String {
    format!("{prefix}-{cidr}")
}

/// A bound port is named after its endpoint, as upstream does.
pub fn port_name(endpoint_id: &str) -> String {
    format!("{endpoint_id}-port")
}

/// `<port id>-exposed_ports`: the security group of a port's exposed ports.
pub fn exposed_ports_sg_name(port_id: &str) -> String {
    format!("{port_id}{EXPOSED_SG_SUFFIX}")
}

/// Host end of the veth: `tap` + the port id, cut to 14 characters.
pub fn host_veth_name(port_id: &str) -> String {
    nic_name(HOST_VETH_PREFIX, port_id)
}

/// Container end of the veth before Docker renames it to `eth<N>`.
pub fn container_veth_name(port_id: &str) -> String {
    nic_name(CONTAINER_VETH_PREFIX, port_id)
}

/// Linux bridge of a network for `vif_type=bridge`, as Neutron's linuxbridge agent names it.
pub fn linux_bridge_name(network_id: &str) -> String {
    nic_name(LINUX_BRIDGE_PREFIX, network_id)
}

fn nic_name(prefix: &str, id: &str) -> String {
    let mut name = format!("{prefix}{id}");
    name.truncate(NIC_NAME_LEN);
    name
}

fn split_at_char(s: &str, n: usize) -> (&str, &str) {
    match s.char_indices().nth(n) {
        Some((idx, _)) => s.split_at(idx),
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "33b877dad1f536366be7fbcef3a6ef2e56a249ca82d0bb4a224f20607f10188f";
    const PORT: &str = "5a2c3e44-1bd6-4d4c-a3a8-0d6e4e6e6a8b";

    #[test]
    fn upstream_network_names_and_tags() {
        assert_eq!(network_name(NET), "kuryr-net-33b877da");
        assert_eq!(
            id_tags(NET),
            vec![
                "kuryr.net.uuid.lh:33b877dad1f536366be7fbcef3a6ef2e",
                "kuryr.net.uuid.uh:56a249ca82d0bb4a224f20607f10188f"
            ]
        );
        assert_eq!(existing_network_tag(NET), "kuryr.net.existing:33b877dad1f5");
        assert_eq!(subnet_name("10.10.1.0/24"), "kuryr-subnet-10.10.1.0/24");
        assert_eq!(subnetpool_name("kuryrPool", "10.10.1.0/24"), "kuryrPool-10.10.1.0/24");
        assert_eq!(port_name(NET), format!("{NET}-port"));
    }

    #[test]
    fn tags_fit_neutron_limit_and_round_trip() {
        for tag in id_tags(NET).iter().chain(docker_network_tags(NET).iter()) {
            assert!(tag.len() <= 60, "{tag}");
        }
        assert_eq!(id_from_tags(&id_tags(NET)).as_deref(), Some(NET));
        assert_eq!(docker_network_from_tags(&docker_network_tags(NET)).as_deref(), Some(NET));
        assert_eq!(id_from_tags(&docker_network_tags(NET)), None);
        assert_eq!(id_tags("short"), vec!["kuryr.net.uuid.lh:short"]);
    }

    #[test]
    fn device_names_fit_ifnamsiz() {
        assert_eq!(host_veth_name(PORT), "tap5a2c3e44-1b");
        assert_eq!(container_veth_name(PORT), "t_c5a2c3e44-1b");
        assert_eq!(linux_bridge_name(PORT), "brq5a2c3e44-1b");
        assert!(host_veth_name(PORT).len() <= 15);
        assert_eq!(exposed_ports_sg_name(PORT), format!("{PORT}-exposed_ports"));
    }
}
