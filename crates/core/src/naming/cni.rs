//! Names and tags of the Neutron ports the CNI path makes (docs/cni.md
//! § Mapping to Neutron), written once here for the daemon and GC alike.
//! Neutron limits a tag to 60 characters.

use std::collections::BTreeMap;

use super::DEVICE_OWNER;

const CID_LOW_HALF: &str = "kuryr.cni.cid.lh:";
const CID_HIGH_HALF: &str = "kuryr.cni.cid.uh:";
const IFNAME: &str = "kuryr.cni.ifname:";
const NETWORK: &str = "kuryr.cni.net:";
const TAG_MAX: usize = 60;
/// Longest container id the two halves can carry.
pub const MAX_CONTAINER_ID: usize = 2 * (TAG_MAX - CID_LOW_HALF.len());

/// OVS interface `external_ids` key: the CNI network name.
pub const OVS_NETWORK_KEY: &str = "kuryr-cni-net";
/// OVS interface `external_ids` key: the ifname (`vm-uuid` is the container id).
pub const OVS_IFNAME_KEY: &str = "kuryr-cni-ifname";

/// The extra `external_ids` of an attachment's OVS interface.
pub fn ovs_external_ids(cni_network: &str, ifname: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (OVS_NETWORK_KEY.to_string(), cni_network.to_string()),
        (OVS_IFNAME_KEY.to_string(), ifname.to_string()),
    ])
}

/// `kuryr-cni-<container id[:12]>-<ifname>`.
pub fn port_name(container_id: &str, ifname: &str) -> String {
    let short: String = container_id.chars().take(12).collect();
    format!("kuryr-cni-{short}-{ifname}")
}

/// Every tag of an attachment's port: `compute:kuryr`, the container id in
/// two halves, the ifname and the CNI network (configuration) name.
pub fn port_tags(container_id: &str, ifname: &str, cni_network: &str) -> Vec<String> {
    let mut tags = vec![DEVICE_OWNER.to_string()];
    tags.extend(container_id_tags(container_id));
    tags.push(ifname_tag(ifname));
    tags.push(network_tag(cni_network));
    tags
}

/// The id split in the middle (a 64-hex id gives 32 + 32, like the Docker
/// path's endpoint tags); an id up to [`MAX_CONTAINER_ID`] fits.
pub fn container_id_tags(container_id: &str) -> Vec<String> {
    let middle = container_id.len().div_ceil(2);
    let (low, high) = container_id.split_at(middle);
    let mut tags = vec![format!("{CID_LOW_HALF}{low}")];
    if !high.is_empty() {
        tags.push(format!("{CID_HIGH_HALF}{high}"));
    }
    tags
}

/// `kuryr.cni.ifname:<ifname>`.
pub fn ifname_tag(ifname: &str) -> String {
    format!("{IFNAME}{ifname}")
}

/// The CNI network name, cut to fit a tag.
pub fn network_tag(cni_network: &str) -> String {
    let mut tag = format!("{NETWORK}{cni_network}");
    tag.truncate(TAG_MAX);
    tag
}

/// `(container id, ifname)` of a CNI port, from its tags.
pub fn attachment_of(tags: &[String]) -> Option<(String, String)> {
    let low = tags.iter().find_map(|t| t.strip_prefix(CID_LOW_HALF))?;
    let high = tags.iter().find_map(|t| t.strip_prefix(CID_HIGH_HALF)).unwrap_or("");
    let ifname = tags.iter().find_map(|t| t.strip_prefix(IFNAME))?;
    Some((format!("{low}{high}"), ifname.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "3f2c1a9e8b7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170615a4b3";

    #[test]
    fn tags_fit_and_round_trip() {
        let tags = port_tags(CID, "eth0", "kuryr");
        assert_eq!(
            tags,
            vec![
                "compute:kuryr",
                "kuryr.cni.cid.lh:3f2c1a9e8b7d6c5b4a39281706f5e4d3",
                "kuryr.cni.cid.uh:c2b1a09f8e7d6c5b4a3928170615a4b3",
                "kuryr.cni.ifname:eth0",
                "kuryr.cni.net:kuryr",
            ]
        );
        assert_eq!(attachment_of(&tags), Some((CID.into(), "eth0".into())));
        let long = "a".repeat(MAX_CONTAINER_ID);
        for tag in port_tags(&long, "eth0", &"n".repeat(200)) {
            assert!(tag.len() <= TAG_MAX, "{tag}");
        }
        assert_eq!(attachment_of(&port_tags("x", "net1", "n")), Some(("x".into(), "net1".into())));
        assert_eq!(attachment_of(&["compute:kuryr".to_string()]), None);
    }

    #[test]
    fn port_name_is_short() {
        assert_eq!(port_name(CID, "eth0"), "kuryr-cni-3f2c1a9e8b7d-eth0");
        assert_eq!(port_name("abc", "eth1"), "kuryr-cni-abc-eth1");
    }
}
