//! The stack's Kubernetes cluster (`scripts/stack up --k8s`), as an
//! operator sees it: `kubectl` with the admin kubeconfig, JSON out. A test
//! takes a [`Cluster`] (or skips without one), makes its objects in
//! namespaces it owns ([`Cluster::namespace`], deleted when the guard
//! drops, also on panic) and asserts what `kubectl get` shows.
//!
//! Environment (from `eval "$(scripts/stack env)"`): `KUBECONFIG`,
//! `KURYR_STACK_K8S_API`, `KURYR_STACK_K8S_CNI` (`bridge` or `kuryr`),
//! `KURYR_STACK_K8S_KURYR_KUBECONFIG` (the controller's identity, bound by
//! upstream's ClusterRole), `KURYR_STACK_K8S_IMAGE` (the workload image).

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::{hex, run_command, stdout_of_success, wait_for};

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
