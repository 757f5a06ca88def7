//! The node daemon's Kubernetes mode without a controller: the tests play
//! the controller, installing Kuryr's CRDs (`deploy/kubernetes/crds.yaml`)
//! and writing KuryrPorts by hand, their status through the status
//! subresource as the controller writes it, with kubectl
//! ([`crate::k8s::Cluster`]).

use std::time::Duration;

use serde_json::{json, Value};

use crate::k8s::Cluster;

/// `deploy/kubernetes/crds.yaml`, generated from `kuryr_k8s::crds`.
const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/kubernetes/crds.yaml");

/// The label a KuryrPort names its node with (`kuryr_k8s::crds::NODE_NAME_LABEL`).
pub const NODE_NAME_LABEL: &str = "kuryr.openstack.org/nodeName";

/// Makes sure Kuryr's CRDs are served with the status subresource: when
/// they are not (absent, or upstream's copy), applies ours (server-side,
/// taking over the fields an older copy set) and waits until the API
/// serves them. CRDs already fit (the stack's or the controller's) are
/// left alone.
pub fn install_crds(cluster: &Cluster) {
    let has_status = |crd: &str| {
        cluster.get(&["crd", crd]).is_some_and(|crd| {
            crd["spec"]["versions"]
                .as_array()
                .is_some_and(|vs| vs.iter().all(|v| v["subresources"]["status"].is_object()))
        })
    };
    if has_status("kuryrports.openstack.org") && has_status("kuryrnetworks.openstack.org") {
        return;
    }
    let yaml = std::fs::read_to_string(CRDS).expect("deploy/kubernetes/crds.yaml");
    let out = cluster.kubectl_output(&["apply", "--server-side", "--force-conflicts"], Some(&yaml));
    crate::stdout_of_success("kubectl apply --server-side crds.yaml", &out);
    cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/kuryrports.openstack.org",
        "crd/kuryrnetworks.openstack.org",
    ]);
}

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
