//! Unit tests of `nested`.

use super::vm_port::merged_pairs;
use super::*;

fn pair(ip: &str, mac: &str) -> AddressPair {
    AddressPair { ip_address: ip.into(), mac_address: Some(mac.into()) }
}

#[test]
fn driver_names() {
    assert_eq!(NestedMode::from_driver("macvlan"), Some(NestedMode::Macvlan));
    assert_eq!(NestedMode::from_driver("nested"), Some(NestedMode::Macvlan));
    assert_eq!(NestedMode::from_driver("vlan"), Some(NestedMode::Vlan));
    assert_eq!(NestedMode::from_driver("ipvlan"), Some(NestedMode::Ipvlan));
    assert_eq!(NestedMode::from_driver("veth"), None);
    assert!(NestedMode::Vlan.goes_active());
    assert!(!NestedMode::Macvlan.goes_active());
}

/// Other pairs (another container, an operator's VIP) survive; the
/// same pair is not added twice; removal matches IP and MAC.
#[test]
fn pairs_merge_keeps_others() {
    let other = pair("10.0.0.9", "fa:16:3e:00:00:09");
    let vip = AddressPair { ip_address: "10.0.0.0/24".into(), mac_address: None };
    let mine = pair("10.0.0.5", "fa:16:3e:00:00:05");
    let merged = merged_pairs(&[other.clone(), vip.clone()], std::slice::from_ref(&mine), &[]);
    assert_eq!(merged, vec![other.clone(), vip.clone(), mine.clone()]);
    let again = merged_pairs(&merged, &[pair("10.0.0.5", "FA:16:3E:00:00:05")], &[]);
    assert_eq!(again, merged);
    let removed = merged_pairs(&merged, &[], &[pair("10.0.0.5/32", "fa:16:3e:00:00:05")]);
    assert_eq!(removed, vec![other.clone(), vip.clone()]);
    // Same IP, another MAC (another container's pair): kept.
    let kept = merged_pairs(&merged, &[], &[pair("10.0.0.9", "fa:16:3e:00:00:05")]);
    assert_eq!(kept, merged);
    let v6 = merged_pairs(
        &[pair("fd00:0::1", "fa:16:3e:00:00:01")],
        &[],
        &[pair("fd00::1", "fa:16:3e:00:00:01")],
    );
    assert!(v6.is_empty());
}

#[test]
fn free_vlan_avoids_used_ids() {
    let used: Vec<SubPort> = (1..=4093).map(|id| SubPort::vlan(format!("p{id}"), id)).collect();
    assert_eq!(pick_free_vlan(&used), Some(4094));
    let mut all = used;
    all.push(SubPort::vlan("last", 4094));
    assert_eq!(pick_free_vlan(&all), None);
    for _ in 0..100 {
        let id = pick_free_vlan(&[SubPort::vlan("a", 7)]).expect("free");
        assert!(VLAN_IDS.contains(&id) && id != 7);
    }
    assert_eq!(vlan_of(&[SubPort::vlan("a", 7)], "a"), Some(7));
    assert_eq!(vlan_of(&[SubPort::vlan("a", 7)], "b"), None);
}
