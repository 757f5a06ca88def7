//! The node daemon's Kubernetes mode without a controller: the tests play
//! the controller, installing Kuryr's CRDs (`deploy/kubernetes/crds.yaml`)
//! and writing KuryrPorts by hand, their status through the status
//! subresource as the controller writes it, with kubectl
//! ([`crate::k8s::Cluster`]).

use std::time::Duration;

use serde_json::{json, Value};

use crate::k8s::Cluster;

/// The label a KuryrPort names its node with (`kuryr_k8s::crds::NODE_NAME_LABEL`).
pub const NODE_NAME_LABEL: &str = "kuryr.openstack.org/nodeName";

/// Writes KuryrPort `namespace/name` (named after its pod) for the pod
/// with `pod_uid` on `node`, labelled with the node as the controller
/// labels it; then, when `vifs` is given (`{"eth0": <vif>}`), its status
/// through the status subresource.
pub fn write_kuryrport(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    pod_uid: &str,
    node: &str,
    vifs: Option<Value>,
) {
    let kuryrport = json!({
        "apiVersion": "openstack.org/v1",
        "kind": "KuryrPort",
        "metadata": {"name": name, "namespace": namespace, "labels": {NODE_NAME_LABEL: node}},
        "spec": {"podUid": pod_uid, "podNodeName": node},
    });
    cluster.apply(&kuryrport.to_string());
    if let Some(vifs) = vifs {
        let status = json!({"status": {"vifs": vifs}}).to_string();
        cluster.kubectl(&[
            "patch",
            "kuryrport",
            name,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ]);
    }
}

/// Deletes KuryrPort `namespace/name` and waits until it is gone.
pub fn delete_kuryrport(cluster: &Cluster, namespace: &str, name: &str) {
    cluster.kubectl(&["delete", "kuryrport", name, "-n", namespace, "--ignore-not-found"]);
    cluster.wait_gone(
        "the KuryrPort to go",
        Duration::from_secs(30),
        &["kuryrport", name, "-n", namespace],
    );
}
