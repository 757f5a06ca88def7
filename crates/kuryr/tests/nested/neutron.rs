//! The Neutron side of nested mode under concurrency: allowed address
//! pairs and trunk subports updated by many callers at once.

use super::*;

// ------------------------------------------------------------- Neutron side

/// 10 attachments at once (Neutron's default max_allowed_address_pair),
/// each from its own client (as separate processes would be), add their
/// pairs to one VM port: none is lost (If-Match + retry on 412); an 11th
/// gets a clear error; removing them all at once leaves none.
#[test]
fn concurrent_pair_updates_lose_nothing() {
    let Some(stack) = stack("concurrent_pair_updates_lose_nothing") else {
        return;
    };
    if !needs_root("concurrent_pair_updates_lose_nothing") {
        return;
    }
    let net = Net::new(&stack);
    let vm = SimVm::new(&stack, &net.id, false);
    let pairs: Vec<AddressPair> = (0..10)
        .map(|i| AddressPair {
            ip_address: format!("{}.{}", net.prefix, 100 + i),
            // VRRP MACs: ML2/OVN accepts no other foreign MAC in pairs.
            mac_address: Some(format!("00:00:5e:00:01:{:02x}", i + 1)),
        })
        .collect();
    let run_all = |add: bool| {
        let started = Instant::now();
        stack.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for pair in pairs.clone() {
                let client = VmPortClient::new(
                    stack.neutron.clone(),
                    Netlink::host().await.expect("netlink"),
                    vm.nic.clone(),
                );
                tasks.spawn(async move {
                    let (a, r) = if add {
                        (vec![pair], vec![])
                    } else {
                        (vec![], vec![pair])
                    };
                    client.update_pairs("test", &a, &r).await
                });
            }
            while let Some(res) = tasks.join_next().await {
                res.expect("task").expect("pair update");
            }
        });
        eprintln!(
            "10 concurrent pair updates (add={add}): {:?}",
            started.elapsed()
        );
    };
    run_all(true);
    let got = vm.pairs();
    for pair in &pairs {
        assert!(
            vm.has_pair(&pair.ip_address, pair.mac_address.as_deref().expect("mac")),
            "lost {pair:?}; VM port has {got:?}"
        );
    }
    assert_eq!(got.len(), 10);
    let client = VmPortClient::new(
        stack.neutron.clone(),
        stack.block_on(Netlink::host()).expect("netlink"),
        vm.nic.clone(),
    );
    let eleventh = AddressPair {
        ip_address: format!("{}.99", net.prefix),
        mac_address: Some("00:00:5e:00:01:63".into()),
    };
    let err = stack
        .block_on(client.update_pairs("test", &[eleventh], &[]))
        .expect_err("the VM port is full");
    assert!(
        err.to_string().contains("max_allowed_address_pair"),
        "{err}"
    );
    run_all(false);
    assert!(vm.pairs().is_empty(), "{:?}", vm.pairs());
}

/// 20 container ports become subports of the VM's trunk at once, each
/// from its own client: every VLAN id is unique (409 DuplicateSubPort
/// retried on a fresh read of the trunk), subports go ACTIVE with their
/// bound parent, and removing them leaves the trunk empty.
#[test]
fn concurrent_subports_get_unique_vlans() {
    let Some(stack) = stack("concurrent_subports_get_unique_vlans") else {
        return;
    };
    if !needs_root("concurrent_subports_get_unique_vlans") {
        return;
    }
    let net = Net::new(&stack);
    let vm = SimVm::new(&stack, &net.id, true);
    let ports = net.ports(20);
    let started = Instant::now();
    let vlans: Vec<(String, u16)> = stack.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for port in &ports {
            let client = VmPortClient::new(
                stack.neutron.clone(),
                Netlink::host().await.expect("netlink"),
                vm.nic.clone(),
            );
            let id = port.id.clone();
            tasks.spawn(async move {
                let vlan = client.add_subport(&id).await.expect("subport added");
                (id, vlan)
            });
        }
        let mut out = Vec::new();
        while let Some(res) = tasks.join_next().await {
            out.push(res.expect("task"));
        }
        out
    });
    eprintln!("20 concurrent subport adds: {:?}", started.elapsed());
    let mut ids: Vec<u16> = vlans.iter().map(|(_, v)| *v).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20, "VLAN ids collide: {vlans:?}");
    let subs = vm.sub_ports();
    assert_eq!(subs.len(), 20, "{subs:?}");
    for (port_id, vlan) in &vlans {
        let sub = subs
            .iter()
            .find(|s| &s.port_id == port_id)
            .expect("subport");
        assert_eq!(sub.segmentation_id, Some(u32::from(*vlan)));
    }
    // A retried add keeps the id it has.
    let client = VmPortClient::new(
        stack.neutron.clone(),
        stack.block_on(Netlink::host()).expect("netlink"),
        vm.nic.clone(),
    );
    let (first, first_vlan) = &vlans[0];
    assert_eq!(
        stack.block_on(client.add_subport(first)).expect("again"),
        *first_vlan
    );
    // The parent is bound: Neutron/OVN set its subports ACTIVE.
    let started = Instant::now();
    wait_status(&stack, first, "ACTIVE");
    eprintln!("subport ACTIVE after {:?}", started.elapsed());

    stack.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for (port_id, _) in vlans.clone() {
            let client = VmPortClient::new(
                stack.neutron.clone(),
                Netlink::host().await.expect("netlink"),
                vm.nic.clone(),
            );
            tasks.spawn(async move { client.remove_subport(&port_id).await });
        }
        while let Some(res) = tasks.join_next().await {
            res.expect("task").expect("subport removed");
        }
    });
    assert!(vm.sub_ports().is_empty(), "{:?}", vm.sub_ports());
    // Removing again is fine.
    stack
        .block_on(client.remove_subport(first))
        .expect("idempotent");
}
