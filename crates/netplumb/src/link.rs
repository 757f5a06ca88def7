//! Kernel links, addresses and routes over rtnetlink.
//!
//! A [`Netlink`] is bound to one network namespace for its whole life: the
//! host's ([`Netlink::host`]) or a container's ([`Netlink::in_netns`]). Every
//! operation (create, rename, set MTU, add address...) means "in that
//! namespace", so the same methods serve the Docker driver (host side) and the
//! CNI daemon (inside `CNI_NETNS`).

use futures::{TryStream, TryStreamExt};
use ipnet::IpNet;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::{RouteHeader, RouteType};
use nix::libc;
use rtnetlink::{Handle, LinkGetRequest, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};
use tracing::{debug, info, warn};

use crate::error::{netlink_errno, Error, Result};
use crate::netns::Netns;
use crate::spec::{
    self, IpvlanSpec, MacvlanSpec, RouteSpec, SubLinkKind, SubLinkSpec, VethSpec, VlanSpec,
};
use crate::validate::{validate_ifname, validate_mtu, MacAddr};
use crate::Deleted;

mod info;

use info::{route_oif, route_table};
pub use info::{AddressInfo, LinkInfo, OperState, RouteInfo, RouteOrigin, Scope, VethPair};

/// An rtnetlink connection bound to one network namespace.
///
/// Cheap to clone; the background connection task ends when the last clone
/// is dropped.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
    netns: Option<Netns>,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("netns", &self.netns).finish()
    }
}

fn spawn_connection() -> Result<Handle> {
    let (conn, handle, _unsolicited) = rtnetlink::new_connection()
        .map_err(|e| Error::Io { op: "open netlink socket".into(), source: e })?;
    tokio::spawn(conn);
    Ok(handle)
}

impl Netlink {
    /// A connection in the namespace of the calling process (the host).
    ///
    /// Must be called inside a tokio runtime. Relies on the rule that no
    /// runtime thread ever calls `setns`.
    pub async fn host() -> Result<Self> {
        Ok(Netlink { handle: spawn_connection()?, netns: None })
    }

    /// A connection inside `netns`: the socket is created on a short-lived
    /// thread that entered the namespace (see [`crate::netns`]); the handle
    /// can then be used from any task.
    pub async fn in_netns(netns: &Netns) -> Result<Self> {
        let runtime = tokio::runtime::Handle::current();
        let (conn, handle, _unsolicited) = netns
            .run_in(move || {
                // The socket registers with this runtime's reactor, but is
                // created (and thus bound to the netns) on the netns thread.
                let _guard = runtime.enter();
                rtnetlink::new_connection()
                    .map_err(|e| Error::Io { op: "open netlink socket in netns".into(), source: e })
            })
            .await?;
        tokio::spawn(conn);
        Ok(Netlink { handle, netns: Some(netns.clone()) })
    }

    /// The namespace this connection works in (`None` = the host's).
    pub fn netns(&self) -> Option<&Netns> {
        self.netns.as_ref()
    }

    /// Open a connection in the namespace a link was created in, or reuse
    /// this one when it is the same.
    async fn for_netns(&self, netns: Option<&Netns>) -> Result<Netlink> {
        match netns {
            None => Ok(self.clone()),
            Some(ns) => Netlink::in_netns(ns).await,
        }
    }

    // ----- lookups -------------------------------------------------------

    /// Look a link up by name; `Ok(None)` if absent.
    pub async fn get_link(&self, name: &str) -> Result<Option<LinkInfo>> {
        validate_ifname(name)?;
        let request = self.handle.link().get().match_name(name);
        first_link(request, format!("get link {name}")).await
    }

    /// Look a link up by index; `Ok(None)` if absent.
    pub async fn get_link_by_index(&self, index: u32) -> Result<Option<LinkInfo>> {
        let request = self.handle.link().get().match_index(index);
        first_link(request, format!("get link #{index}")).await
    }

    /// Look a link up by name; [`Error::LinkNotFound`] if absent.
    pub async fn link(&self, name: &str) -> Result<LinkInfo> {
        self.get_link(name).await?.ok_or_else(|| Error::LinkNotFound { name: name.into() })
    }

    /// Whether a link with that name exists.
    pub async fn link_exists(&self, name: &str) -> Result<bool> {
        Ok(self.get_link(name).await?.is_some())
    }

    /// All links of the namespace.
    pub async fn links(&self) -> Result<Vec<LinkInfo>> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("dump links", e))?;
        Ok(msgs.iter().map(LinkInfo::from_message).collect())
    }

    async fn index_of(&self, name: &str) -> Result<u32> {
        Ok(self.link(name).await?.index)
    }

    // ----- create / delete -----------------------------------------------

    /// Create a veth pair (see [`VethSpec`]); the host end is brought up.
    ///
    /// Both ends are created atomically by one RTM_NEWLINK. Afterwards both
    /// ends are read back; if the peer's MTU did not take (kernels that ignore
    /// the peer's IFLA_MTU) it is set explicitly. Any failure after creation
    /// deletes the pair again, so callers never see a half-made pair.
    /// A taken name gives [`Error::LinkExists`] and leaves the existing link
    /// alone.
    pub async fn create_veth(&self, spec: &VethSpec) -> Result<VethPair> {
        spec.validate()?;
        let msg = spec::veth_message(spec);
        if let Err(e) = self.handle.link().add(msg).execute().await {
            return Err(self.veth_create_error(spec, e).await);
        }
        match self.finish_veth(spec).await {
            Ok(pair) => {
                info!(host = %spec.host_name, peer = %spec.peer_name, mtu = ?spec.mtu, "created veth pair");
                Ok(pair)
            }
            Err(e) => {
                warn!(host = %spec.host_name, error = %e, "veth pair setup failed, removing it");
                if let Err(cleanup) = self.delete_link(&spec.host_name).await {
                    warn!(host = %spec.host_name, error = %cleanup, "could not remove half-made veth pair");
                }
                Err(e)
            }
        }
    }

    async fn finish_veth(&self, spec: &VethSpec) -> Result<VethPair> {
        let host = self.link(&spec.host_name).await?;
        let peer_nl = self.for_netns(spec.peer_netns.as_ref()).await?;
        let mut peer = peer_nl.link(&spec.peer_name).await?;
        let mut reread = false;
        if let Some(mtu) = spec.mtu {
            if peer.mtu != mtu {
                debug!(peer = %spec.peer_name, "peer MTU not applied at creation, setting it");
                peer_nl.set_mtu(&spec.peer_name, mtu).await?;
                reread = true;
            }
        }
        if spec.peer_up {
            peer_nl.set_up(&spec.peer_name).await?;
            reread = true;
        }
        if reread {
            peer = peer_nl.link(&spec.peer_name).await?;
        }
        Ok(VethPair { host, peer })
    }

    async fn veth_create_error(&self, spec: &VethSpec, e: rtnetlink::Error) -> Error {
        if netlink_errno(&e) != Some(libc::EEXIST) {
            return create_error("veth", &spec.host_name, e);
        }
        // Tell which end is taken; the peer may live in another netns.
        let name = match self.link_exists(&spec.host_name).await {
            Ok(true) => spec.host_name.clone(),
            _ => spec.peer_name.clone(),
        };
        Error::LinkExists { name }
    }

    /// Create a macvlan sub-interface on a parent (in this namespace).
    pub async fn create_macvlan(&self, spec: &MacvlanSpec) -> Result<LinkInfo> {
        self.create_sub_link(spec).await
    }

    /// Create an 802.1Q VLAN subinterface. On kernels without 8021q this
    /// returns [`Error::Unsupported`] with feature `"vlan (8021q)"`.
    pub async fn create_vlan(&self, spec: &VlanSpec) -> Result<LinkInfo> {
        self.create_sub_link(spec).await
    }

    /// Create an ipvlan sub-interface. On kernels without ipvlan this returns
    /// [`Error::Unsupported`] with feature `"ipvlan"`.
    pub async fn create_ipvlan(&self, spec: &IpvlanSpec) -> Result<LinkInfo> {
        self.create_sub_link(spec).await
    }

    /// Checks the spec, adds the link on its parent and reads it back from
    /// the namespace the kernel created it in.
    async fn create_sub_link<K: SubLinkKind>(&self, spec: &SubLinkSpec<K>) -> Result<LinkInfo> {
        K::check(spec)?;
        let parent = self.index_of(&spec.parent).await?;
        self.handle
            .link()
            .add(K::message(spec, parent))
            .execute()
            .await
            .map_err(|e| create_error(K::FEATURE, &spec.name, e))?;
        info!(?spec, "created {}", K::FEATURE);
        self.read_back_created(&spec.name, spec.netns.as_ref()).await
    }

    async fn read_back_created(&self, name: &str, netns: Option<&Netns>) -> Result<LinkInfo> {
        let nl = self.for_netns(netns).await?;
        nl.link(name).await
    }

    /// Delete a link by name. Missing is fine: [`Deleted::Absent`].
    /// Deleting either end of a veth pair removes both.
    pub async fn delete_link(&self, name: &str) -> Result<Deleted> {
        let Some(link) = self.get_link(name).await? else {
            return Ok(Deleted::Absent);
        };
        match self.handle.link().del(link.index).execute().await {
            Ok(()) => {
                info!(name, "deleted link");
                Ok(Deleted::Removed)
            }
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(Deleted::Absent),
            Err(e) => Err(Error::netlink(format!("delete link {name}"), e)),
        }
    }

    // ----- bridge --------------------------------------------------------

    /// Make sure a Linux bridge `name` exists and is up; create it if
    /// missing. [`Error::WrongLinkKind`] if the name is taken by another kind.
    pub async fn ensure_bridge(&self, name: &str) -> Result<LinkInfo> {
        validate_ifname(name)?;
        if self.get_link(name).await?.is_none() {
            match self.handle.link().add(spec::bridge_message(name)).execute().await {
                Ok(()) => info!(name, "created bridge"),
                // Lost a race with another creator: fine, check it below.
                Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {}
                Err(e) => return Err(create_error("bridge", name, e)),
            }
        }
        let link = self.link(name).await?;
        if link.kind.as_deref() != Some("bridge") {
            return Err(Error::WrongLinkKind {
                name: name.into(),
                expected: "bridge",
                actual: link.kind.unwrap_or_else(|| "unknown".into()),
            });
        }
        if !link.admin_up {
            self.set_up(name).await?;
            return self.link(name).await;
        }
        Ok(link)
    }

    /// Enslave `link` to `master` (`ip link set LINK master MASTER`).
    pub async fn set_master(&self, link: &str, master: &str) -> Result<()> {
        let master_idx = self.index_of(master).await?;
        let op = format!("set master of {link} to {master}");
        self.change(link, |l| l.controller(master_idx), op).await
    }

    /// Detach `link` from its master (`ip link set LINK nomaster`).
    pub async fn set_nomaster(&self, link: &str) -> Result<()> {
        let op = format!("remove {link} from its master");
        self.change(link, |l| l.nocontroller(), op).await
    }

    // ----- link attributes -----------------------------------------------

    /// `ip link set NAME ...`: applies `set` to a message for `name`'s
    /// link; `op` says what for the log and the error.
    async fn change(
        &self,
        name: &str,
        set: impl FnOnce(LinkMessageBuilder<LinkUnspec>) -> LinkMessageBuilder<LinkUnspec>,
        op: String,
    ) -> Result<()> {
        let idx = self.index_of(name).await?;
        let msg = set(LinkUnspec::new_with_index(idx)).build();
        debug!(op = %op, "netlink change");
        self.handle.link().change(msg).execute().await.map_err(|e| Error::netlink(op, e))
    }

    /// Move a link into another namespace. Its addresses and routes are lost
    /// (the kernel flushes them), so configure it after the move.
    pub async fn move_to_netns(&self, name: &str, netns: &Netns) -> Result<()> {
        let idx = self.index_of(name).await?;
        let msg = spec::setns_message(idx, netns.raw_fd());
        match self.handle.link().change(msg).execute().await {
            Ok(()) => {
                info!(name, netns = %netns.path().display(), "moved link to netns");
                Ok(())
            }
            Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {
                Err(Error::LinkExists { name: name.into() })
            }
            Err(e) => Err(Error::netlink(format!("move {name} to {}", netns.path().display()), e)),
        }
    }

    /// Rename a link. Kernels before 6.2 refuse to rename an up link (EBUSY),
    /// so portable callers set it down first (Docker renames while down).
    pub async fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        validate_ifname(new_name)?;
        let idx = self.index_of(name).await?;
        let msg = LinkUnspec::new_with_index(idx).name(new_name).build();
        match self.handle.link().change(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {
                Err(Error::LinkExists { name: new_name.into() })
            }
            Err(e) => Err(Error::netlink(
                format!("rename {name} to {new_name} (older kernels need the link down)"),
                e,
            )),
        }
    }

    /// Set a link's MAC address.
    pub async fn set_mac(&self, name: &str, mac: MacAddr) -> Result<()> {
        mac.validate_unicast()?;
        let op = format!("set mac of {name} to {mac}");
        self.change(name, |l| l.address(mac.octets().to_vec()), op).await
    }

    /// Set a link's MTU.
    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        validate_mtu(mtu)?;
        let op = format!("set mtu of {name} to {mtu}");
        self.change(name, |l| l.mtu(mtu), op).await
    }

    /// Bring a link up.
    pub async fn set_up(&self, name: &str) -> Result<()> {
        self.change(name, |l| l.up(), format!("set {name} up")).await
    }

    /// Bring a link down.
    pub async fn set_down(&self, name: &str) -> Result<()> {
        self.change(name, |l| l.down(), format!("set {name} down")).await
    }

    // ----- addresses and routes ------------------------------------------

    /// Add an address (v4 or v6, with prefix) to a link. IPv6 addresses are
    /// added with `nodad` (see `docs/netplumb.md`: usable at once, no
    /// ~1 s tentative period). An existing identical address gives
    /// [`Error::AddressExists`].
    pub async fn add_address(&self, link: &str, addr: IpNet) -> Result<()> {
        let idx = self.index_of(link).await?;
        let mut req = self.handle.address().add(idx, addr.addr(), addr.prefix_len());
        *req.message_mut() = spec::address_message(idx, addr);
        match req.execute().await {
            Ok(()) => {
                debug!(link, %addr, "added address");
                Ok(())
            }
            Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {
                Err(Error::AddressExists { link: link.into(), addr: addr.to_string() })
            }
            Err(e) => Err(Error::netlink(format!("add address {addr} to {link}"), e)),
        }
    }

    /// Addresses of a link, both families (including IPv6 link-local).
    pub async fn addresses(&self, link: &str) -> Result<Vec<AddressInfo>> {
        let idx = self.index_of(link).await?;
        let request = self.handle.address().get().set_link_index_filter(idx);
        let msgs = dump(request.execute(), format!("list addresses of {link}")).await?;
        Ok(msgs.iter().filter_map(AddressInfo::from_message).collect())
    }

    /// Add a route out of `link` in the main table. Bring the link up and
    /// add its addresses first: the kernel only accepts a gateway it can
    /// reach (unless `onlink`). An identical route gives
    /// [`Error::RouteExists`].
    pub async fn add_route(&self, link: &str, route: &RouteSpec) -> Result<()> {
        route.validate()?;
        let idx = self.index_of(link).await?;
        match self.handle.route().add(spec::route_message(idx, route)).execute().await {
            Ok(()) => {
                debug!(link, %route, "added route");
                Ok(())
            }
            Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {
                Err(Error::RouteExists { route: format!("{route} dev {link}") })
            }
            Err(e) => Err(Error::netlink(format!("add route {route} dev {link}"), e)),
        }
    }

    /// Unicast routes of the main table that go out of `link`, both
    /// families, including the kernel's connected routes.
    pub async fn routes(&self, link: &str) -> Result<Vec<RouteInfo>> {
        let idx = self.index_of(link).await?;
        let mut out = Vec::new();
        let queries = [
            RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
            RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
        ];
        for query in queries {
            let request = self.handle.route().get(query);
            let msgs = dump(request.execute(), format!("list routes of {link}")).await?;
            out.extend(
                msgs.iter()
                    .filter(|m| route_oif(m) == Some(idx))
                    .filter(|m| route_table(m) == u32::from(RouteHeader::RT_TABLE_MAIN))
                    .filter(|m| m.header.kind == RouteType::Unicast)
                    .filter_map(RouteInfo::from_message),
            );
        }
        Ok(out)
    }
}

/// Map a link-creation failure: EEXIST → [`Error::LinkExists`];
/// EOPNOTSUPP ("Unknown device type": the kernel has no driver for the kind)
/// → [`Error::Unsupported`].
/// Every message a dump request answers; `op` names the dump in the error.
async fn dump<M>(
    messages: impl TryStream<Ok = M, Error = rtnetlink::Error>,
    op: String,
) -> Result<Vec<M>> {
    messages.try_collect().await.map_err(|e| Error::netlink(op, e))
}

/// The link a lookup by name or index finds; `Ok(None)` when the kernel has
/// none (`ENODEV`). `op` names the lookup in the error.
async fn first_link(request: LinkGetRequest, op: String) -> Result<Option<LinkInfo>> {
    match request.execute().try_next().await {
        Ok(Some(msg)) => Ok(Some(LinkInfo::from_message(&msg))),
        Ok(None) => Ok(None),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(Error::netlink(op, e)),
    }
}

fn create_error(feature: &'static str, name: &str, e: rtnetlink::Error) -> Error {
    match netlink_errno(&e) {
        Some(libc::EEXIST) => Error::LinkExists { name: name.into() },
        Some(libc::EOPNOTSUPP) => Error::Unsupported {
            feature,
            detail: format!("creating {name}: Unknown device type (EOPNOTSUPP)"),
        },
        _ => Error::netlink(format!("create {feature} {name}"), e),
    }
}

#[cfg(test)]
mod tests;
