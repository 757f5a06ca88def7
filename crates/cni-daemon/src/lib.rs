//! Kuryr's CNI node daemon, the side of the plugin protocol that
//! `kuryr-cni` talks to (docs/cni.md):
//!
//! - [`server`]: the [`CniHandler`] trait and the unix-socket server that
//!   validates each request, dispatches it and answers in the CNI shapes of
//!   the requested `cniVersion`.
//!
//! The Neutron-backed handler is the `kuryr daemon` subcommand's
//! (crates/kuryr/src/cni); it moves here with the redesign (issue 12).

#![warn(missing_docs)]

pub mod server;

/// The protocol and CNI types, from `kuryr-wire`.
pub use kuryr_wire::cni::{self as spec, proto};

pub use proto::{AttachmentRequest, Call, GcRequest, Request, Response, StatusRequest};
pub use server::{router, serve_unix, CniHandler, CniSocket, ServeError};
pub use spec::{AddResult, CniCommand, CniError, CniVersion, ErrorCode, NetConf};
