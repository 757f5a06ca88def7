//! CNI ADD under Neutron faults.

use super::*;

// ------------------------------------------------------------- CNI

/// One fault on a CNI ADD: `Ok(())` expects success; `Err((codes, words))`
/// expects an error result with one of `codes` and a `msg` holding every
/// word.
struct CniCase {
    name: &'static str,
    /// `ADD`, or `DEL` (after a clean ADD; a failed DEL is repeated once
    /// the faults are gone, as a runtime does).
    command: &'static str,
    rules: Vec<(&'static str, &'static str, Fault, Option<u32>)>,
    expect: Result<(), (&'static [u64], &'static [&'static str])>,
    hits: Vec<u32>,
}

/// The CNI twin of [`run_cases`]: `kuryr daemon` reaches Neutron through
/// the proxy; after each ADD (and its DEL when it succeeded) the network
/// holds no Kuryr port, no veth or OVS port is left, and the next plain
/// ADD and DEL work.
fn run_cni_cases(test: &str, cases: Vec<CniCase>) {
    if std::env::var("KURYR_STACK_AUTH").as_deref() != Ok("noauth") {
        eprintln!("{test}: skipped: needs the noauth stack (scripts/stack env)");
        return;
    }
    let Some(stack) = stack(test) else {
        return;
    };
    let proxy = FaultProxy::start(neutron_addr());
    let env = [
        ("OS_AUTH_TYPE", "none".to_string()),
        ("OS_ENDPOINT", proxy.url()),
        ("OS_NEUTRON_ENDPOINT", proxy.url()),
        ("OS_TIMEOUT", TIMEOUT_S.to_string()),
    ];
    let mut w = cni_util::CniWorld::new(&stack, &env);
    for (n, case) in cases.into_iter().enumerate() {
        let indexes: Vec<usize> = case
            .rules
            .iter()
            .map(|(m, p, fault, times)| proxy.add(m, p, fault.clone(), *times))
            .collect();
        let netns = w.netns(&format!("f{n}"));
        let cid = w.container_id(&format!("f{n}"));
        if case.command == "DEL" {
            proxy.clear();
            let add = w.call("ADD", &cid, &netns);
            assert!(
                add.success,
                "{}: ADD: {} {}",
                case.name, add.stdout, add.stderr
            );
            for (i, (m, p, fault, times)) in case.rules.iter().enumerate() {
                assert_eq!(proxy.add(m, p, fault.clone(), *times), indexes[i]);
            }
        }
        let out = w.call(case.command, &cid, &netns);
        let hits: Vec<u32> = indexes.iter().map(|i| proxy.hits(*i)).collect();
        eprintln!(
            "fault cni {}: {} in {:.1} s, hits {hits:?}: {}",
            case.name,
            if out.success { "ok" } else { "failed" },
            out.elapsed.as_secs_f64(),
            if out.success { "" } else { &out.stdout }
        );
        match case.expect {
            Ok(()) => {
                assert!(
                    out.success,
                    "{}: ADD failed: {} {}",
                    case.name, out.stdout, out.stderr
                );
            }
            Err((codes, words)) => {
                let (code, msg) = out.error();
                assert!(
                    codes.contains(&code),
                    "{}: code {code} not in {codes:?}: {msg}",
                    case.name
                );
                for word in words {
                    assert!(
                        msg.contains(word),
                        "{}: msg lacks {word:?}: {msg}",
                        case.name
                    );
                }
            }
        }
        if !case.hits.is_empty() {
            assert_eq!(hits, case.hits, "{}: requests caught per rule", case.name);
        }
        proxy.clear();
        // After a failed ADD a runtime calls DEL; after a failed DEL it
        // calls DEL again. Both must work once the faults are gone.
        if !(case.command == "DEL" && out.success) {
            let del = w.call("DEL", &cid, &netns);
            assert!(
                del.success,
                "{}: DEL: {} {}",
                case.name, del.stdout, del.stderr
            );
        }
        let seen = port_ids_seen(&proxy);
        eventually(&format!("cni {}: nothing left behind", case.name), || {
            let mut left: Vec<String> = w
                .kuryr_ports()
                .into_iter()
                .map(|p| format!("Neutron port {} ({})", p.id, p.device_id))
                .collect();
            for id in &seen {
                left.extend(host_leftovers(&stack.bridge, id));
            }
            left
        });
        // The daemon still serves.
        assert!(w.daemon_alive(), "{}: the daemon died", case.name);
        let netns = w.netns(&format!("ok{n}"));
        let cid = w.container_id(&format!("ok{n}"));
        let add = w.call("ADD", &cid, &netns);
        assert!(
            add.success,
            "{}: next ADD: {} {}",
            case.name, add.stdout, add.stderr
        );
        let del = w.call("DEL", &cid, &netns);
        assert!(
            del.success,
            "{}: next DEL: {} {}",
            case.name, del.stdout, del.stderr
        );
    }
}

/// CNI ADD under Neutron faults. Transient trouble (5xx, timeout, 409)
/// is CNI code 11 ("try again later"), so the runtime retries.
#[test]
fn cni_add_under_faults() {
    let stall = Fault::Stall(Duration::from_secs(30));
    run_cni_cases(
        "cni_add_under_faults",
        vec![
            CniCase {
                name: "500 on every POST /v2.0/ports",
                command: "ADD",
                rules: vec![("POST", "/v2.0/ports", Fault::neutron_500(), None)],
                expect: Err((&[11], &["HTTPInternalServerError"])),
                hits: vec![1],
            },
            CniCase {
                name: "reset on every POST /v2.0/ports",
                command: "ADD",
                rules: vec![("POST", "/v2.0/ports", Fault::Reset, None)],
                expect: Err((&[11, 100], &["POST /v2.0/ports: transport error"])),
                hits: vec![1],
            },
            CniCase {
                name: "30 s stall on every POST /v2.0/ports",
                command: "ADD",
                rules: vec![("POST", "/v2.0/ports", stall.clone(), None)],
                expect: Err((&[11], &["timed out"])),
                hits: vec![1],
            },
            CniCase {
                name: "409 on POST /v2.0/ports",
                command: "ADD",
                rules: vec![(
                    "POST",
                    "/v2.0/ports",
                    Fault::neutron_409("IpAddressAlreadyAllocated", "injected"),
                    None,
                )],
                expect: Err((&[11], &["IpAddressAlreadyAllocated"])),
                hits: vec![1],
            },
            CniCase {
                // Neutron made the port; the runtime's DEL after the failed
                // ADD must find it (by device_id) and delete it.
                name: "POST /v2.0/ports done by Neutron, reply held 30 s",
                command: "ADD",
                rules: vec![(
                    "POST",
                    "/v2.0/ports",
                    Fault::StallReply(Duration::from_secs(30)),
                    Some(1),
                )],
                expect: Err((&[11], &["timed out"])),
                hits: vec![1],
            },
            CniCase {
                name: "500 once on DELETE /v2.0/ports/{id}",
                command: "DEL",
                rules: vec![("DELETE", "/v2.0/ports/", Fault::neutron_500(), Some(1))],
                expect: Ok(()),
                hits: vec![1],
            },
            CniCase {
                name: "500 on every DELETE /v2.0/ports/{id}",
                command: "DEL",
                rules: vec![("DELETE", "/v2.0/ports/", Fault::neutron_500(), None)],
                expect: Err((&[11], &["HTTPInternalServerError"])),
                hits: vec![3],
            },
            CniCase {
                name: "30 s stall once on DELETE /v2.0/ports/{id}",
                command: "DEL",
                rules: vec![("DELETE", "/v2.0/ports/", stall, Some(1))],
                expect: Ok(()),
                hits: vec![1],
            },
        ],
    );
}
