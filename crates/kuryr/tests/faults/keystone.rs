//! An expiring Keystone token: one re-authentication, no failed call.

use super::*;

// ------------------------------------------------------------- Keystone

/// A token that expires mid-run: Neutron answers 401 to a token it no
/// longer accepts. The proxy answers 401 once to a request carrying a
/// valid token; Kuryr must re-authenticate with Keystone once and succeed.
/// A token Neutron never accepts gives a clear 401 error after exactly one
/// re-authentication. Runs against the Keystone stack only
/// (`scripts/stack up --keystone`): Keystone is asked directly, Neutron
/// through the proxy (`[neutron] endpoint` overrides the catalog). Kuryr's
/// log is kept in target/kuryr-test-logs/ for `scripts/check-secrets`.
#[test]
fn keystone_token_expiry_reauthenticates_once() {
    let test = "keystone_token_expiry_reauthenticates_once";
    if std::env::var("KURYR_STACK_AUTH").as_deref() != Ok("keystone") {
        eprintln!("{test}: skipped: needs the Keystone stack (scripts/stack up --keystone)");
        return;
    }
    let neutron = openstack::neutron::Neutron::new(
        openstack::AuthOptions::from_env().expect("OS_* variables from scripts/stack env"),
    )
    .expect("a Neutron client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let upstream = rt
        .block_on(neutron.client().endpoint())
        .expect("Neutron's endpoint from the catalog");
    let upstream: SocketAddr = format!(
        "{}:{}",
        upstream.host_str().expect("a host"),
        upstream.port_or_known_default().expect("a port")
    )
    .parse()
    .expect("a loopback Neutron");
    let proxy = FaultProxy::start(upstream);
    let kuryr = Kuryr::start(&format!(
        "[DEFAULT]\n[neutron]\nendpoint = {}\ntimeout = {TIMEOUT_S}\n",
        proxy.url()
    ));
    let cidr = format!("{}.0/24", fresh_v4());
    let pool_name = format!("kuryrPool-{cidr}");
    let cleanup = || {
        let pools = rt
            .block_on(neutron.list_subnetpools(&Query::new().name(&pool_name)))
            .unwrap_or_default();
        for p in pools {
            let _ = rt.block_on(neutron.delete_subnetpool(&p.id));
        }
    };
    let request_pool = || {
        kuryr.post_json(
            "/IpamDriver.RequestPool",
            &serde_json::json!({"AddressSpace": "no_address_space", "Pool": cidr, "Options": {}, "V6": false}),
        )
    };

    // Expiry: one 401, one re-authentication, success.
    let rule = proxy.add("GET", "/v2.0/", Fault::unauthorized(), Some(1));
    let started = Instant::now();
    let (status, reply) = request_pool();
    eprintln!(
        "fault 401 once (token expired): RequestPool {status} in {:.1} s: {reply}",
        started.elapsed().as_secs_f64()
    );
    let log = kuryr.log_text();
    let reauth = log.matches("re-authenticating once").count();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_eq!(status, 200, "RequestPool after a 401: {reply}");
        assert_eq!(proxy.hits(rule), 1);
        assert_eq!(reauth, 1, "one re-authentication");
        let pool_id = reply["PoolID"].as_str().expect("PoolID").to_string();
        let (status, reply) = kuryr.post_json(
            "/IpamDriver.ReleasePool",
            &serde_json::json!({ "PoolID": pool_id }),
        );
        assert_eq!(status, 200, "ReleasePool: {reply}");

        // A token Neutron never accepts: 401 after one re-authentication.
        proxy.clear();
        let rule = proxy.add("GET", "/v2.0/", Fault::unauthorized(), None);
        let (status, reply) = request_pool();
        eprintln!("fault 401 always: RequestPool {status}: {reply}");
        assert!(
            status >= 400,
            "RequestPool with a refused token: {status} {reply}"
        );
        let err = reply["Err"].as_str().unwrap_or_default();
        assert!(err.contains("Unauthorized"), "{err}");
        // The request, then once more after re-authenticating (at least:
        // a background call of the plugin may be caught too).
        assert!(proxy.hits(rule) >= 2, "hits {}", proxy.hits(rule));
        proxy.clear();
        assert!(
            rt.block_on(neutron.list_subnetpools(&Query::new().name(&pool_name)))
                .expect("listing subnetpools")
                .is_empty(),
            "nothing left in Neutron"
        );
        let (status, _) = kuryr.post("/Plugin.Activate", b"");
        assert_eq!(status, 200, "the plugin still serves");
    }));
    cleanup();
    // Keep the log for scripts/check-secrets, and check it here too.
    let kept =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/kuryr-test-logs");
    let _ = std::fs::create_dir_all(&kept);
    let log = kuryr.log_text();
    let _ = std::fs::write(kept.join(format!("{test}.log")), &log);
    if let Ok(password) = std::env::var("OS_PASSWORD") {
        assert!(!log.contains(&password), "the password is in Kuryr's log");
    }
    assert!(!log.contains("gAAAAA"), "a Fernet token is in Kuryr's log");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
