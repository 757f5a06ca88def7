//! Docker libnetwork remote driver protocol for Kuryr: the network driver
//! and IPAM driver calls Docker sends to a plugin, served over HTTP.
//!
//! - [`wire`]: serde types of every call, matching Docker's wire format.
//! - [`api`]: the [`Driver`] trait the server calls, and [`DriverError`].
//! - [`server`]: the axum router and unix-socket / TCP serving.
//!
//! The Neutron-backed [`Driver`] lives elsewhere in this crate.

#![warn(missing_docs)]

pub mod api;
pub mod neutron;
pub mod server;
/// The Docker wire types, which live in `kuryr-wire` (fuzzed on their own).
pub use kuryr_wire::docker as wire;

#[cfg(test)]
mod testutil;

pub use api::{Driver, DriverError, DriverResult, ErrorKind};
pub use neutron::{DriverSettings, KuryrDriver};
pub use server::{router, App, Listener, ServeError};
