//! Serde types for Docker's remote network driver and IPAM driver protocol,
//! matched against real Docker 20.10 captures.
//!
//! Every call is an HTTP `POST /<Call>` with a JSON body (or none) and a JSON
//! reply. Field names are Go's exported names (`NetworkID`, `IPv4Data`).
//! Parsing is generous where Docker sends Go zero values (`""`, `null`,
//! missing option keys) and strict about types: an address that is not an
//! address is a malformed request.
//!
//! [`PluginCall`] is the table of paths, and [`Request::parse`] turns a body
//! into the typed request for its path.

mod de;
mod ipam;
mod network;
mod values;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use ipam::*;
pub use network::*;
pub use values::{MacAddress, MacAddressError, Protocol, RouteType, Scope};

/// Every call of the protocol, one per path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginCall {
    /// `Plugin.Activate`: handshake, answered by the server itself.
    Activate,
    /// `NetworkDriver.GetCapabilities`.
    NetworkGetCapabilities,
    /// `NetworkDriver.CreateNetwork`.
    CreateNetwork,
    /// `NetworkDriver.DeleteNetwork`.
    DeleteNetwork,
    /// `NetworkDriver.AllocateNetwork` (swarm managers, global scope only).
    AllocateNetwork,
    /// `NetworkDriver.FreeNetwork` (swarm managers, global scope only).
    FreeNetwork,
    /// `NetworkDriver.CreateEndpoint`.
    CreateEndpoint,
    /// `NetworkDriver.EndpointOperInfo`.
    EndpointOperInfo,
    /// `NetworkDriver.DeleteEndpoint`.
    DeleteEndpoint,
    /// `NetworkDriver.Join`.
    Join,
    /// `NetworkDriver.Leave`.
    Leave,
    /// `NetworkDriver.DiscoverNew`.
    DiscoverNew,
    /// `NetworkDriver.DiscoverDelete`.
    DiscoverDelete,
    /// `NetworkDriver.ProgramExternalConnectivity`.
    ProgramExternalConnectivity,
    /// `NetworkDriver.RevokeExternalConnectivity`.
    RevokeExternalConnectivity,
    /// `IpamDriver.GetCapabilities`.
    IpamGetCapabilities,
    /// `IpamDriver.GetDefaultAddressSpaces`.
    GetDefaultAddressSpaces,
    /// `IpamDriver.RequestPool`.
    RequestPool,
    /// `IpamDriver.ReleasePool`.
    ReleasePool,
    /// `IpamDriver.RequestAddress`.
    RequestAddress,
    /// `IpamDriver.ReleaseAddress`.
    ReleaseAddress,
}

impl PluginCall {
    /// All calls, in protocol order.
    pub const ALL: [PluginCall; 21] = [
        Self::Activate,
        Self::NetworkGetCapabilities,
        Self::CreateNetwork,
        Self::DeleteNetwork,
        Self::AllocateNetwork,
        Self::FreeNetwork,
        Self::CreateEndpoint,
        Self::EndpointOperInfo,
        Self::DeleteEndpoint,
        Self::Join,
        Self::Leave,
        Self::DiscoverNew,
        Self::DiscoverDelete,
        Self::ProgramExternalConnectivity,
        Self::RevokeExternalConnectivity,
        Self::IpamGetCapabilities,
        Self::GetDefaultAddressSpaces,
        Self::RequestPool,
        Self::ReleasePool,
        Self::RequestAddress,
        Self::ReleaseAddress,
    ];

    /// The HTTP path, e.g. `/NetworkDriver.CreateNetwork`.
    pub fn path(self) -> &'static str {
        match self {
            Self::Activate => "/Plugin.Activate",
            Self::NetworkGetCapabilities => "/NetworkDriver.GetCapabilities",
            Self::CreateNetwork => "/NetworkDriver.CreateNetwork",
            Self::DeleteNetwork => "/NetworkDriver.DeleteNetwork",
            Self::AllocateNetwork => "/NetworkDriver.AllocateNetwork",
            Self::FreeNetwork => "/NetworkDriver.FreeNetwork",
            Self::CreateEndpoint => "/NetworkDriver.CreateEndpoint",
            Self::EndpointOperInfo => "/NetworkDriver.EndpointOperInfo",
            Self::DeleteEndpoint => "/NetworkDriver.DeleteEndpoint",
            Self::Join => "/NetworkDriver.Join",
            Self::Leave => "/NetworkDriver.Leave",
            Self::DiscoverNew => "/NetworkDriver.DiscoverNew",
            Self::DiscoverDelete => "/NetworkDriver.DiscoverDelete",
            Self::ProgramExternalConnectivity => "/NetworkDriver.ProgramExternalConnectivity",
            Self::RevokeExternalConnectivity => "/NetworkDriver.RevokeExternalConnectivity",
            Self::IpamGetCapabilities => "/IpamDriver.GetCapabilities",
            Self::GetDefaultAddressSpaces => "/IpamDriver.GetDefaultAddressSpaces",
            Self::RequestPool => "/IpamDriver.RequestPool",
            Self::ReleasePool => "/IpamDriver.ReleasePool",
            Self::RequestAddress => "/IpamDriver.RequestAddress",
            Self::ReleaseAddress => "/IpamDriver.ReleaseAddress",
        }
    }

    /// The call served at `path`, if any (exact, case-sensitive match as
    /// Docker sends it).
    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|call| call.path() == path)
    }

    /// Whether the call carries a request body. Docker sends the others
    /// with an empty body.
    pub fn has_payload(self) -> bool {
        !matches!(
            self,
            Self::Activate
                | Self::NetworkGetCapabilities
                | Self::IpamGetCapabilities
                | Self::GetDefaultAddressSpaces
        )
    }
}

impl std::fmt::Display for PluginCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.path().trim_start_matches('/'))
    }
}

/// A parsed request: one variant per [`PluginCall`].
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)] // each variant is documented by its PluginCall
pub enum Request {
    Activate,
    NetworkGetCapabilities,
    CreateNetwork(CreateNetworkRequest),
    DeleteNetwork(DeleteNetworkRequest),
    AllocateNetwork(AllocateNetworkRequest),
    FreeNetwork(FreeNetworkRequest),
    CreateEndpoint(CreateEndpointRequest),
    EndpointOperInfo(EndpointOperInfoRequest),
    DeleteEndpoint(DeleteEndpointRequest),
    Join(JoinRequest),
    Leave(LeaveRequest),
    DiscoverNew(DiscoveryNotification),
    DiscoverDelete(DiscoveryNotification),
    ProgramExternalConnectivity(ProgramExternalConnectivityRequest),
    RevokeExternalConnectivity(RevokeExternalConnectivityRequest),
    IpamGetCapabilities,
    GetDefaultAddressSpaces,
    RequestPool(RequestPoolRequest),
    ReleasePool(ReleasePoolRequest),
    RequestAddress(RequestAddressRequest),
    ReleaseAddress(ReleaseAddressRequest),
}

/// Why a request body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The call needs a JSON object but the body was empty or `null`.
    #[error("empty body, expected a JSON object")]
    Missing,
    /// Malformed JSON, a wrong type or a missing field; the message names
    /// the field path and the position.
    #[error("{0}")]
    Invalid(String),
}

/// Accepts any JSON object (or nothing) for calls that carry no payload.
#[derive(Deserialize)]
struct NoPayload {}

impl Request {
    /// Parses `body` as the request of `call`.
    ///
    /// For calls without payload, an empty body, `null` or any object is
    /// accepted. For the others, an empty body or `null` is
    /// [`BodyError::Missing`]. Anything but a JSON object is refused; in
    /// particular an array, which serde would otherwise read as the
    /// struct's fields in order (`[]` as a `RequestPool` with every field
    /// unset).
    pub fn parse(call: PluginCall, body: &[u8]) -> Result<Self, BodyError> {
        let no_body = is_blank_or_null(body);
        if !no_body {
            require_object(body)?;
        }
        if !call.has_payload() {
            if !no_body {
                parse_json::<NoPayload>(body)?;
            }
        } else if no_body {
            return Err(BodyError::Missing);
        }
        Ok(match call {
            PluginCall::Activate => Self::Activate,
            PluginCall::NetworkGetCapabilities => Self::NetworkGetCapabilities,
            PluginCall::IpamGetCapabilities => Self::IpamGetCapabilities,
            PluginCall::GetDefaultAddressSpaces => Self::GetDefaultAddressSpaces,
            PluginCall::CreateNetwork => Self::CreateNetwork(parse_json(body)?),
            PluginCall::DeleteNetwork => Self::DeleteNetwork(parse_json(body)?),
            PluginCall::AllocateNetwork => Self::AllocateNetwork(parse_json(body)?),
            PluginCall::FreeNetwork => Self::FreeNetwork(parse_json(body)?),
            PluginCall::CreateEndpoint => Self::CreateEndpoint(parse_json(body)?),
            PluginCall::EndpointOperInfo => Self::EndpointOperInfo(parse_json(body)?),
            PluginCall::DeleteEndpoint => Self::DeleteEndpoint(parse_json(body)?),
            PluginCall::Join => Self::Join(parse_json(body)?),
            PluginCall::Leave => Self::Leave(parse_json(body)?),
            PluginCall::DiscoverNew => Self::DiscoverNew(parse_json(body)?),
            PluginCall::DiscoverDelete => Self::DiscoverDelete(parse_json(body)?),
            PluginCall::ProgramExternalConnectivity => {
                Self::ProgramExternalConnectivity(parse_json(body)?)
            }
            PluginCall::RevokeExternalConnectivity => {
                Self::RevokeExternalConnectivity(parse_json(body)?)
            }
            PluginCall::RequestPool => Self::RequestPool(parse_json(body)?),
            PluginCall::ReleasePool => Self::ReleasePool(parse_json(body)?),
            PluginCall::RequestAddress => Self::RequestAddress(parse_json(body)?),
            PluginCall::ReleaseAddress => Self::ReleaseAddress(parse_json(body)?),
        })
    }

    /// The call this request belongs to.
    pub fn call(&self) -> PluginCall {
        match self {
            Self::Activate => PluginCall::Activate,
            Self::NetworkGetCapabilities => PluginCall::NetworkGetCapabilities,
            Self::CreateNetwork(_) => PluginCall::CreateNetwork,
            Self::DeleteNetwork(_) => PluginCall::DeleteNetwork,
            Self::AllocateNetwork(_) => PluginCall::AllocateNetwork,
            Self::FreeNetwork(_) => PluginCall::FreeNetwork,
            Self::CreateEndpoint(_) => PluginCall::CreateEndpoint,
            Self::EndpointOperInfo(_) => PluginCall::EndpointOperInfo,
            Self::DeleteEndpoint(_) => PluginCall::DeleteEndpoint,
            Self::Join(_) => PluginCall::Join,
            Self::Leave(_) => PluginCall::Leave,
            Self::DiscoverNew(_) => PluginCall::DiscoverNew,
            Self::DiscoverDelete(_) => PluginCall::DiscoverDelete,
            Self::ProgramExternalConnectivity(_) => PluginCall::ProgramExternalConnectivity,
            Self::RevokeExternalConnectivity(_) => PluginCall::RevokeExternalConnectivity,
            Self::IpamGetCapabilities => PluginCall::IpamGetCapabilities,
            Self::GetDefaultAddressSpaces => PluginCall::GetDefaultAddressSpaces,
            Self::RequestPool(_) => PluginCall::RequestPool,
            Self::ReleasePool(_) => PluginCall::ReleasePool,
            Self::RequestAddress(_) => PluginCall::RequestAddress,
            Self::ReleaseAddress(_) => PluginCall::ReleaseAddress,
        }
    }
}

/// A request serializes as the body Docker sends for it: the payload's
/// object, or `null` for calls without one. Parsing that body again gives
/// back an equal request, which the tests and the fuzz target check.
impl Serialize for Request {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Activate
            | Self::NetworkGetCapabilities
            | Self::IpamGetCapabilities
            | Self::GetDefaultAddressSpaces => s.serialize_unit(),
            Self::CreateNetwork(r) => r.serialize(s),
            Self::DeleteNetwork(r) | Self::FreeNetwork(r) => r.serialize(s),
            Self::AllocateNetwork(r) => r.serialize(s),
            Self::CreateEndpoint(r) => r.serialize(s),
            Self::EndpointOperInfo(r)
            | Self::DeleteEndpoint(r)
            | Self::Leave(r)
            | Self::RevokeExternalConnectivity(r) => r.serialize(s),
            Self::Join(r) => r.serialize(s),
            Self::DiscoverNew(r) | Self::DiscoverDelete(r) => r.serialize(s),
            Self::ProgramExternalConnectivity(r) => r.serialize(s),
            Self::RequestPool(r) => r.serialize(s),
            Self::ReleasePool(r) => r.serialize(s),
            Self::RequestAddress(r) => r.serialize(s),
            Self::ReleaseAddress(r) => r.serialize(s),
        }
    }
}

/// Refuses a JSON array (serde reads other non-objects as type errors
/// with its own message).
fn require_object(body: &[u8]) -> Result<(), BodyError> {
    if body.trim_ascii_start().first() == Some(&b'[') {
        return Err(BodyError::Invalid("invalid type: array, expected a JSON object".into()));
    }
    Ok(())
}

fn is_blank_or_null(body: &[u8]) -> bool {
    let trimmed = body.trim_ascii();
    trimmed.is_empty() || trimmed == b"null"
}

/// Parses one JSON value of type `T` from `body`, reporting the path of the
/// offending field (`Options.com.docker.network.enable_ipv6: ...`) and the
/// line and column.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T =
        serde_path_to_error::deserialize(&mut de).map_err(|e| BodyError::Invalid(e.to_string()))?;
    de.end().map_err(|e| BodyError::Invalid(e.to_string()))?;
    Ok(value)
}

/// Reply to `Plugin.Activate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivateResponse {
    /// The plugin APIs implemented.
    #[serde(rename = "Implements")]
    pub implements: Vec<String>,
}

impl ActivateResponse {
    /// What Kuryr implements: `["NetworkDriver", "IpamDriver"]`.
    pub fn kuryr() -> Self {
        Self { implements: vec!["NetworkDriver".to_owned(), "IpamDriver".to_owned()] }
    }
}

/// The error reply of every call: `{"Err": "..."}`, sent with a non-200
/// status. Docker shows it as `Error response from daemon: <Call>: <Err>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The message shown to the user.
    #[serde(rename = "Err")]
    pub err: String,
}

/// The `{}` reply of calls that return nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyResponse {}
