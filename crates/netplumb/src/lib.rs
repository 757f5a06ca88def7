//! Host network plumbing for Kuryr.
//!
//! `netplumb` knows nothing of OpenStack. It offers:
//!
//! * [`Netlink`]: kernel links over rtnetlink, bound to one network
//!   namespace: veth pairs ([`VethSpec`]), macvlan, VLAN and ipvlan
//!   sub-interfaces, Linux bridges, MAC/MTU/up/down/rename, addresses and
//!   routes (read back too, for CNI `CHECK`).
//! * [`Netns`]: namespace handles from a path, plus [`netns::create_named`] /
//!   [`netns::delete_named`] (like `ip netns add/del`) for tests and tools.
//!   See [`netns`] for the threading rule (no `setns` on runtime threads).
//! * [`ovs`]: a native OVSDB (RFC 7047) JSON-RPC client for Open vSwitch,
//!   behind the [`ovs::Switch`] trait, including waiting for
//!   `external_ids:ovn-installed` with an OVSDB monitor.
//!
//! All input (interface names, MACs, MTUs, OVS values) is validated before
//! anything is sent, with typed [`Error`]s.

#![warn(missing_docs)]

pub mod error;
// A packet socket inside the container's netns: libc calls.
#[allow(unsafe_code)]
pub mod garp;
mod link;
// setns(2) on the calling thread.
#[allow(unsafe_code)]
pub mod netns;
pub mod ovs;
mod spec;
pub mod validate;

pub use error::{Error, Result};
pub use link::{
    AddressInfo, LinkInfo, Netlink, OperState, RouteInfo, RouteOrigin, Scope, VethPair,
};
pub use netns::Netns;
pub use spec::{
    IpvlanMode, IpvlanSpec, MacvlanMode, MacvlanSpec, RouteSpec, SubLinkSpec, VethSpec, VlanSpec,
};
pub use validate::{validate_ifname, MacAddr};

pub use ipnet::IpNet;

/// Outcome of an idempotent delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// The object existed and was removed.
    Removed,
    /// Nothing to do: it did not exist.
    Absent,
}
