//! Names and tags of a Kubernetes pod's port, as upstream kuryr-kubernetes
//! wrote them (../shared/docs/kubernetes.md): the port is named
//! `<namespace>/<pod>` and its `device_id` is the pod's uid, so an operator
//! switching implementations finds the same ports. A tag names the
//! cluster (the uid of its `kube-system` namespace, which the controller
//! reads at start), so GC and an operator can tell which cluster's
//! controller made a port. The controller arrives with issue 14.

use super::DEVICE_OWNER;

const NAMESPACE: &str = "kuryr.pod.ns:";
const CLUSTER: &str = "kuryr.k8s.cluster:";
const TAG_MAX: usize = 60;
/// Neutron's limit on a port name.
const NAME_MAX: usize = 255;

/// `<namespace>/<pod name>`, cut to Neutron's 255 characters.
pub fn port_name(namespace: &str, name: &str) -> String {
    let mut full = format!("{namespace}/{name}");
    if full.len() > NAME_MAX {
        let mut cut = NAME_MAX;
        while !full.is_char_boundary(cut) {
            cut -= 1;
        }
        full.truncate(cut);
    }
    full
}

/// `compute:kuryr`, the pod's namespace (cut to fit a tag): what finds a
/// namespace's ports, and what tells GC a port is a pod's; and its
/// cluster's [`cluster_tag`].
pub fn port_tags(namespace: &str, cluster: &str) -> Vec<String> {
    let mut ns = format!("{NAMESPACE}{namespace}");
    // Namespaces are DNS labels (ASCII, at most 63): the cut is on a char.
    ns.truncate(TAG_MAX);
    vec![DEVICE_OWNER.to_string(), ns, cluster_tag(cluster)]
}

/// `kuryr.k8s.cluster:<cluster id>`: the cluster whose controller made a
/// port (a uid, 36 characters, fits a tag; anything longer is cut).
pub fn cluster_tag(cluster: &str) -> String {
    let mut tag = format!("{CLUSTER}{cluster}");
    let mut cut = TAG_MAX.min(tag.len());
    while !tag.is_char_boundary(cut) {
        cut -= 1;
    }
    tag.truncate(cut);
    tag
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
}
