//! The test kit: the harness of the functional tests against the real
//! stack of `scripts/stack` (Neutron ML2/OVN, OVS `br-int`, dockerd), one
//! copy for every test binary (a dev-dependency of the crates whose tests
//! use it). Modules: [`cni_util`] (the CNI daemon and `kuryr-cni`),
//! [`fault_proxy`] (a fault-injecting Neutron proxy on loopback),
//! [`k8s`] (the stack's Kubernetes cluster through kubectl),
//! [`k8s_node`] (KuryrPorts written by hand, for the node daemon's
//! Kubernetes mode without a controller),
//! [`upstream`] (upstream kuryr-libnetwork's `kuryr-server`); the rest is
//! re-exported at the root, so tests `use kuryr_testkit::*`: `stack` (the
//! admin Neutron client and the stack's nodes), `node` (one node: its host
//! name, tunnel IP, bridge, OVSDB socket, dockerd, netns), `fresh` (names, CIDRs), `commands` (commands
//! with a deadline, waiting), `host` (veths, OVS), `containers` (Docker
//! attachments, eth0, ping), `plugin` (a `kuryr libnetwork` process),
//! `fixture` (a test's plugin and cleanup).
//!
//! Each test gets a [`Fixture`]: its own `kuryr libnetwork` process serving
//! its own driver name `kt<hex>` on `/run/docker/plugins/kt<hex>.sock`, with
//! its own `kuryr.conf` in a temp dir, so tests run in parallel. Dropping
//! the fixture (also when the test panics) removes the test's containers
//! and Docker networks while the plugin still runs, kills the plugin by
//! PID, and deletes whatever Neutron objects the test made or Kuryr left.
//!
//! Credentials come from `eval "$(scripts/stack env)"`. Without
//! `KURYR_STACK_AUTH` a test prints a skip notice and passes; in keystone
//! mode it skips too (the Keystone path is tested in the openstack crate).

pub mod cni_util;
pub mod fault_proxy;
pub mod k8s;
pub mod k8s_node;
pub mod upstream;

mod commands;
mod containers;
mod fixture;
mod fresh;
mod host;
mod node;
mod plugin;
mod process;
mod stack;

pub use commands::*;
pub use containers::*;
pub use fixture::*;
pub use fresh::*;
pub use host::*;
pub use node::*;
pub use plugin::*;
pub use process::*;
pub use stack::*;

use std::path::{Path, PathBuf};

/// The calling test's [`Fixture`] (`Fixture::new(test)`, or
/// `Fixture::with_config(test, config)` when given a kuryr.conf), or a skip:
/// the calling test returns at once when there is no stack to test against.
#[macro_export]
macro_rules! fixture_or_skip {
    ($test:expr) => {
        match $crate::Fixture::new($test) {
            Some(f) => f,
            None => return,
        }
    };
    ($test:expr, $config:expr) => {
        match $crate::Fixture::with_config($test, $config) {
            Some(f) => f,
            None => return,
        }
    };
}

/// The `kuryr` binary of this build: `$KURYR_BIN`, else the one cargo built
/// next to the running test (`target/<profile>/kuryr`; cargo builds a
/// package's binaries before its integration tests).
pub fn kuryr_bin() -> PathBuf {
    built_binary("KURYR_BIN", "kuryr", "kuryr")
}

/// The `kuryr-cni` plugin binary, found the same way (`$KURYR_CNI_BIN`).
pub fn kuryr_cni_bin() -> PathBuf {
    built_binary("KURYR_CNI_BIN", "kuryr-cni", "kuryr-cni")
}

pub(crate) fn built_binary(env: &str, name: &str, package: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test>-<hash>
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(name))
        .expect("a test runs from target/<profile>/deps");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p {package}` (scripts/test builds the workspace), or set {env}",
        bin.display()
    );
    bin
}
