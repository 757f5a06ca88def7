//! Taking the snapshot ([`collect`]) and applying a plan's actions
//! ([`apply`]): the only part of GC that reads or changes Neutron and the host.

use super::*;

/// Host and Neutron access for [`collect`] and [`apply`].
pub struct Host<'a> {
    /// The Neutron client.
    pub neutron: &'a Neutron,
    /// OVSDB.
    pub switch: &'a dyn Switch,
    /// Netlink.
    pub netlink: &'a Netlink,
}

/// Takes the snapshot: host devices first, then Neutron, then Docker.
pub async fn collect(
    host: &Host<'_>,
    owners: &dyn Owners,
    settings: &Settings,
) -> Result<Snapshot, GcError> {
    let ovs_interfaces = host
        .switch
        .find_interfaces(IFACE_ID_KEY, None)
        .await
        .map_err(GcError::host("listing OVS interfaces"))?
        .into_iter()
        .filter(|i| i.bridge.as_deref().is_none_or(|b| b == settings.bridge))
        .collect();
    let veths = host
        .netlink
        .links()
        .await
        .map_err(GcError::host("listing links"))?
        .into_iter()
        .filter(|l| l.kind.as_deref() == Some("veth") && l.name.starts_with(HOST_VETH_PREFIX))
        .map(|l| l.name)
        .collect();
    let neutron_err = GcError::neutron;
    let mut ports: Vec<PortRecord> = host
        .neutron
        .list(
            Resource::Ports,
            &Query::new()
                .device_owner(naming::DEVICE_OWNER)
                .binding_host_id(&settings.host)
                .tags([naming::DEVICE_OWNER]),
        )
        .await
        .map_err(neutron_err("listing this host's Kuryr ports"))?;
    let adopted: Vec<PortRecord> = host
        .neutron
        .list(Resource::Ports, &Query::new().tags([naming::EXISTING_PORT_TAG]))
        .await
        .map_err(neutron_err("listing adopted ports"))?;
    ports.extend(
        adopted
            .into_iter()
            .filter(|p| p.binding_host_id == settings.host || p.binding_host_id.is_empty()),
    );
    // A port listed above existed after the host snapshot; one deleted
    // since then is being torn down by its owner, who unplugs it first.
    let mut all_port_ids: BTreeSet<String> = ports.iter().map(|p| p.id.clone()).collect();
    let listed: BTreeSet<String> = host
        .neutron
        .list::<IdRecord>(Resource::Ports, &Query::new().fields(["id"]))
        .await
        .map_err(neutron_err("listing port ids"))?
        .into_iter()
        .map(|p| p.id)
        .collect();
    all_port_ids.extend(listed);
    let docker_network_of = docker_networks_of(host.neutron, &ports).await?;
    let mut docker = HashMap::new();
    let wanted: BTreeSet<String> = ports
        .iter()
        .filter(|p| p.cni_attachment().is_none() && !p.is_pool_port())
        .filter_map(|p| {
            naming::docker_network_from_tags(&p.tags)
                .or_else(|| docker_network_of.get(&p.network_id).cloned())
        })
        .collect();
    for id in wanted {
        let answer = owners.docker_network(&id).await;
        docker.insert(id, answer);
    }
    Ok(Snapshot {
        ports,
        all_port_ids,
        docker_network_of,
        docker,
        ovs_interfaces,
        veths,
        now: now(),
    })
}

/// Docker network id of each Neutron network the ports are on, from the
/// network's `kuryr.net.uuid.lh/uh` tags.
pub(super) async fn docker_networks_of(
    neutron: &Neutron,
    ports: &[PortRecord],
) -> Result<HashMap<String, String>, GcError> {
    let ids: BTreeSet<&str> = ports.iter().map(|p| p.network_id.as_str()).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let query = ids.iter().fold(Query::new().fields(["id", "tags"]), |q, id| q.id(*id));
    let networks = neutron
        .list_networks(&query)
        .await
        .map_err(GcError::neutron("reading the ports' networks"))?;
    Ok(networks
        .into_iter()
        .filter_map(|n| naming::id_from_tags(&n.tags).map(|d| (n.id.into_string(), d)))
        .collect())
}

/// What one action did.
#[derive(Debug)]
pub struct Outcome {
    /// The action.
    pub action: Action,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Carries out the plan; every action is tried, failures are reported.
pub async fn apply(host: &Host<'_>, actions: &[Action]) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(actions.len());
    for action in actions {
        let result = apply_one(host, action).await;
        match &result {
            Ok(()) => info!(%action, "gc: done"),
            Err(err) => warn!(%action, %err, "gc: failed"),
        }
        out.push(Outcome { action: action.clone(), error: result.err().map(|e| e.to_string()) });
    }
    out
}

pub(super) async fn apply_one(host: &Host<'_>, action: &Action) -> Result<(), GcError> {
    match action {
        Action::DeletePort { port_id, .. } => {
            unplug(host, &naming::host_veth_name(port_id)).await?;
            match host.neutron.delete_port(port_id).await {
                Ok(()) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(GcError::neutron(format!("deleting port {port_id}"))(e)),
            }
        }
        Action::ResetPort { port_id, .. } => {
            unplug(host, &naming::host_veth_name(port_id)).await?;
            crate::lifecycle::reset_adopted(host.neutron, port_id).await
        }
        Action::RemoveOvsPort { ifname, .. } | Action::RemoveVeth { ifname, .. } => {
            unplug(host, ifname).await
        }
    }
}

pub(super) async fn unplug(host: &Host<'_>, ifname: &str) -> Result<(), GcError> {
    let err = GcError::host(format!("removing {ifname}"));
    host.switch.delete_port(None, ifname).await.map_err(&err)?;
    host.netlink.delete_link(ifname).await.map_err(&err)?;
    Ok(())
}
