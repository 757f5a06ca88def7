//! Docker calls under Neutron faults: 500s, connection resets, stalls
//! and conflicts leave the right reply and nothing behind.

use super::*;

/// Runs the cases one after another on one network: for each, install
/// the rules, `docker run`, check the outcome and the hits, remove the
/// rules, check nothing is left, and check a plain `docker run` works.
fn run_cases(test: &str, cases: Vec<Case>) {
    let Some((proxy, f)) = proxied(test) else {
        return;
    };
    let (cidr, net, docker_net, network) = f.fresh_neutron_network();
    for (n, case) in cases.into_iter().enumerate() {
        let indexes = proxy.add_all(&case.rules);
        let c = f.name(&format!("c{n}"));
        let log_from = f.kuryr.log_len();
        let started = Instant::now();
        let out = f.try_run_detached(&c, &net, &[]);
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        // Retries after Docker's reply (the owner record) take a while.
        let count = || -> Vec<u32> { indexes.iter().map(|i| proxy.hits(*i)).collect() };
        let short = || count().iter().zip(&case.hits).any(|(got, want)| got < want);
        let deadline = Instant::now() + Duration::from_secs(90);
        while short() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let hits = count();
        eprintln!(
            "fault {}: {} in {:.1} s, hits {hits:?}{}",
            case.name,
            if out.status.success() { "ok" } else { "failed" },
            elapsed.as_secs_f64(),
            if stderr.is_empty() { String::new() } else { format!(": {stderr}") }
        );
        match case.error {
            None => {
                assert!(out.status.success(), "{}: docker run failed: {stderr}", case.name);
                wait_active(&f, &network.id, &attachment(&c, &net));
            }
            Some(words) => {
                assert!(!out.status.success(), "{}: docker run succeeded", case.name);
                assert_names_all(case.name, &stderr, words);
            }
        }
        assert_hits(case.name, &hits, &case.hits);
        proxy.clear();
        f.remove_container(&c);
        if let Some(line) = case.log {
            let what = format!("{}: {line:?} in Kuryr's log", case.name);
            wait_for(&what, Duration::from_secs(30), || {
                let log = f.kuryr.log_text();
                log.get(log_from..)?.contains(line).then_some(())
            });
        }
        // Nothing half-made: no Kuryr port on the network (real Neutron),
        // no veth or OVS port of any port Kuryr touched.
        let seen = port_ids_seen(&proxy);
        if case.known_leak {
            std::thread::sleep(Duration::from_secs(2));
            for port in f
                .stack
                .ports(Query::new().network_id(&network.id))
                .into_iter()
                .filter(|p| !p.device_owner.starts_with("network:"))
            {
                eprintln!(
                    "fault {}: KNOWN LEAK: port {} (device_owner {:?}, device_id {:?}, tags {:?})",
                    case.name, port.id, port.device_owner, port.device_id, port.tags
                );
                assert_eq!(port.device_owner, "compute:kuryr", "{}: leaked port", case.name);
                f.stack
                    .block_on(f.stack.neutron.delete_port(&port.id))
                    .expect("deleting the leaked port");
            }
        }
        eventually(&format!("{}: nothing left behind", case.name), || {
            let mut left: Vec<String> = kuryr_ports(&f, &network.id)
                .into_iter()
                .map(|p| format!("Neutron port {p}"))
                .collect();
            for id in &seen {
                left.extend(f.stack.local().leftovers(id));
            }
            left
        });
        // The plugin still serves.
        let ok = f.name(&format!("ok{n}"));
        let att = f.run_detached(&ok, &net, &[]);
        wait_active(&f, &network.id, &att);
        f.remove_container(&ok);
    }
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[]);
}

/// What Kuryr logs when the owner record after `CreateEndpoint` fails
/// (`record_owner` in crates/libnetwork/src/neutron/endpoints.rs).
const OWNER_DEFERRED: &str = "retried at the next start";

/// 500s: a POST is never resent (it is not idempotent); a PUT is retried
/// (3 attempts in all), so a single 500 is absorbed. The PUTs that record
/// the endpoint on the port run after Docker has its reply: when they fail
/// for good the container still starts and the failure is logged.
#[test]
fn neutron_500s() {
    run_cases(
        "neutron_500s",
        vec![
            Case::new(
                "500 on every POST /v2.0/ports",
                every("POST", "/v2.0/ports", Fault::neutron_500()),
            )
            .fails(&["RequestAddress", "HTTPInternalServerError"])
            .hits(1),
            Case::new(
                "500 once on PUT /v2.0/ports/{id}",
                once("PUT", "/v2.0/ports/", Fault::neutron_500()),
            )
            .hits(1),
            Case::new(
                "500 on every PUT /v2.0/ports/{id} and /tags",
                every("PUT", "/v2.0/ports/", Fault::neutron_500()),
            )
            .hits(6)
            .logs(OWNER_DEFERRED),
            // Kuryr waits for ACTIVE through OVS (ovn-installed), not
            // by polling the port: the rule catches nothing.
            Case::new(
                "500 on every GET /v2.0/ports/{id}",
                every("GET", "/v2.0/ports/", Fault::neutron_500()),
            ),
        ],
    );
}

/// Connection resets: a POST whose connection broke is not resent; a PUT
/// is.
#[test]
fn connection_resets() {
    run_cases(
        "connection_resets",
        vec![
            Case::new(
                "reset on every POST /v2.0/ports",
                every("POST", "/v2.0/ports", Fault::Reset),
            )
            .fails(&["RequestAddress", "POST /v2.0/ports: transport error"])
            .hits(1),
            Case::new(
                "reset once on PUT /v2.0/ports/{id}",
                once("PUT", "/v2.0/ports/", Fault::Reset),
            )
            .hits(1),
            Case::new(
                "reset on every PUT /v2.0/ports/{id} and /tags",
                every("PUT", "/v2.0/ports/", Fault::Reset),
            )
            .hits(6)
            .logs(OWNER_DEFERRED),
        ],
    );
}

/// 30 s stalls, with `[neutron] timeout = 15`: each attempt gives up after
/// 15 s; the POST is not resent, the PUT is (3 attempts). A POST that
/// Neutron carried out but whose reply never came leaves its port behind
/// (a known leak, reported).
#[test]
fn neutron_stalls() {
    let stall = Fault::Stall(Duration::from_secs(30));
    run_cases(
        "neutron_stalls",
        vec![
            Case::new(
                "30 s stall on every POST /v2.0/ports",
                every("POST", "/v2.0/ports", stall.clone()),
            )
            .fails(&["RequestAddress", "POST /v2.0/ports: timed out"])
            .hits(1),
            Case::new(
                "30 s stall once on PUT /v2.0/ports/{id}",
                once("PUT", "/v2.0/ports/", stall.clone()),
            )
            .hits(1),
            Case::new(
                "30 s stall on every PUT /v2.0/ports/{id} and /tags",
                every("PUT", "/v2.0/ports/", stall),
            )
            .hits(6)
            .logs(OWNER_DEFERRED),
            Case::new(
                "POST /v2.0/ports done by Neutron, reply held 30 s",
                once("POST", "/v2.0/ports", Fault::StallReply(Duration::from_secs(30))),
            )
            .fails(&["RequestAddress", "POST /v2.0/ports: timed out"])
            .hits(1)
            .known_leak(),
        ],
    );
}

/// 409s are real conflicts: never retried, reported with Neutron's type.
#[test]
fn neutron_conflicts() {
    run_cases(
        "neutron_conflicts",
        vec![
            Case::new(
                "409 IpAddressAlreadyAllocated on POST /v2.0/ports",
                every(
                    "POST",
                    "/v2.0/ports",
                    Fault::neutron_409(
                        "IpAddressAlreadyAllocated",
                        "IP address 10.0.0.5 already allocated in subnet injected",
                    ),
                ),
            )
            .fails(&["RequestAddress", "IpAddressAlreadyAllocated"])
            .hits(1),
            Case::new(
                "409 on PUT /v2.0/ports/{id}/tags",
                every(
                    "PUT",
                    "/v2.0/ports/*/tags",
                    Fault::neutron_409("Conflict", "injected conflict on the port's tags"),
                ),
            )
            .hits(1)
            .logs(OWNER_DEFERRED),
        ],
    );
}
