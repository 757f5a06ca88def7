//! The `kuryr-cni` plugin: what a CNI runtime executes. It reads the CNI
//! environment and stdin, forwards the call to the node daemon on a unix
//! socket, and prints the daemon's result or CNI error. Nothing else, so
//! the binary stays small (wire types and serde; docs/cni.md).
//!
//! - [`spec`]: CNI 0.3.0-1.1.0 types (environment, configurations, results,
//!   errors) and version conversion, from `kuryr-wire`.
//! - [`proto`]: the plugin <-> daemon protocol (HTTP/1.1 on a unix socket)
//!   and request validation, from `kuryr-wire`.
//! - [`plugin`]: the plugin binary's logic; blocking, no async runtime.
//!
//! The daemon's side (the socket server and the Neutron-backed handler)
//! is the `kuryr-cni-daemon` crate.

#![warn(missing_docs)]

pub mod plugin;
/// The CNI spec types, which live in `kuryr-wire` (fuzzed on their own).
pub use kuryr_wire::cni as spec;
/// The plugin <-> daemon protocol, which lives in `kuryr-wire`.
pub use kuryr_wire::cni::proto;

pub use proto::{AttachmentRequest, Call, GcRequest, Request, Response, StatusRequest};
pub use spec::{AddResult, CniCommand, CniError, CniVersion, ErrorCode, NetConf};
