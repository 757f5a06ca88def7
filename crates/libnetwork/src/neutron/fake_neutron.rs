//! The driver on the shared fake Neutron (`openstack::fake`) and a fake
//! OVS switch, for unit tests of its Neutron call sequences.

use std::sync::Arc;

use kuryr_core::binding::Binder;
use netplumb::ovs::fake::FakeSwitch;
use netplumb::Netlink;
pub(crate) use openstack::fake::FakeNeutron;

use super::{DriverSettings, KuryrDriver};
use crate::wire::Scope;

/// The driver talking to a [`FakeNeutron`].
pub(crate) trait FakeDriver {
    /// A driver talking to this fake (noauth), with a fake OVS switch.
    async fn driver(&self) -> KuryrDriver;
    /// The same with its own settings.
    async fn driver_with(&self, settings: DriverSettings) -> KuryrDriver;
}

impl FakeDriver for FakeNeutron {
    async fn driver(&self) -> KuryrDriver {
        self.driver_with(settings()).await
    }

    async fn driver_with(&self, settings: DriverSettings) -> KuryrDriver {
        let netlink = Netlink::host().await.expect("a netlink socket");
        let binder = Binder::new(netlink, Arc::new(FakeSwitch::with_bridge("br-int")), "br-int");
        KuryrDriver::new(self.client(), binder, settings)
    }
}

pub(crate) fn settings() -> DriverSettings {
    DriverSettings {
        scope: Scope::Local,
        local_address_space: "no_address_space".into(),
        global_address_space: "no_address_space".into(),
        subnetpool_name_prefix: "kuryrPool".into(),
        default_subnetpool_v4: "kuryr".into(),
        default_subnetpool_v6: "kuryr6".into(),
        enable_dhcp: true,
        process_external_connectivity: true,
        ip_range_as_subnet: false,
        veth_dst_prefix: "eth".into(),
        pool: kuryr_core::vif_pool::PoolSettings::default(),
        lifecycle: kuryr_core::lifecycle::LifecycleSettings {
            host: "test-host".into(),
            active_timeout: std::time::Duration::from_secs(1),
            active_is_fatal: true,
            pool_owner_tag: "kuryr.pool.docker:test".into(),
        },
    }
}
