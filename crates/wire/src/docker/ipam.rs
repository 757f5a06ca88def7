//! `IpamDriver.*` requests and responses.
//!
//! Field names are Go's; see libnetwork's `ipams/remote/api` package.
//! Note that a 200 reply of the IPAM API carries its error in `Error`, not
//! `Err`; this crate never uses it and answers errors with a non-200 status
//! and `{"Err": ...}`, which Docker's plugin client reads for both APIs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::de::{is_empty, is_none, non_empty_string, null_as_default, nullable, opt_text, text};
use super::values::MacAddress;

/// `RequestAddressType` option value marking the network's gateway request.
pub const REQUEST_ADDRESS_TYPE_GATEWAY: &str = "com.docker.network.gateway";

/// Reply to `IpamDriver.GetCapabilities`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamCapabilities {
    /// Ask Docker to choose the MAC before `RequestAddress` and pass it in
    /// the options (and then in `CreateEndpoint`).
    #[serde(rename = "RequiresMACAddress", default)]
    pub requires_mac_address: bool,
    /// Ask Docker to replay pool and address requests after a restart.
    #[serde(rename = "RequiresRequestReplay", default)]
    pub requires_request_replay: bool,
}

/// Reply to `IpamDriver.GetDefaultAddressSpaces`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSpaces {
    /// Address space for local-scope networks.
    #[serde(rename = "LocalDefaultAddressSpace")]
    pub local_default_address_space: String,
    /// Address space for global-scope networks.
    #[serde(rename = "GlobalDefaultAddressSpace")]
    pub global_default_address_space: String,
}

/// Request body of `IpamDriver.RequestPool`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolRequest {
    /// Address space, one of those from `GetDefaultAddressSpaces`.
    #[serde(rename = "AddressSpace", default, deserialize_with = "null_as_default")]
    pub address_space: String,
    /// The pool the user asked for (`--subnet`); `None` lets the driver pick.
    #[serde(rename = "Pool", default, with = "opt_text")]
    pub pool: Option<IpNet>,
    /// Range for container addresses within the pool (`--ip-range`).
    #[serde(rename = "SubPool", default, with = "opt_text")]
    pub sub_pool: Option<IpNet>,
    /// `--ipam-opt key=value` options.
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    /// An IPv6 pool is wanted.
    #[serde(rename = "V6", default)]
    pub v6: bool,
}

/// Reply to `IpamDriver.RequestPool`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolResponse {
    /// Opaque ID Docker passes back in later calls.
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// The pool, e.g. `10.98.1.0/24`.
    #[serde(rename = "Pool", with = "text")]
    pub pool: IpNet,
    /// Free-form metadata Docker keeps with the pool.
    #[serde(rename = "Data", default, with = "nullable", skip_serializing_if = "is_empty")]
    pub data: BTreeMap<String, String>,
}

/// Request body of `IpamDriver.ReleasePool`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePoolRequest {
    /// A `PoolID` from `RequestPool`.
    #[serde(rename = "PoolID", deserialize_with = "non_empty_string")]
    pub pool_id: String,
}

/// The `Options` map of `RequestAddress` (a Go `map[string]string`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressOptions {
    /// `RequestAddressType`; [`REQUEST_ADDRESS_TYPE_GATEWAY`] for a gateway.
    #[serde(rename = "RequestAddressType", default, skip_serializing_if = "is_none")]
    pub request_address_type: Option<String>,
    /// `com.docker.network.endpoint.macaddress`: the container's MAC, sent
    /// as text here when the driver requires it.
    #[serde(
        rename = "com.docker.network.endpoint.macaddress",
        default,
        with = "opt_text",
        skip_serializing_if = "is_none"
    )]
    pub mac_address: Option<MacAddress>,
    /// Every other key, untouched.
    #[serde(flatten)]
    pub other: BTreeMap<String, String>,
}

impl AddressOptions {
    /// True when Docker asks for the network's gateway address.
    pub fn is_gateway_request(&self) -> bool {
        self.request_address_type.as_deref() == Some(REQUEST_ADDRESS_TYPE_GATEWAY)
    }

    /// The container's MAC address, when Docker sent it.
    pub fn mac_address(&self) -> Option<&MacAddress> {
        self.mac_address.as_ref()
    }
}

/// Request body of `IpamDriver.RequestAddress`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressRequest {
    /// A `PoolID` from `RequestPool`.
    #[serde(rename = "PoolID", deserialize_with = "non_empty_string")]
    pub pool_id: String,
    /// The address asked for (`--ip`, `--gateway`); `None` for any.
    #[serde(rename = "Address", default, with = "opt_text")]
    pub address: Option<IpAddr>,
    /// Options; see [`AddressOptions`].
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: AddressOptions,
}

impl RequestAddressRequest {
    /// True when Docker asks for the network's gateway address.
    pub fn is_gateway_request(&self) -> bool {
        self.options.is_gateway_request()
    }
}

/// Reply to `IpamDriver.RequestAddress`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressResponse {
    /// The address with the pool's prefix length, e.g. `10.98.1.2/24`.
    #[serde(rename = "Address", with = "text")]
    pub address: IpNet,
    /// Free-form metadata.
    #[serde(rename = "Data", default, with = "nullable", skip_serializing_if = "is_empty")]
    pub data: BTreeMap<String, String>,
}

/// Request body of `IpamDriver.ReleaseAddress`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseAddressRequest {
    /// A `PoolID` from `RequestPool`.
    #[serde(rename = "PoolID", deserialize_with = "non_empty_string")]
    pub pool_id: String,
    /// The address to release, without prefix length.
    #[serde(rename = "Address", default, with = "opt_text")]
    pub address: Option<IpAddr>,
}
