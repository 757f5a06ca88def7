//! A small typed async client for OpenStack Keystone v3 and Neutron v2.0.
//!
//! It knows nothing of Kuryr: it turns [`AuthOptions`] (from code, `OS_*`
//! environment variables or `clouds.yaml`) into an authenticated [`Client`],
//! and [`neutron::Neutron`] exposes typed Neutron calls on top of it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), openstack::Error> {
//! use openstack::{AuthOptions, neutron::{Neutron, PortCreate, Query}};
//!
//! let opts = AuthOptions::from_env()?;
//! let neutron = Neutron::new(opts)?;
//! let port = neutron
//!     .create_port(&PortCreate { name: Some("p1".into()), ..PortCreate::new("net-id") })
//!     .await?;
//! let ports = neutron.list_ports(&Query::new().device_id("dev")).await?;
//! # let _ = (port, ports);
//! # Ok(()) }
//! ```
//!
//! Behaviour worth knowing:
//! - Keystone tokens are cached, renewed when less than a minute is left, and a
//!   401 triggers one re-authentication and one retry.
//! - Idempotent requests (GET, PUT, DELETE, HEAD) are retried with bounded
//!   exponential backoff on connection errors and 5xx; a POST is retried only
//!   when the connection could not be established at all.
//! - Secrets never appear in `Debug` output or logs.

#![warn(missing_docs)]

pub mod auth;
mod client;
mod error;
#[cfg(feature = "test-support")]
pub mod fake;
pub mod neutron;
mod secret;
pub mod time;

pub use auth::{AuthOptions, AuthType, ConfigError, Interface};
pub use client::{ApiReply, ApiRequest, CallStats, Client, ClientBuilder, RetryPolicy};
pub use error::{ApiError, Error, Result};
/// Re-exported from reqwest, as they appear in this crate's API.
pub use reqwest::{Method, StatusCode, Url};
pub use secret::Secret;
