//! deploy/kubernetes/ on the stack's real cluster, as an operator runs it
//! (docs/kubernetes.md § Deployment): `kubectl apply` of the CRDs, RBAC,
//! the kuryr.conf ConfigMap (its EDIT values filled in for this stack), the
//! controller Deployment and the node daemon DaemonSet, all running the
//! image `deploy/kubernetes/build-image` made; then pods through the
//! deployed daemon, checked with kubectl and the Neutron API; then nothing
//! left once the namespaces and the deployment are deleted.
//!
//! Needs `scripts/stack up --k8s --cni kuryr` and the image in the stack's
//! containerd (scripts/test builds it: `deploy/kubernetes/build-image
//! --bin-dir <static binaries> --containerd $KURYR_STACK_K8S_CONTAINERD`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use kuryr_testkit::k8s::{Cluster, TestNamespace};
use kuryr_testkit::*;
use openstack::neutron::{PortStatus, Query, Resource};
use serde_json::Value;

const POD_READY: Duration = Duration::from_secs(180);
const GONE: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// deploy/kubernetes/<file>.
fn manifest(file: &str) -> String {
    let path = repo().join("deploy/kubernetes").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// config.yaml with the values an operator edits set for this stack: the
/// apiserver (no kube-proxy here, so no service address), Neutron, the
/// stack's subnetpool `kuryr` and router `kuryr-pods`.
fn config_for_stack(cluster: &Cluster, stack: &Stack) -> String {
    let neutron = std::env::var("OS_ENDPOINT").expect("OS_ENDPOINT from scripts/stack env");
    let pool = stack.default_pool("kuryr").id.to_string();
    let routers: Vec<Value> = stack
        .block_on(stack.neutron.list(Resource::Routers, &Query::new().name("kuryr-pods")))
        .expect("listing routers");
    let router =
        routers.first().and_then(|r| r["id"].as_str()).expect("the stack's router kuryr-pods");
    let mut yaml = manifest("config.yaml");
    for (line, value) in [
        ("    # api_root = https://10.0.0.10:6443\n", format!("    api_root = {}\n", cluster.api)),
        ("endpoint = http://127.0.0.1:9696", format!("endpoint = {neutron}")),
        ("EDIT-subnetpool-id", pool),
        ("EDIT-router-id", router.to_string()),
    ] {
        assert!(
            yaml.contains(line),
            "config.yaml no longer has {line:?}, which this test fills in"
        );
        yaml = yaml.replace(line, &value);
    }
    yaml
}

/// The deployment, removed (with what its init container put on the host)
/// when dropped: first the test's namespaces, while the controller still
/// runs to release their ports and networks, then the Kuryr pods.
///
/// Two changes to the files as shipped, both for sharing the stack: the
/// controller serves only the namespaces labelled for this test
/// (`--namespace-selector`), so the cluster's own namespaces (and other
/// tests') get no network; the daemon mounts the stack's containerd netns
/// directory, which is under containerd's state dir, not /var/run/netns.
struct Deployed {
    cluster: Cluster,
    label: String,
}

const DEPLOYED: [&str; 4] = ["rbac.yaml", "config.yaml", "controller.yaml", "daemon.yaml"];
const LABEL_KEY: &str = "kuryr-deploy-test";

impl Deployed {
    fn apply(cluster: &Cluster, stack: &Stack) -> Deployed {
        let deployed = Deployed { cluster: cluster.clone(), label: hex(6) };
        cluster.install_crds();
        cluster.apply(&manifest("rbac.yaml"));
        cluster.apply(&config_for_stack(cluster, stack));
        let controller = manifest("controller.yaml");
        let selected = controller.replace(
            "kuryr.conf, controller]",
            &format!(
                "kuryr.conf, controller, --namespace-selector, {LABEL_KEY}={}]",
                deployed.label
            ),
        );
        assert_ne!(selected, controller, "controller.yaml's command changed");
        cluster.apply(&selected);
        let netns = std::env::var("KURYR_STACK_K8S_NETNS_DIR")
            .expect("KURYR_STACK_K8S_NETNS_DIR from scripts/stack env");
        cluster.apply(&manifest("daemon.yaml").replace("/var/run/netns", &netns));
        for what in ["daemonset/kuryr-daemon", "deployment/kuryr-controller"] {
            cluster.kubectl(&["-n", "kube-system", "rollout", "status", what, "--timeout=180s"]);
        }
        deployed
    }

    /// A namespace the deployed controller serves.
    fn namespace(&self, prefix: &str) -> TestNamespace {
        self.cluster.labelled_namespace(prefix, LABEL_KEY, &self.label)
    }
}

impl Drop for Deployed {
    fn drop(&mut self) {
        let selector = format!("{LABEL_KEY}={}", self.label);
        let _ = self.cluster.kubectl_output(
            &["delete", "namespace", "-l", &selector, "--wait=true", "--timeout=120s"],
            None,
        );
        for file in DEPLOYED.iter().rev() {
            let _ = self.cluster.kubectl_output(
                &["delete", "--ignore-not-found", "--wait=true", "--timeout=60s"],
                Some(&manifest(file)),
            );
        }
        for path in ["/etc/cni/net.d/10-kuryr.conflist", "/opt/cni/bin/kuryr-cni"] {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A Deployment `name` of `replicas` busybox httpd pods in `ns`.
fn web(cluster: &Cluster, ns: &str, name: &str, replicas: u32) {
    cluster.apply(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: {image}
        imagePullPolicy: Never
        command: [httpd, -f, -p, "8080", -h, /etc]
"#,
        image = cluster.image
    ));
}

/// The Running pods of `app` in `ns` once there are `n`: (name, uid, IP).
/// When they do not come, what an operator would look at first is
/// printed: the namespace's Events and the Kuryr pods' logs.
fn running(cluster: &Cluster, ns: &str, app: &str, n: usize) -> Vec<(String, String, String)> {
    let selector = format!("app={app}");
    let deadline = std::time::Instant::now() + POD_READY;
    loop {
        let pods: Vec<(String, String, String)> = cluster
            .list(&["pods", "-n", ns, "-l", &selector])
            .iter()
            .filter(|p| p["status"]["phase"] == "Running" && p["status"]["podIP"].is_string())
            .map(|p| {
                (
                    str_of(&p["metadata"]["name"]),
                    str_of(&p["metadata"]["uid"]),
                    str_of(&p["status"]["podIP"]),
                )
            })
            .collect();
        if pods.len() == n {
            return pods;
        }
        if std::time::Instant::now() > deadline {
            let events = cluster.kubectl_output(&["get", "events", "-n", ns], None);
            eprintln!("events in {ns}:\n{}", String::from_utf8_lossy(&events.stdout));
            for role in ["kuryr-controller", "kuryr-daemon"] {
                let label = format!("app.kubernetes.io/name={role}");
                let logs = cluster.kubectl_output(
                    &["logs", "-n", "kube-system", "-l", &label, "--tail=40"],
                    None,
                );
                eprintln!("{role} logs:\n{}", String::from_utf8_lossy(&logs.stdout));
            }
            panic!("{n} {app} pods not Running in {ns} after {POD_READY:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// `kubectl exec` in `pod` of `ns`: its output, or why it failed.
fn exec(cluster: &Cluster, ns: &str, pod: &str, cmd: &[&str]) -> Result<String, String> {
    let mut args = vec!["exec", "-n", ns, pod, "--"];
    args.extend_from_slice(cmd);
    let out = cluster.kubectl_output(&args, None);
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// What an operator checks of a pod's Neutron port: exactly one, ACTIVE,
/// bound to the pod's node, owned by the pod, holding the pod's IP.
fn assert_pod_port(
    stack: &Stack,
    node: &str,
    ns: &str,
    (name, uid, ip): &(String, String, String),
) {
    let ports = stack.ports(Query::new().device_id(uid));
    assert_eq!(
        ports.len(),
        1,
        "pod {ns}/{name}: one port with device_id = its uid, found {ports:?}"
    );
    let port = &ports[0];
    assert_eq!(port.device_owner, "compute:kuryr");
    assert_eq!(port.binding_host_id, node);
    assert_eq!(port.name, format!("{ns}/{name}"));
    assert_eq!(port.status, PortStatus::Active, "port {} of {ns}/{name}", port.id);
    assert!(port.fixed_ips.iter().any(|f| f.ip_address.to_string() == *ip), "{port:?} holds {ip}");
    assert!(port.tags.iter().any(|t| t == "compute:kuryr"), "{:?}", port.tags);
    assert!(port.tags.contains(&format!("kuryr.pod.ns:{ns}")), "{:?}", port.tags);
}

/// Deletes the namespace and waits until it and its Neutron objects are gone.
fn delete_namespace(cluster: &Cluster, stack: &Stack, mut ns: TestNamespace, uids: &[String]) {
    ns.keep();
    cluster.kubectl(&["delete", "namespace", &ns.name, "--wait=false"]);
    cluster.wait_gone(&format!("namespace {}", ns.name), GONE, &["namespace", &ns.name]);
    for uid in uids {
        assert!(
            stack.ports(Query::new().device_id(uid)).is_empty(),
            "the port of pod {uid} is left"
        );
    }
    let tag = format!("kuryr.k8s.ns:{}", ns.name);
    let networks = stack.networks(Query::new().tags([tag.as_str()]));
    assert!(networks.is_empty(), "namespace {}'s network is left: {networks:?}", ns.name);
    let subnets = stack.subnets(Query::new().tags([tag.as_str()]));
    assert!(subnets.is_empty(), "namespace {}'s subnet is left: {subnets:?}", ns.name);
}

#[test]
fn deployed_kuryr_networks_pods_and_cleans_up() {
    let test = "deployed_kuryr_networks_pods_and_cleans_up";
    let Some(cluster) = Cluster::or_skip(test) else { return };
    if cluster.cni != "kuryr" {
        eprintln!("{test}: skipped: the stack's kubelet runs --cni {}, not kuryr", cluster.cni);
        return;
    }
    let Some(stack) = stack(test) else { return };
    let node = stack.local().host.clone();
    let deployed = Deployed::apply(&cluster, &stack);
    cluster.wait_get("the node Ready with Kuryr's CNI", POD_READY, &["node", &node], |n| {
        let conditions = n?["status"]["conditions"].as_array()?.clone();
        conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True").then_some(())
    });

    // Two pods in one namespace reach each other over TCP and ICMP.
    let shop = deployed.namespace("dep-shop");
    web(&cluster, &shop.name, "web", 2);
    let pods = running(&cluster, &shop.name, "web", 2);
    for pod in &pods {
        assert_pod_port(&stack, &node, &shop.name, pod);
    }
    let (a, b) = (&pods[0], &pods[1]);
    // busybox-static's wget crashes (Debian's build): HTTP by hand over nc.
    let get = format!("printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {} 8080", b.2);
    let answer = exec(&cluster, &shop.name, &a.0, &["sh", "-c", &get])
        .unwrap_or_else(|e| panic!("{} -> {}:8080: {e}", a.0, b.2));
    let answer = answer.lines().last().unwrap_or_default().trim().to_string();
    assert_eq!(answer, b.0, "pod {} answers with its hostname", b.0);

    // A pod in another namespace reaches them through the pods' router.
    let other = deployed.namespace("dep-other");
    web(&cluster, &other.name, "probe", 1);
    let probe = running(&cluster, &other.name, "probe", 1).remove(0);
    assert_pod_port(&stack, &node, &other.name, &probe);
    exec(&cluster, &other.name, &probe.0, &["ping", "-c", "1", "-W", "3", &a.2])
        .unwrap_or_else(|e| panic!("{} -> {} across namespaces: {e}", probe.0, a.2));

    // Nothing is left of the pods or their namespaces.
    let shop_uids: Vec<String> = pods.iter().map(|p| p.1.clone()).collect();
    delete_namespace(&cluster, &stack, shop, &shop_uids);
    delete_namespace(&cluster, &stack, other, std::slice::from_ref(&probe.1));
    drop(deployed);
    assert!(!Path::new("/etc/cni/net.d/10-kuryr.conflist").exists());
}
