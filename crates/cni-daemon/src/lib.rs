//! Kuryr's CNI node daemon, the side of the plugin protocol that
//! `kuryr-cni` talks to (docs/cni.md):
//!
//! - [`server`]: the [`CniHandler`] trait and the unix-socket server that
//!   validates each request, dispatches it and answers in the CNI shapes of
//!   the requested `cniVersion`.
//! - [`handler`]: the Neutron-backed handler, [`NeutronCni`]: one Neutron
//!   port per attachment, plugged into the container's netns; its CNI
//!   result, CHECK of the netns and error mapping are public, for
//!   Kubernetes mode's handler (`kuryr_k8s::daemon`).
//! - [`attachments`]: what both handlers share about attachments (one
//!   call at a time each, their host sides in OVSDB).
//!
//! `kuryr daemon` (crates/kuryr/src/daemon.rs) builds the clients from the
//! configuration and serves [`NeutronCni`]'s [`router`] on a [`Listener`].

#![warn(missing_docs)]

pub mod attachments;
pub mod handler;
pub mod server;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

/// The protocol and CNI types, from `kuryr-wire`.
pub use kuryr_wire::cni::{self as spec, proto};

pub use handler::{NeutronCni, Settings};
pub use proto::{AttachmentRequest, Call, GcRequest, Request, Response, StatusRequest};
pub use server::{router, App, CniHandler, Listener, ServeError};
pub use spec::{AddResult, CniCommand, CniError, CniVersion, ErrorCode, NetConf};
