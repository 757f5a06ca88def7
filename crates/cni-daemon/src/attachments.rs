//! What every CNI handler of the daemon shares about attachments
//! `(container id, ifname)` on this host: one call at a time per
//! attachment ([`AttachmentLocks`]), and their host sides found through
//! OVSDB alone, without Neutron or the apiserver ([`OvsKeys`],
//! [`ports_in_ovsdb`], [`unplug_invalid`]), and an ADD's netns
//! ([`netns_of`]) (docs/cni.md).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use kuryr_core::binding::{Binder, IFACE_ID_KEY};
use netplumb::ovs::InterfaceRecord;
use tracing::{info, warn};

use crate::proto::AttachmentRequest;
use crate::CniError;

type AttachmentLock = Arc<tokio::sync::Mutex<()>>;

/// An ADD's `CNI_NETNS`, opened, and its path: error 4 (invalid
/// environment) when it is missing or not a network namespace.
pub fn netns_of(req: &AttachmentRequest) -> Result<(netplumb::Netns, &str), CniError> {
    let path = req
        .netns
        .as_deref()
        .ok_or_else(|| CniError::invalid_env("CNI_NETNS is required for ADD"))?;
    let netns = netplumb::Netns::from_path(path)
        .map_err(|e| CniError::invalid_env(format!("CNI_NETNS={path}: {e}")))?;
    Ok((netns, path))
}

/// One call at a time per attachment: a DEL sent while its ADD still runs
/// (a runtime that timed out) waits for it, then finds what it made.
#[derive(Default)]
pub struct AttachmentLocks {
    slots: Mutex<HashMap<(String, String), AttachmentLock>>,
}

impl AttachmentLocks {
    /// Waits for the attachment's turn; it lasts while the guard lives.
    pub async fn lock(&self, container_id: &str, ifname: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let slot = {
            // A panic while holding the map's lock leaves a usable map.
            let mut map = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Entries nobody holds or waits for are dropped.
            map.retain(|_, m| Arc::strong_count(m) > 1);
            map.entry((container_id.to_string(), ifname.to_string())).or_default().clone()
        };
        slot.lock_owned().await
    }
}

/// The OVS interface `external_ids` keys that name an attachment's
/// container id and ifname (each handler writes its own at plug time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OvsKeys {
    /// The container id's key.
    pub container_id: &'static str,
    /// The ifname's key.
    pub ifname: &'static str,
}

impl OvsKeys {
    /// The attachment an interface's `external_ids` name, if they name one.
    pub fn attachment_of<'a>(&self, iface: &'a InterfaceRecord) -> Option<(&'a str, &'a str)> {
        let ids = &iface.external_ids;
        Some((ids.get(self.container_id)?.as_str(), ids.get(self.ifname)?.as_str()))
    }
}

/// The Neutron port ids (`iface-id`) plugged on this host for the
/// attachment, through OVSDB alone. Empty in a VM (no OVS there).
pub async fn ports_in_ovsdb(
    binder: &Binder,
    keys: OvsKeys,
    container_id: &str,
    ifname: &str,
) -> Result<Vec<String>, netplumb::Error> {
    if !binder.binds_host() {
        return Ok(Vec::new());
    }
    let found = binder.switch().find_interfaces(keys.container_id, Some(container_id)).await?;
    Ok(found
        .iter()
        .filter(|i| keys.attachment_of(i).is_some_and(|(_, name)| name == ifname))
        .filter_map(|i| i.external_ids.get(IFACE_ID_KEY).cloned())
        .collect())
}

/// GC's host half: unplugs (OVS port + veth) every interface of `found`
/// whose attachment is not in `valid`; interfaces that name no attachment
/// are left alone. The first failure is returned, after trying them all.
pub async fn unplug_invalid(
    binder: &Binder,
    found: &[InterfaceRecord],
    keys: OvsKeys,
    valid: &HashSet<(&str, &str)>,
) -> Option<CniError> {
    let mut first_error = None;
    for iface in found {
        let Some((container_id, ifname)) = keys.attachment_of(iface) else {
            continue;
        };
        let Some(port_id) = iface.external_ids.get(IFACE_ID_KEY) else {
            continue;
        };
        if valid.contains(&(container_id, ifname)) {
            continue;
        }
        match binder.unplug(port_id).await {
            Ok(()) => info!(port_id, container_id, ifname, "GC: removed stale host side"),
            Err(err) => {
                warn!(port_id, container_id, %err, "GC: could not unplug");
                first_error.get_or_insert(crate::handler::errors::bind(&err));
            }
        }
    }
    first_error
}
