//! The CNI `GC` verb: removes this host's attachments of one CNI network
//! that the runtime no longer lists as valid, in Neutron and on the host
//! (docs/cni.md § GC).

use std::collections::HashSet;

use super::{errors, NeutronCni, OVS_KEYS};
use crate::attachments::unplug_invalid;
use crate::proto::GcRequest;
use crate::CniError;
use kuryr_core::naming::{cni as tags, DEVICE_OWNER};
use openstack::neutron::Query;
use tracing::{info, warn};

impl NeutronCni {
    pub(super) async fn garbage_collect(&self, req: &GcRequest) -> Result<(), CniError> {
        let cni_network = req.config.name.as_deref().unwrap_or_default();
        let query = Query::new()
            .device_owner(DEVICE_OWNER)
            .binding_host_id(&self.settings.lifecycle.host)
            .tags([tags::network_tag(cni_network)]);
        let ports = self
            .neutron
            .list_ports(&query)
            .await
            .map_err(|e| errors::neutron("listing this host's CNI ports", &e))?;
        let valid = req.valid_set();
        let mut first_error = None;
        for port in &ports {
            let Some((container_id, ifname)) = tags::attachment_of(&port.tags) else {
                continue;
            };
            if valid.contains(&(container_id.as_str(), ifname.as_str())) {
                continue;
            }
            match self.remove(&port.id).await {
                Ok(()) => {
                    info!(port_id = %port.id, container_id, ifname, "GC: removed stale attachment")
                }
                Err(err) => {
                    warn!(port_id = %port.id, container_id, %err, "GC: could not remove");
                    first_error.get_or_insert(err);
                }
            }
        }
        self.collect_host_leftovers(cni_network, &valid, &mut first_error).await;
        first_error.map_or(Ok(()), Err)
    }

    /// Host ends (OVS port + veth) of this CNI network whose attachment is
    /// not valid, also when their Neutron port was deleted behind Kuryr's
    /// back: found by the OVS interface's `external_ids`.
    pub(super) async fn collect_host_leftovers(
        &self,
        cni_network: &str,
        valid: &HashSet<(&str, &str)>,
        first_error: &mut Option<CniError>,
    ) {
        if !self.binder.binds_host() {
            // Nested: no OVS in the VM; the links went with their netns.
            return;
        }
        let found = match self
            .binder
            .switch()
            .find_interfaces(tags::OVS_NETWORK_KEY, Some(cni_network))
            .await
        {
            Ok(found) => found,
            Err(err) => {
                first_error.get_or_insert(errors::plumbing("listing OVS interfaces", &err));
                return;
            }
        };
        if let Some(err) = unplug_invalid(&self.binder, &found, OVS_KEYS, valid).await {
            first_error.get_or_insert(err);
        }
    }
}
