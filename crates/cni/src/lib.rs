//! CNI for Kuryr: the `kuryr-cni` plugin binary and the node daemon's
//! side of it.
//!
//! - [`spec`]: CNI 0.3.0-1.1.0 types (environment, configurations, results,
//!   errors) and version conversion.
//! - [`proto`]: the plugin <-> daemon protocol (HTTP/1.1 on a unix socket)
//!   and request validation.
//! - [`plugin`]: the plugin binary's logic; blocking, no async runtime.
//! - [`server`]: the daemon's [`CniHandler`] trait and unix-socket server.
//!
//! The Neutron-backed handler lives elsewhere.

#![warn(missing_docs)]

pub mod plugin;
pub mod proto;
pub mod server;
/// The CNI spec types, which live in `kuryr-wire` (fuzzed on their own).
pub use kuryr_wire::cni as spec;

#[cfg(test)]
mod testutil;

pub use proto::{AttachmentRequest, Call, GcRequest, Request, Response, StatusRequest};
pub use server::{router, serve_unix, CniHandler, CniSocket, ServeError};
pub use spec::{AddResult, CniCommand, CniError, CniVersion, ErrorCode, NetConf};
