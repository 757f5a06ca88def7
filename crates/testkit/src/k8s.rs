//! The stack's Kubernetes cluster (`scripts/stack up --k8s`), as an
//! operator sees it: `kubectl` with the admin kubeconfig, JSON out. A test
//! takes a [`Cluster`] (or skips without one), makes its objects in
//! namespaces it owns ([`Cluster::namespace`], deleted when the guard
//! drops, also on panic) and asserts what `kubectl get` shows.
//!
//! For the controller's tests: a `kuryr controller` process the test
//! starts ([`ControllerProcess`], killed by PID on drop, `kill -9` and
//! restart on demand, its `/metrics` read), the CRDs applied
//! ([`Cluster::install_crds`]), a pod pinned to the node ([`pod_yaml`]),
//! Events ([`Cluster::events_of`]) and a Neutron router of the test's
//! ([`TestRouter`]).
//!
//! Environment (from `eval "$(scripts/stack env)"`): `KUBECONFIG`,
//! `KURYR_STACK_K8S_API`, `KURYR_STACK_K8S_CNI` (`bridge` or `kuryr`),
//! `KURYR_STACK_K8S_KURYR_KUBECONFIG` (the controller's identity, bound by
//! upstream's ClusterRole), `KURYR_STACK_K8S_IMAGE` (the workload image).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use openstack::neutron::Resource;
use serde_json::{json, Value};

use crate::{
    append_log, free_loopback_port, hex, kuryr_bin, run_command, stdout_of_success, wait_for,
    KuryrChild, Stack,
};

/// How long one kubectl call may take.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// The stack's cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The apiserver's URL.
    pub api: String,
    /// The admin kubeconfig.
    pub kubeconfig: String,
    /// The kubeconfig of the `kuryr-controller` identity.
    pub kuryr_kubeconfig: String,
    /// The CNI the kubelet runs (`bridge` or `kuryr`).
    pub cni: String,
    /// The image pods run (`imagePullPolicy: Never`).
    pub image: String,
}

impl Cluster {
    /// The cluster, or `None` (after printing why) when the stack runs
    /// without Kubernetes.
    pub fn or_skip(test: &str) -> Option<Cluster> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(api), Some(kubeconfig)) = (var("KURYR_STACK_K8S_API"), var("KUBECONFIG")) else {
            eprintln!(
                "{test}: skipped: no Kubernetes in the stack (scripts/stack up --k8s; eval \"$(scripts/stack env)\")"
            );
            return None;
        };
        Some(Cluster {
            api,
            kubeconfig,
            kuryr_kubeconfig: var("KURYR_STACK_K8S_KURYR_KUBECONFIG").unwrap_or_default(),
            cni: var("KURYR_STACK_K8S_CNI").unwrap_or_default(),
            image: var("KURYR_STACK_K8S_IMAGE")
                .unwrap_or_else(|| "docker.io/kuryr/kbox:k8s".into()),
        })
    }

    /// `kubectl args` (with `-f <file of stdin>` when given), as the
    /// admin; its output whatever it says.
    pub fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let what = format!("kubectl {}", args.join(" "));
        let input = stdin.map(|text| {
            let path = std::env::temp_dir().join(format!("kuryr-kubectl-{}.yaml", hex(8)));
            std::fs::write(&path, text).expect("writing kubectl's input");
            path
        });
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &self.kubeconfig).args(args);
        if let Some(path) = &input {
            cmd.arg("-f").arg(path);
        }
        let out = run_command(cmd, &what, KUBECTL_TIMEOUT);
        if let Some(path) = input {
            let _ = std::fs::remove_file(path);
        }
        out
    }

    /// `kubectl args`, which must succeed: its stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_output(args, None);
        stdout_of_success(&format!("kubectl {}", args.join(" ")), &out)
    }

    /// `kubectl apply -f -` of `yaml`, which must succeed.
    pub fn apply(&self, yaml: &str) -> String {
        let out = self.kubectl_output(&["apply"], Some(yaml));
        stdout_of_success("kubectl apply", &out)
    }

    /// `kubectl get args -o json`, parsed; `None` when it is not found.
    pub fn get(&self, args: &[&str]) -> Option<Value> {
        let mut all: Vec<&str> = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let out = self.kubectl_output(&all, None);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("NotFound") || err.contains("not found"),
                "kubectl {all:?}: {err}"
            );
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("kubectl's JSON"))
    }

    /// The items of a list (`kubectl get <kind> -n ns -l ...`).
    pub fn list(&self, args: &[&str]) -> Vec<Value> {
        let list = self.get(args).unwrap_or(Value::Null);
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// A namespace `<prefix>-<hex>` made for the test, deleted (without
    /// waiting) when the guard drops.
    pub fn namespace(&self, prefix: &str) -> TestNamespace {
        let name = format!("{prefix}-{}", hex(6));
        self.kubectl(&["create", "namespace", &name]);
        TestNamespace { cluster: self.clone(), name, keep: false }
    }

    /// Like [`Cluster::namespace`], labelled `key=value` (what a test's
    /// controller selects its namespaces by).
    pub fn labelled_namespace(&self, prefix: &str, key: &str, value: &str) -> TestNamespace {
        let name = format!("{prefix}-{}", hex(6));
        self.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    {key}: \"{value}\"\n"
        ));
        TestNamespace { cluster: self.clone(), name, keep: false }
    }

    /// The name of the cluster's (first) node: where a test pins its pods.
    pub fn node(&self) -> String {
        let nodes = self.list(&["nodes"]);
        let node = nodes.first().expect("the cluster has a node");
        node["metadata"]["name"].as_str().expect("a node name").to_string()
    }

    /// Makes sure Kuryr's CRDs (`deploy/kubernetes/crds.yaml`, generated
    /// from the Rust types) are served with the status subresource: when
    /// they are not (absent, or upstream's copy that the benchmark
    /// applies), applies ours server-side, taking over the fields an older
    /// copy set, and waits until they are served. CRDs that fit already
    /// (the stack's) are left alone.
    pub fn install_crds(&self) {
        const CRDS: [&str; 2] = ["kuryrports.openstack.org", "kuryrnetworks.openstack.org"];
        let has_status = |crd: &str| {
            self.get(&["crd", crd]).is_some_and(|crd| {
                crd["spec"]["versions"]
                    .as_array()
                    .is_some_and(|vs| vs.iter().all(|v| v["subresources"]["status"].is_object()))
            })
        };
        if CRDS.iter().all(|crd| has_status(crd)) {
            return;
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/crds.yaml");
        let yaml = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let out =
            self.kubectl_output(&["apply", "--server-side", "--force-conflicts"], Some(&yaml));
        stdout_of_success("kubectl apply --server-side crds.yaml", &out);
        for crd in CRDS {
            self.kubectl(&["wait", "--for=condition=Established", "--timeout=60s", "crd", crd]);
        }
    }

    /// The Events about object `kind`/`name` (`namespace`: where they are,
    /// `default` for a cluster-scoped object's), oldest first.
    pub fn events_of(&self, namespace: &str, kind: &str, name: &str) -> Vec<Value> {
        let selector = format!("involvedObject.kind={kind},involvedObject.name={name}");
        self.list(&["events", "-n", namespace, "--field-selector", &selector])
    }

    /// Waits for an Event about `kind`/`name` whose reason is `reason` and
    /// whose message contains `text`; returns its message.
    pub fn wait_event(
        &self,
        namespace: &str,
        (kind, name): (&str, &str),
        reason: &str,
        text: &str,
        timeout: Duration,
    ) -> String {
        wait_for(&format!("a {reason} Event on {kind} {name} saying {text:?}"), timeout, || {
            self.events_of(namespace, kind, name).into_iter().find_map(|e| {
                let message = e["message"].as_str().or(e["note"].as_str()).unwrap_or_default();
                (e["reason"] == reason && message.contains(text)).then(|| message.to_string())
            })
        })
    }

    /// Waits until `kubectl get args -o json` satisfies `check`, which
    /// returns what the test wants from it.
    pub fn wait_get<T>(
        &self,
        what: &str,
        timeout: Duration,
        args: &[&str],
        mut check: impl FnMut(Option<&Value>) -> Option<T>,
    ) -> T {
        wait_for(what, timeout, || check(self.get(args).as_ref()))
    }

    /// Waits until `kubectl get args` finds nothing.
    pub fn wait_gone(&self, what: &str, timeout: Duration, args: &[&str]) {
        self.wait_get(what, timeout, args, |found| found.is_none().then_some(()))
    }
}

/// A namespace a test owns.
#[derive(Debug)]
pub struct TestNamespace {
    cluster: Cluster,
    /// Its name.
    pub name: String,
    keep: bool,
}

impl TestNamespace {
    /// Leaves the namespace for the test to delete itself (and check what
    /// its deletion leaves).
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if !self.keep {
            let _ = self.cluster.kubectl_output(
                &["delete", "namespace", &self.name, "--ignore-not-found", "--wait=false"],
                None,
            );
        }
    }
}

/// A pod `name` in `namespace`, pinned to `node` (`spec.nodeName`: no
/// scheduler involved), running `image` (not pulled).
pub fn pod_yaml(namespace: &str, name: &str, node: &str, image: &str) -> String {
    let lines = [
        "apiVersion: v1".to_string(),
        "kind: Pod".into(),
        "metadata:".into(),
        format!("  name: {name}"),
        format!("  namespace: {namespace}"),
        "spec:".into(),
        format!("  nodeName: {node}"),
        "  terminationGracePeriodSeconds: 0".into(),
        "  containers:".into(),
        "  - name: c".into(),
        format!("    image: {image}"),
        "    imagePullPolicy: Never".into(),
        "    command: [sleep, \"3600\"]".into(),
    ];
    lines.join("\n") + "\n"
}

/// A `kuryr controller` the test started, serving the namespaces labelled
/// with its selector, with its own kuryr.conf, its log and a `/metrics`
/// listener on loopback; `OS_*` and `KUBECONFIG` come from the test's
/// environment. Dropping it stops it by PID.
pub struct ControllerProcess {
    process: KuryrChild,
    /// Its kuryr.conf.
    pub conf: PathBuf,
    /// Its `/metrics` and `/healthz` address.
    pub metrics: String,
    selector: String,
    env: Vec<(String, String)>,
}

impl ControllerProcess {
    /// Writes `conf` to `dir/kuryr.conf` and starts `kuryr --debug
    /// controller --namespace-selector selector`; waits for its metrics
    /// listener.
    pub fn start(dir: &Path, conf: &str, selector: &str) -> ControllerProcess {
        ControllerProcess::start_named(dir, "controller", conf, selector, &[])
    }

    /// Like [`ControllerProcess::start`], its files named after `name`
    /// (`<name>.conf`, `<name>.log`: replicas share a dir) and `env` added
    /// to the test's environment.
    pub fn start_named(
        dir: &Path,
        name: &str,
        conf: &str,
        selector: &str,
        env: &[(&str, &str)],
    ) -> ControllerProcess {
        let path = dir.join(format!("{name}.conf"));
        std::fs::write(&path, conf).expect("writing the controller's kuryr.conf");
        let mut process = ControllerProcess {
            process: KuryrChild::new(dir.join(format!("{name}.log"))),
            conf: path,
            metrics: format!("127.0.0.1:{}", free_loopback_port()),
            selector: selector.to_string(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(kuryr_bin());
        cmd.arg("--debug")
            .arg("--config-file")
            .arg(&self.conf)
            .args(["controller", "--namespace-selector", &self.selector])
            .args(["--metrics-address", &self.metrics])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(append_log(&self.log));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.process.started(cmd.spawn().expect("starting kuryr controller"));
        let address = self.metrics.clone();
        wait_for("the controller's metrics listener", Duration::from_secs(60), || {
            std::net::TcpStream::connect(&address).ok().map(|_| ())
        });
    }

    /// Starts it again (after [`KuryrChild::kill9`]).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// `GET path` on its metrics listener: the body.
    pub fn get(&self, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(&self.metrics).expect("the metrics listener");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("a read timeout");
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.metrics)
            .expect("sending a request");
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or(reply)
    }

    /// The Neutron requests it has sent so far (`kuryr_neutron_requests_total`,
    /// every method and status).
    pub fn neutron_requests(&self) -> u64 {
        self.get("/metrics")
            .lines()
            .filter(|l| l.starts_with("kuryr_neutron_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

crate::process::derefs_to_kuryr_child!(ControllerProcess);

/// A kuryr.conf for a test's controller: `[kubernetes]` through the
/// admin kubeconfig (`KUBECONFIG`), namespaces' subnets from `pool` on
/// `router`, and `extra` lines appended (more sections).
pub fn controller_conf(pool: &str, router: &str, extra: &str) -> String {
    format!(
        "[kubernetes]\nssl_verify_server_crt = true\n\n[namespace_subnet]\n\
         pod_subnet_pool = {pool}\npod_router = {router}\n\n{extra}"
    )
}

/// One controller test's world: the stack, the cluster (CRDs applied), a
/// Neutron router `ctl-<hex>` and a `kuryr controller` serving only the
/// namespaces labelled `kuryr-test=<hex>`, which the world makes
/// ([`ControllerWorld::namespace`]). Dropping it (also on panic) deletes
/// those namespaces while the controller still runs (then strips what a
/// stuck one still holds), stops the controller, deletes any Neutron
/// object left tagged for those namespaces, and the router.
pub struct ControllerWorld {
    /// The stack (admin Neutron client).
    pub stack: Stack,
    /// The cluster.
    pub cluster: Cluster,
    /// The node pods are pinned to.
    pub node: String,
    /// The router namespaces' subnets are attached to.
    pub router: String,
    /// The subnetpool namespaces' subnets come from (the stack's `kuryr`).
    pub pool: String,
    /// The controller.
    pub controller: ControllerProcess,
    /// The value of the `kuryr-test` label the controller selects.
    pub label: String,
    /// The test's temp dir (kuryr.conf, log).
    pub dir: PathBuf,
    namespaces: Vec<String>,
}

/// The label a test's controller selects its namespaces by.
pub const TEST_LABEL: &str = "kuryr-test";

impl ControllerWorld {
    /// The world, with `conf(pool, router)` as the controller's kuryr.conf
    /// (see [`controller_conf`]); `None` (skipped) without a stack with
    /// Kubernetes.
    pub fn new(test: &str, conf: impl FnOnce(&str, &str) -> String) -> Option<ControllerWorld> {
        ControllerWorld::with_env(test, conf, &[])
    }

    /// Like [`ControllerWorld::new`], `env` added to the controller's
    /// environment (`POD_NAMESPACE`, `POD_NAME`).
    pub fn with_env(
        test: &str,
        conf: impl FnOnce(&str, &str) -> String,
        env: &[(&str, &str)],
    ) -> Option<ControllerWorld> {
        let cluster = Cluster::or_skip(test)?;
        let stack = crate::stack(test)?;
        cluster.install_crds();
        let pools = stack.subnetpools(openstack::neutron::Query::new().name("kuryr"));
        let pool = pools
            .first()
            .unwrap_or_else(|| panic!("the stack has no subnetpool named kuryr"))
            .id
            .to_string();
        let name = format!("ctl-{}", hex(6));
        let router: Value = stack
            .block_on(stack.neutron.create(Resource::Routers, &json!({"name": name})))
            .unwrap_or_else(|e| panic!("creating router {name}: {e}"));
        let router = router["id"].as_str().expect("a router id").to_string();
        let (label, dir) = crate::fresh_dir("kuryr-ctl");
        let node = cluster.node();
        let selector = format!("{TEST_LABEL}={label}");
        let controller = ControllerProcess::start_named(
            &dir,
            "controller",
            &conf(&pool, &router),
            &selector,
            env,
        );
        Some(ControllerWorld {
            stack,
            cluster,
            node,
            router,
            pool,
            controller,
            label,
            dir,
            namespaces: Vec::new(),
        })
    }

    /// A namespace `ctl-<hex>` the controller serves; its name.
    pub fn namespace(&mut self) -> String {
        let mut ns = self.cluster.labelled_namespace("ctl", TEST_LABEL, &self.label);
        ns.keep();
        self.namespaces.push(ns.name.clone());
        ns.name.clone()
    }

    /// Another replica of the world's controller (same kuryr.conf and
    /// selector), `name`d for its files, with `env`.
    pub fn replica(&self, name: &str, env: &[(&str, &str)]) -> ControllerProcess {
        let conf = std::fs::read_to_string(&self.controller.conf).expect("the controller's conf");
        let selector = format!("{TEST_LABEL}={}", self.label);
        ControllerProcess::start_named(&self.dir, name, &conf, &selector, env)
    }

    /// Deletes namespace `ns` and waits until it is gone.
    pub fn delete_namespace(&self, ns: &str, timeout: Duration) {
        self.cluster.kubectl(&["delete", "namespace", ns, "--wait=false"]);
        self.cluster.wait_gone(&format!("namespace {ns} gone"), timeout, &["namespace", ns]);
    }

    /// A pod `name` in `ns` pinned to the node.
    pub fn pod(&self, ns: &str, name: &str) {
        self.cluster.apply(&pod_yaml(ns, name, &self.node, &self.cluster.image));
    }

    /// Pods `p0`…`p<n-1>` in `ns` pinned to the node, in one apply.
    pub fn pods(&self, ns: &str, n: usize) {
        let yaml: String = (0..n)
            .map(|i| {
                let pod = pod_yaml(ns, &format!("p{i}"), &self.node, &self.cluster.image);
                format!("---\n{pod}")
            })
            .collect();
        self.cluster.apply(&yaml);
    }

    /// How many KuryrPorts of `ns` carry their vif.
    pub fn vifs(&self, ns: &str) -> usize {
        let kps = self.cluster.list(&["kuryrports.openstack.org", "-n", ns]);
        kps.iter().filter(|kp| !kp["status"]["vifs"]["eth0"].is_null()).count()
    }

    /// Waits for the KuryrPort of pod `ns/name` to carry its vif; returns
    /// the KuryrPort.
    pub fn wait_vif(&self, ns: &str, name: &str, timeout: Duration) -> Value {
        self.cluster.wait_get(
            &format!("the vif of pod {ns}/{name}"),
            timeout,
            &["kuryrports.openstack.org", "-n", ns, name],
            |kp| kp.filter(|kp| !kp["status"]["vifs"]["eth0"].is_null()).cloned(),
        )
    }

    /// A namespace of the world ([`ControllerWorld::namespace`]) whose
    /// KuryrNetwork is populated.
    pub fn ready_namespace(&mut self, timeout: Duration) -> String {
        let ns = self.namespace();
        self.wait_network(&ns, timeout);
        ns
    }

    /// Waits for namespace `ns`'s KuryrNetwork to be populated; returns it.
    pub fn wait_network(&self, ns: &str, timeout: Duration) -> Value {
        self.cluster.wait_get(
            &format!("the KuryrNetwork of {ns} populated"),
            timeout,
            &["kuryrnetworks.openstack.org", "-n", ns, ns],
            |kn| kn.filter(|kn| kn["status"]["populated"] == true).cloned(),
        )
    }

    /// The subnets the router has an interface on.
    pub fn router_subnets(&self) -> Vec<String> {
        let query = openstack::neutron::Query::new().device_id(&self.router);
        self.stack
            .ports(query)
            .into_iter()
            .flat_map(|p| p.fixed_ips.into_iter().map(|f| f.subnet_id.to_string()))
            .collect()
    }

    /// The pods' ports of namespace `ns` (tagged `kuryr.pod.ns:<ns>`).
    pub fn pod_ports(&self, ns: &str) -> Vec<openstack::neutron::Port> {
        let query = openstack::neutron::Query::new().tags([format!("kuryr.pod.ns:{ns}")]);
        self.stack.ports(query)
    }

    /// The networks tagged for namespace `ns`.
    pub fn namespace_networks(&self, ns: &str) -> Vec<openstack::neutron::Network> {
        let query = openstack::neutron::Query::new().tags([format!("kuryr.k8s.ns:{ns}")]);
        self.stack.networks(query)
    }
}

impl Drop for ControllerWorld {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = self.cluster.kubectl_output(
                &["delete", "namespace", ns, "--ignore-not-found", "--wait=false"],
                None,
            );
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        for ns in &self.namespaces {
            while std::time::Instant::now() < deadline
                && self.cluster.get(&["namespace", ns]).is_some()
            {
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        self.controller.kill9();
        let null = r#"{"metadata":{"finalizers":null}}"#;
        for ns in &self.namespaces {
            if self.cluster.get(&["namespace", ns]).is_none() {
                continue;
            }
            eprintln!("namespace {ns} is stuck; stripping finalizers");
            for kind in ["pods", "kuryrports.openstack.org", "kuryrnetworks.openstack.org"] {
                for item in self.cluster.list(&[kind, "-n", ns]) {
                    let name = item["metadata"]["name"].as_str().unwrap_or_default();
                    let _ = self.cluster.kubectl_output(
                        &["patch", kind, "-n", ns, name, "--type=merge", "-p", null],
                        None,
                    );
                }
            }
        }
        let neutron = &self.stack.neutron;
        for ns in &self.namespaces {
            for port in self.pod_ports(ns) {
                let _ = self.stack.block_on(neutron.delete_port(&port.id));
            }
            for net in self.namespace_networks(ns) {
                for subnet in &net.subnets {
                    let _ = self.stack.block_on(neutron.router_interface(
                        openstack::neutron::InterfaceAction::Remove,
                        &self.router,
                        subnet,
                    ));
                }
                self.stack.remove_network_and_ports(&net.id);
            }
        }
        for subnet in self.router_subnets() {
            let _ = self.stack.block_on(neutron.router_interface(
                openstack::neutron::InterfaceAction::Remove,
                &self.router,
                &subnet,
            ));
        }
        let _ = self.stack.block_on(neutron.delete(Resource::Routers, &self.router));
    }
}
