//! Names and tags of a Kubernetes pod's port, as upstream kuryr-kubernetes
//! wrote them (../shared/docs/kubernetes.md): the port is named
//! `<namespace>/<pod>` and its `device_id` is the pod's uid, so an operator
//! switching implementations finds the same ports. The controller that
//! provisions them arrives with issue 14.

use super::DEVICE_OWNER;

const NAMESPACE: &str = "kuryr.pod.ns:";
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

/// `compute:kuryr` and the pod's namespace (cut to fit a tag): what finds a
/// namespace's ports, and what tells GC a port is a pod's.
pub fn port_tags(namespace: &str) -> Vec<String> {
    let mut ns = format!("{NAMESPACE}{namespace}");
    // Namespaces are DNS labels (ASCII, at most 63): the cut is on a char.
    ns.truncate(TAG_MAX);
    vec![DEVICE_OWNER.to_string(), ns]
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
        let tags = port_tags("default");
        assert_eq!(tags, vec!["compute:kuryr", "kuryr.pod.ns:default"]);
        assert_eq!(namespace_of(&tags), Some("default"));
        assert!(port_tags(&"n".repeat(63)).iter().all(|t| t.len() <= 60));
    }
}
