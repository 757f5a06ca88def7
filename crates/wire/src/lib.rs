//! Kuryr's wire parsers and nothing else, so they can be fuzzed on their
//! own (`fuzz/`):
//!
//! - [`docker`]: the Docker libnetwork remote driver and IPAM driver
//!   request and reply types (re-exported as `kuryr_libnetwork::wire`);
//! - [`cni`]: CNI 0.3.0-1.1.0 types: environment, configurations, results,
//!   errors (re-exported as `kuryr_cni::spec`).

#![warn(missing_docs)]

pub mod cni;
pub mod docker;

#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod testutil;
