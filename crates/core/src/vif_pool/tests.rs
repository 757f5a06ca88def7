//! Unit tests of `vif_pool`.

use super::*;
use openstack::neutron::FixedIp;

#[test]
fn keys_ignore_security_group_order() {
    let a = PoolKey::new("n", "s", "h", vec!["b".into(), "a".into(), "a".into()], "");
    let b = PoolKey::new("n", "s", "h", vec!["a".into(), "b".into()], "");
    assert_eq!(a, b);
    let port = Port {
        network_id: "n".into(),
        binding_host_id: "h".into(),
        fixed_ips: vec![FixedIp {
            subnet_id: "s".into(),
            ip_address: "10.0.0.5".parse().expect("ip"),
        }],
        ..Port::default()
    };
    assert_eq!(PoolKey::of_port(&port), Some(PoolKey::new("n", "s", "h", Vec::new(), "")));
    assert_eq!(PoolKey::of_port(&Port::default()), None, "no address, no pool");
}

#[test]
fn settings_from_config() {
    let mut config = crate::config::Config::default();
    assert!(!PoolSettings::from_config(&config).enabled(), "off by default");
    config.vif_pool.ports_pool_min = 3;
    config.vif_pool.ports_pool_max = 5;
    let s = PoolSettings::from_config(&config);
    assert!(s.enabled());
    assert!(s.has_room(4));
    assert!(!s.has_room(5));
    assert!(PoolSettings { max: 0, ..s }.has_room(1000), "0: no limit");
    config.binding.driver = "macvlan".into();
    assert!(!PoolSettings::from_config(&config).enabled(), "nested bindings have no pools");
}
