//! The Docker managed (v2) plugin built by deploy/docker-plugin/build,
//! installed into the real Docker engine, used for a network and a
//! container, then removed. Runs only against the dev stack (scripts/test).

use std::path::PathBuf;

use kuryr_testkit::{
    must, must_create_network, run_line, stack_in_mode, throwaway_eth0_v4, Node, OwnKuryr,
};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Removes the plugin and what the test made, whatever happened.
struct Cleanup {
    plugin: String,
    network: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = run_line(&["docker", "network", "rm", &self.network]);
        let _ = run_line(&["docker", "plugin", "disable", "-f", &self.plugin]);
        let _ = run_line(&["docker", "plugin", "rm", "-f", &self.plugin]);
    }
}

#[test]
fn managed_plugin_serves_a_network() {
    if !stack_in_mode("managed_plugin_serves_a_network", "noauth") {
        return;
    }
    let suffix = std::process::id();
    let plugin = format!("kuryr-test/plugin{suffix}:latest");
    let network = format!("plugnet{suffix}");
    let cleanup = Cleanup { plugin: plugin.clone(), network: network.clone() };
    let build = repo_root().join("deploy/docker-plugin/build");
    let mut build_args =
        vec![build.to_string_lossy().into_owned(), "--name".into(), plugin.clone()];
    match std::env::var("KURYR_PLUGIN_BINARY") {
        Ok(binary) if !binary.is_empty() => build_args.extend(["--binary".into(), binary]),
        _ => build_args.push("--debug".into()),
    }
    let refs: Vec<&str> = build_args.iter().map(String::as_str).collect();
    must(&refs);

    let host = Node::from_env().host;
    let endpoint = std::env::var("OS_ENDPOINT").expect("OS_ENDPOINT from scripts/stack env");
    must(&[
        "docker",
        "plugin",
        "set",
        &plugin,
        "OS_AUTH_TYPE=none",
        &format!("OS_ENDPOINT={endpoint}"),
        &format!("KURYR_HOST={host}"),
    ]);
    must(&["docker", "plugin", "enable", &plugin]);

    must_create_network(&plugin, "10.10.213.0/24", &network);
    let addr = throwaway_eth0_v4(&network);
    assert!(
        addr.contains("10.10.213."),
        "container address from the plugin's Neutron port: {addr}"
    );
    must(&["docker", "network", "rm", &network]);

    for query in ["subnets?cidr=10.10.213.0/24", "subnetpools?name=kuryrPool-10.10.213.0/24"] {
        let left = must(&["curl", "-sf", &format!("{endpoint}/v2.0/{query}")]);
        assert!(!left.contains("10.10.213."), "left in Neutron after network rm: {left}");
    }
    drop(cleanup);
    let (_, plugins) = run_line(&["docker", "plugin", "ls", "--format", "{{.Name}}"]);
    assert!(!plugins.contains(&format!("plugin{suffix}")), "plugin removed: {plugins}");
}

/// Upstream's way: `kuryr_uri` on TCP plus a spec file in /etc/docker/plugins.
#[test]
fn spec_file_over_tcp() {
    let Some(mut guard) = OwnKuryr::noauth("spec_file_over_tcp", "ktcp") else {
        return;
    };
    let port = guard.port;
    let conf = guard.dir.join("kuryr.conf");
    std::fs::write(&conf, format!("[DEFAULT]\nkuryr_uri = http://127.0.0.1:{port}\n"))
        .expect("write conf");
    let unused_socket = guard.dir.join("unused.sock");
    guard.spawn(&[
        "--config-file",
        &conf.to_string_lossy(),
        "libnetwork",
        "--socket",
        &unused_socket.to_string_lossy(),
    ]);
    std::fs::create_dir_all("/etc/docker/plugins").expect("/etc/docker/plugins");
    let spec = PathBuf::from(format!("/etc/docker/plugins/{}.spec", guard.name));
    guard.files.push(spec.clone());
    std::fs::write(&spec, format!("http://127.0.0.1:{port}\n")).expect("write spec");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "kuryr did not listen on {port}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    must_create_network(&guard.name, "10.10.214.0/24", &guard.network);
    let addr = throwaway_eth0_v4(&guard.network);
    assert!(addr.contains("10.10.214."), "container address through the TCP plugin: {addr}");
    must(&["docker", "network", "rm", &guard.network]);
    let endpoint = std::env::var("OS_ENDPOINT").expect("OS_ENDPOINT from scripts/stack env");
    let left = must(&["curl", "-sf", &format!("{endpoint}/v2.0/subnets?cidr=10.10.214.0/24")]);
    assert!(!left.contains("10.10.214."), "left in Neutron after network rm: {left}");
}
