//! The one place the configuration becomes clients: Neutron (credentials
//! from `[neutron]` or the environment), this host's `binding:host_id`,
//! netlink, OVSDB, and the binder for `[binding] driver`
//! (docs/configuration.md). Every subcommand opens what it needs here.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use kuryr_core::binding::{Binder, NestedConfig, NestedMode};
use kuryr_core::config::Config;
use netplumb::ovs::{OvsdbClient, Switch};
use netplumb::Netlink;
use openstack::neutron::Neutron;
use tracing::info;

/// The Neutron client of `[neutron]` (or `OS_*`).
pub(crate) fn neutron(config: &Config) -> Result<Neutron> {
    let auth = kuryr_core::credentials::resolve(&config.neutron, |name| std::env::var(name).ok())?;
    Neutron::new(auth).context("building the Neutron client")
}

/// `binding:host_id` for this host: `[DEFAULT] host`, else the hostname
/// (what Nova and the Neutron agents use, so ML2 binds the port here).
pub(crate) fn host_name(config: &Config) -> Result<String> {
    if let Some(host) = &config.default.host {
        return Ok(host.clone());
    }
    let name =
        std::fs::read_to_string("/proc/sys/kernel/hostname").context("reading the hostname")?;
    Ok(name.trim().to_string())
}

/// This host's netlink handle and OVSDB client (`[binding] ovsdb_socket`).
pub(crate) async fn host_plumbing(config: &Config) -> Result<(Netlink, Arc<dyn Switch>)> {
    let netlink = Netlink::host().await.context("opening netlink")?;
    let switch: Arc<dyn Switch> = Arc::new(OvsdbClient::new(config.binding.ovsdb_socket.clone()));
    Ok((netlink, switch))
}

/// What a serving subcommand works with.
pub(crate) struct Clients {
    /// Neutron.
    pub(crate) neutron: Neutron,
    /// This host's `binding:host_id`.
    pub(crate) host: String,
    /// The binder for `[binding] driver`.
    pub(crate) binder: Binder,
}

impl Clients {
    /// Neutron, the host name and the binder, from the configuration.
    pub(crate) async fn open(config: &Config) -> Result<Clients> {
        let neutron = neutron(config)?;
        let host = host_name(config)?;
        let (netlink, switch) = host_plumbing(config).await?;
        let binder = Binder::new(netlink, switch, config.binding.integration_bridge.clone());
        let binder = nested(binder, config, &neutron)?;
        Ok(Clients { neutron, host, binder })
    }
}

/// The binder for `[binding] driver`: as is for veth; for macvlan, ipvlan
/// and vlan, nested on `[binding] link_iface` (docs/nested.md).
fn nested(binder: Binder, config: &Config, neutron: &Neutron) -> Result<Binder> {
    let driver = config.binding.driver.as_str();
    let Some(mode) = NestedMode::from_driver(driver) else {
        if driver != "veth" {
            bail!("[binding] driver = {driver}: not a binding driver this host can use");
        }
        return Ok(binder);
    };
    let Some(link_iface) = config.binding.link_iface.clone() else {
        bail!("[binding] driver = {driver} needs [binding] link_iface (the VM's NIC)");
    };
    info!(driver, link_iface, "nested binding: containers ride on the VM's port");
    Ok(binder.with_nested(neutron.clone(), NestedConfig { mode, link_iface }))
}
