//! Kuryr's core: configuration, the names and tags of what Kuryr makes in
//! Neutron and on the host, and the attachment lifecycle that binds a Neutron
//! port into a container.

pub mod binding;
pub mod config;
pub mod credentials;
pub mod gc;
pub mod ini;
pub mod ipmath;
pub mod layout;
pub mod lifecycle;
pub mod metrics;
pub mod naming;
pub mod owner;
pub mod socket;
pub mod vif_pool;
