//! Names and tags of a Kubernetes pod's port, as upstream kuryr-kubernetes
//! wrote them (../shared/docs/kubernetes.md): the port is named
//! `<namespace>/<pod>` and its `device_id` is the pod's uid, so an operator
//! switching implementations finds the same ports. A tag names the
//! cluster (the uid of its `kube-system` namespace, which the controller
//! reads at start), so GC and an operator can tell which cluster's
//! controller made a port. A namespace's network and subnet (the
//! `namespace` pod subnets driver) are both named `<namespace uid>/<namespace>`
//! as upstream named them, and tagged with the namespace and the cluster.
//! The controller arrives with issue 14.

use std::collections::BTreeMap;

use super::DEVICE_OWNER;

const NAMESPACE: &str = "kuryr.pod.ns:";
const CLUSTER: &str = "kuryr.k8s.cluster:";
const NETWORK_NAMESPACE: &str = "kuryr.k8s.ns:";
const TAG_MAX: usize = 60;
/// Neutron's limit on a port name.
const NAME_MAX: usize = 255;

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(mut text: String, max: usize) -> String {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// OVS interface `external_ids` key of a pod's interface plugged by a node
/// daemon in Kubernetes mode: the CNI container id (the pod sandbox), so
/// DEL and GC find the host side without the apiserver (`vm-uuid` is the
/// pod's uid, as the port's `device_id`).
pub const OVS_CONTAINER_KEY: &str = "kuryr-k8s-container";
/// OVS interface `external_ids` key: the pod interface's `CNI_IFNAME`.
pub const OVS_IFNAME_KEY: &str = "kuryr-k8s-ifname";
/// OVS interface `external_ids` key: the CNI network (configuration)
/// name, which scopes a CNI GC (the runtime lists the valid attachments of
/// one network).
pub const OVS_NETWORK_KEY: &str = "kuryr-k8s-net";
/// OVS interface `external_ids` key: `<namespace>/<pod>`, for an operator
/// reading `ovs-vsctl list interface`.
pub const OVS_POD_KEY: &str = "kuryr-k8s-pod";

/// The extra `external_ids` of a pod's OVS interface: the attachment
/// (container id, ifname), its CNI network and the pod's name.
pub fn ovs_external_ids(
    namespace: &str,
    name: &str,
    container_id: &str,
    ifname: &str,
    cni_network: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (OVS_CONTAINER_KEY.to_string(), container_id.to_string()),
        (OVS_IFNAME_KEY.to_string(), ifname.to_string()),
        (OVS_NETWORK_KEY.to_string(), cni_network.to_string()),
        (OVS_POD_KEY.to_string(), format!("{namespace}/{name}")),
    ])
}

/// `<namespace>/<pod name>`, cut to Neutron's 255 characters.
pub fn port_name(namespace: &str, name: &str) -> String {
    cut(format!("{namespace}/{name}"), NAME_MAX)
}

/// `compute:kuryr`, the pod's namespace (cut to fit a tag): what finds a
/// namespace's ports, and what tells GC a port is a pod's; and its
/// cluster's [`cluster_tag`].
pub fn port_tags(namespace: &str, cluster: &str) -> Vec<String> {
    let ns = cut(format!("{NAMESPACE}{namespace}"), TAG_MAX);
    vec![DEVICE_OWNER.to_string(), ns, cluster_tag(cluster)]
}

/// `kuryr.k8s.cluster:<cluster id>`: the cluster whose controller made a
/// port (a uid, 36 characters, fits a tag; anything longer is cut).
pub fn cluster_tag(cluster: &str) -> String {
    cut(format!("{CLUSTER}{cluster}"), TAG_MAX)
}

/// `<namespace uid>/<namespace>`: upstream's name of a namespace's network
/// and of its subnet, cut to 255 characters.
pub fn namespace_network_name(namespace: &str, uid: &str) -> String {
    cut(format!("{uid}/{namespace}"), NAME_MAX)
}

/// The tags of a namespace's network and subnet: `kuryr.k8s.ns:<namespace>`
/// and the cluster's [`cluster_tag`] (not a port's namespace tag, so GC
/// never takes them for a pod's).
pub fn namespace_network_tags(namespace: &str, cluster: &str) -> Vec<String> {
    vec![cut(format!("{NETWORK_NAMESPACE}{namespace}"), TAG_MAX), cluster_tag(cluster)]
}

/// The namespace of a namespace's network or subnet, from its tags.
pub fn namespace_of_network(tags: &[String]) -> Option<&str> {
    tags.iter().find_map(|t| t.strip_prefix(NETWORK_NAMESPACE))
}

/// The cluster of a pod's port, from its tags.
pub fn cluster_of(tags: &[String]) -> Option<&str> {
    tags.iter().find_map(|t| t.strip_prefix(CLUSTER))
}

/// The namespace of a pod's port, from its tags.
pub fn namespace_of(tags: &[String]) -> Option<&str> {
    tags.iter().find_map(|t| t.strip_prefix(NAMESPACE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        assert_eq!(port_name("default", "web-0"), "default/web-0");
        assert_eq!(port_name("ns", &"p".repeat(300)).len(), 255);
        let cluster = "6f1c0f5e-0d4b-4a51-9d39-8c2d1f0e7a11";
        let tags = port_tags("default", cluster);
        assert_eq!(
            tags,
            vec![
                "compute:kuryr",
                "kuryr.pod.ns:default",
                "kuryr.k8s.cluster:6f1c0f5e-0d4b-4a51-9d39-8c2d1f0e7a11"
            ]
        );
        assert_eq!(namespace_of(&tags), Some("default"));
        assert_eq!(cluster_of(&tags), Some(cluster));
        assert!(port_tags(&"n".repeat(63), &"é".repeat(40)).iter().all(|t| t.len() <= 60));
    }

    #[test]
    fn ovs_keys_name_the_attachment() {
        let ids = ovs_external_ids("shop", "web-0", "c1", "eth0", "kuryr");
        assert_eq!(ids[OVS_NETWORK_KEY], "kuryr");
        assert_eq!(ids[OVS_CONTAINER_KEY], "c1");
        assert_eq!(ids[OVS_IFNAME_KEY], "eth0");
        assert_eq!(ids[OVS_POD_KEY], "shop/web-0");
    }

    #[test]
    fn namespace_networks() {
        let uid = "3c8e5f8a-2f1e-4d8b-9a77-0c1d2e3f4a5b";
        assert_eq!(namespace_network_name("shop", uid), format!("{uid}/shop"));
        assert_eq!(namespace_network_name(&"n".repeat(300), uid).len(), 255);
        let tags = namespace_network_tags("shop", "c1");
        assert_eq!(tags, ["kuryr.k8s.ns:shop", "kuryr.k8s.cluster:c1"]);
        assert_eq!(namespace_of_network(&tags), Some("shop"));
        assert_eq!(namespace_of(&tags), None, "not a pod port's tag");
        assert_eq!(cluster_of(&tags), Some("c1"));
    }
}
