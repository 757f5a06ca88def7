//! The Docker managed (v2) plugin built by deploy/docker-plugin/build,
//! installed into the real Docker engine, used for a network and a
//! container, then removed. Runs only against the dev stack (scripts/test).

use std::path::PathBuf;
use std::process::Command;

fn stack_mode() -> Option<String> {
    std::env::var("KURYR_STACK_AUTH")
        .ok()
        .filter(|m| !m.is_empty())
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn must(args: &[&str]) -> String {
    let (ok, text) = run(args);
    assert!(ok, "{args:?} failed: {text}");
    text
}

/// Removes the plugin and what the test made, whatever happened.
struct Cleanup {
    plugin: String,
    network: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = run(&["docker", "network", "rm", &self.network]);
        let _ = run(&["docker", "plugin", "disable", "-f", &self.plugin]);
        let _ = run(&["docker", "plugin", "rm", "-f", &self.plugin]);
    }
}

#[test]
fn managed_plugin_serves_a_network() {
    match stack_mode().as_deref() {
        None => return eprintln!("skipped: no stack (run via scripts/test)"),
        Some("noauth") => {}
        Some(other) => {
            return eprintln!("skipped: managed plugin test runs in noauth mode, not {other}")
        }
    }
    let suffix = std::process::id();
    let plugin = format!("kuryr-test/plugin{suffix}:latest");
    let network = format!("plugnet{suffix}");
    let cleanup = Cleanup {
        plugin: plugin.clone(),
        network: network.clone(),
    };
    let build = repo_root().join("deploy/docker-plugin/build");
    let mut build_args = vec![
        build.to_string_lossy().into_owned(),
        "--name".into(),
        plugin.clone(),
    ];
    match std::env::var("KURYR_PLUGIN_BINARY") {
        Ok(binary) if !binary.is_empty() => build_args.extend(["--binary".into(), binary]),
        _ => build_args.push("--debug".into()),
    }
    let refs: Vec<&str> = build_args.iter().map(String::as_str).collect();
    must(&refs);

    let host = std::env::var("KURYR_STACK_HOST").expect("KURYR_STACK_HOST from scripts/stack env");
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

    must(&[
        "docker",
        "network",
        "create",
        "-d",
        &plugin,
        "--ipam-driver",
        &plugin,
        "--subnet",
        "10.10.213.0/24",
        &network,
    ]);
    let addr = must(&[
        "docker",
        "run",
        "--rm",
        "--network",
        &network,
        "kbox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(
        addr.contains("10.10.213."),
        "container address from the plugin's Neutron port: {addr}"
    );
    must(&["docker", "network", "rm", &network]);

    for query in [
        "subnets?cidr=10.10.213.0/24",
        "subnetpools?name=kuryrPool-10.10.213.0/24",
    ] {
        let left = must(&["curl", "-sf", &format!("{endpoint}/v2.0/{query}")]);
        assert!(
            !left.contains("10.10.213."),
            "left in Neutron after network rm: {left}"
        );
    }
    drop(cleanup);
    let (_, plugins) = run(&["docker", "plugin", "ls", "--format", "{{.Name}}"]);
    assert!(
        !plugins.contains(&format!("plugin{suffix}")),
        "plugin removed: {plugins}"
    );
}
