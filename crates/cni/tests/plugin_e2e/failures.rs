//! What the runtime sees when things go wrong: spec error codes for bad
//! input, an absent daemon; and chains and concurrent ADDs.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_gives_spec_error_codes() {
    let mut daemon = Daemon::start("invalid").await;
    let socket = daemon.socket.clone();
    let bad_ifname = attachment_env_with("ADD", "CNI_IFNAME", "eth0/1");
    run_plugin(&socket, &bad_ifname, &config("1.0.0")).await.assert_error(
        4,
        "1.0.0",
        "invalid CNI_IFNAME",
    );
    let no_container: Vec<_> =
        attachment_env("ADD").into_iter().filter(|(k, _)| *k != "CNI_CONTAINERID").collect();
    run_plugin(&socket, &no_container, &config("1.1.0")).await.assert_error(
        4,
        "1.1.0",
        "CNI_CONTAINERID",
    );
    run_plugin(&socket, &[("CNI_COMMAND", "UP")], &config("1.1.0")).await.assert_error(
        4,
        "1.1.0",
        "invalid CNI_COMMAND",
    );
    run_plugin(&socket, &attachment_env("ADD"), &json!({"cniVersion": "0.2.0", "name": "kuryr"}))
        .await
        .assert_error(1, "1.1.0", "0.2.0");
    run_plugin(&socket, &attachment_env("CHECK"), &config("0.3.1")).await.assert_error(
        1,
        "0.3.1",
        "CHECK is not part of CNI 0.3.1",
    );
    run_plugin(&socket, &attachment_env("ADD"), &Value::Null)
        .await
        .assert_error(6, "1.1.0", "empty");
    let mut typo = config("1.1.0");
    typo["neutron"]["securitygroups"] = json!(["web"]);
    run_plugin(&socket, &attachment_env("ADD"), &typo).await.assert_error(
        2,
        "1.1.0",
        "neutron.securitygroups = [\"web\"]",
    );
    assert!(daemon.handler.calls().is_empty());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_daemon_is_code_11_and_status_50() {
    let mut daemon = Daemon::start("absent").await;
    let socket = daemon.socket.clone();
    daemon.stop().await;
    assert!(!socket.exists(), "the server removes its socket on shutdown");
    for command in ["ADD", "DEL"] {
        let out = run_plugin(&socket, &attachment_env(command), &config("1.0.0")).await;
        out.assert_error(
            11,
            "1.0.0",
            &format!("kuryr daemon is not running at {}", socket.display()),
        );
    }
    let mut gc = config("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([]);
    run_plugin(&socket, &[("CNI_COMMAND", "GC"), ("CNI_PATH", "/usr/lib/cni")], &gc)
        .await
        .assert_error(11, "1.1.0", "not running");
    run_plugin(&socket, &[("CNI_COMMAND", "STATUS")], &config("1.1.0")).await.assert_error(
        50,
        "1.1.0",
        "kuryr daemon is not running",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_plugin_of_a_chain() {
    let mut daemon = Daemon::start("chain").await;
    let list = kuryr_conflist();
    let capability_args: Map<String, Value> =
        [("mac".to_string(), json!("fa:16:3e:aa:bb:cc")), ("portMappings".to_string(), json!([]))]
            .into_iter()
            .collect();

    // ADD: first in the chain, so no prevResult; runtimeConfig carries the
    // declared capability.
    let add_config = list.request_config(0, &capability_args, None).unwrap();
    assert!(add_config.get("prevResult").is_none());
    let add = run_plugin(&daemon.socket, &attachment_env("ADD"), &add_config).await;
    assert_eq!(add.code, 0, "{}", add.stderr);
    let our_result = add.json();

    // Our stdout is a valid prevResult for the next plugins.
    let tuning_config = list.request_config(1, &capability_args, Some(&our_result)).unwrap();
    assert_eq!(tuning_config["prevResult"], our_result);
    let parsed = AddResult::parse(&tuning_config["prevResult"], CniVersion::V1_1_0).unwrap();
    assert_eq!(parsed.interfaces[0].name, "eth0");

    // Suppose tuning changed the MAC: the chain's final result comes back
    // to us on CHECK and DEL, and reaches the daemon untouched.
    let mut final_result = our_result.clone();
    final_result["interfaces"][0]["mac"] = json!("fa:16:3e:aa:bb:cc");
    for command in ["CHECK", "DEL"] {
        let config = list.request_config(0, &capability_args, Some(&final_result)).unwrap();
        run_plugin(&daemon.socket, &attachment_env(command), &config).await.assert_ok_silent();
    }
    let calls = daemon.handler.calls();
    let Call::Add(add_req) = &calls[0] else { panic!() };
    assert_eq!(add_req.raw_config, add_config);
    assert_eq!(add_req.config.runtime_config.as_ref().unwrap()["mac"], "fa:16:3e:aa:bb:cc");
    for call in &calls[1..] {
        let (Call::Check(req) | Call::Del(req)) = call else { panic!("{call:?}") };
        assert_eq!(req.raw_config["prevResult"], final_result);
        let prev = req.prev_result.as_ref().unwrap();
        assert_eq!(prev.interfaces[0].mac.as_deref(), Some("fa:16:3e:aa:bb:cc"));
    }
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_plugin_of_a_chain_keeps_prev_result() {
    let mut daemon = Daemon::start("later").await;
    let bridge_result: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/spec-1.1.0/add-1-bridge-result.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut cfg = config("1.0.0");
    cfg["prevResult"] = bridge_result;
    let env = attachment_env_with("ADD", "CNI_IFNAME", "eth1");
    let out = run_plugin(&daemon.socket, &env, &cfg).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let result = out.json();
    let names: Vec<&str> = result["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cni0", "veth3243", "eth0", "eth1"]);
    assert_eq!(result["ips"][1]["interface"], 3);
    assert_eq!(result["cniVersion"], "1.0.0");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adds() {
    let mut daemon = Daemon::start("concurrent").await;
    let ids: Vec<String> = (0..8).map(|i| format!("ctr{i}")).collect();
    let runs = ids.iter().map(|id| {
        let socket = daemon.socket.clone();
        let id = id.clone();
        async move {
            let env = attachment_env_with("ADD", "CNI_CONTAINERID", &id);
            run_plugin(&socket, &env, &config("1.1.0")).await
        }
    });
    for out in futures_join_all(runs).await {
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let mut seen: Vec<String> = daemon
        .handler
        .calls()
        .iter()
        .map(|c| match c {
            Call::Add(r) => r.container_id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ids);
    daemon.stop().await;
}

/// `join_all` without the futures crate.
async fn futures_join_all<F: std::future::Future<Output = Outcome> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<Outcome> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outcomes = Vec::new();
    for handle in handles {
        outcomes.push(handle.await.unwrap());
    }
    outcomes
}
