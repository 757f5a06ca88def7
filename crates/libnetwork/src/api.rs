//! The driver interface the HTTP server calls: one method per Docker call.
//!
//! `Plugin.Activate` is answered by the server itself. Everything else goes
//! to a [`Driver`], which returns the typed reply or a [`DriverError`]; the
//! server turns the error into `{"Err": message}` with a matching non-200
//! status (see [`ErrorKind::http_status`]).

use std::future::Future;

use crate::wire::{
    AddressSpaces, AllocateNetworkRequest, AllocateNetworkResponse, CreateEndpointRequest,
    CreateEndpointResponse, CreateNetworkRequest, DeleteEndpointRequest, DeleteNetworkRequest,
    DiscoveryNotification, EndpointOperInfoRequest, EndpointOperInfoResponse, FreeNetworkRequest,
    IpamCapabilities, JoinRequest, JoinResponse, LeaveRequest, NetworkCapabilities,
    ProgramExternalConnectivityRequest, ReleaseAddressRequest, ReleasePoolRequest,
    RequestAddressRequest, RequestAddressResponse, RequestPoolRequest, RequestPoolResponse,
    RevokeExternalConnectivityRequest,
};

/// What went wrong, which decides the HTTP status of the error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is invalid (400).
    BadRequest,
    /// A network, endpoint, pool or address is unknown (404).
    ///
    /// Docker treats a 404 from `ProgramExternalConnectivity` and
    /// `RevokeExternalConnectivity` as "not implemented" and ignores it.
    NotFound,
    /// The request conflicts with existing state (409).
    Conflict,
    /// A dependency (Neutron, Keystone, OVS) is unreachable (503).
    Unavailable,
    /// A bug or an unexpected local failure (500).
    Internal,
    /// Neutron (or Keystone) answered with this error status, passed on.
    /// A status outside 400-599 becomes 502.
    Upstream(u16),
}

impl ErrorKind {
    /// The HTTP status of the error reply. Never 2xx.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::Unavailable => 503,
            Self::Internal => 500,
            Self::Upstream(status @ 400..=599) => status,
            Self::Upstream(_) => 502,
        }
    }
}

/// A failed call: the kind decides the status, the message is what the
/// Docker user sees (`Error response from daemon: <Call>: <message>`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DriverError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Message for the user.
    pub message: String,
}

impl DriverError {
    /// An error of any kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// 400: the request is invalid.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// 404: something named in the request does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// 409: conflicts with existing state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// 503: a dependency is unreachable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// 500: unexpected failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Neutron's (or Keystone's) own error status, passed on.
    pub fn upstream(status: u16, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Upstream(status), message)
    }

    /// The HTTP status of the error reply.
    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }
}

/// Result of a driver call.
pub type DriverResult<T> = Result<T, DriverError>;

/// What a driver method returns: a `Send` future of its result (write the
/// method as an `async fn`).
pub trait Answer<T>: Future<Output = DriverResult<T>> + Send {}

impl<T, F: Future<Output = DriverResult<T>> + Send> Answer<T> for F {}

/// A Docker network + IPAM driver: every group of Docker's calls. The
/// server calls one method per request; calls may run concurrently.
///
/// Implement each group's trait with `async fn`s (the returned futures must
/// be `Send`), each in the module that owns that part of the mapping;
/// `Driver` then comes for free. The defaults cover calls that only swarm
/// sends to global-scope drivers.
pub trait Driver:
    Networks + Endpoints + ExternalConnectivity + IpamPools + IpamAddresses + Send + Sync + 'static
{
}

impl<T> Driver for T where
    T: Networks
        + Endpoints
        + ExternalConnectivity
        + IpamPools
        + IpamAddresses
        + Send
        + Sync
        + 'static
{
}

/// Docker's `NetworkDriver` calls about networks (`crates/libnetwork/src/neutron/networks.rs` for Neutron).
pub trait Networks {
    /// `NetworkDriver.GetCapabilities`: scope of the driver.
    fn network_capabilities(&self) -> impl Answer<NetworkCapabilities>;

    /// `NetworkDriver.CreateNetwork`: after `RequestPool` and the gateway's
    /// `RequestAddress`. Not replayed by Docker after a plugin restart.
    fn create_network(&self, req: CreateNetworkRequest) -> impl Answer<()>;

    /// `NetworkDriver.DeleteNetwork`: after `ReleaseAddress(gateway)` and
    /// `ReleasePool`.
    fn delete_network(&self, req: DeleteNetworkRequest) -> impl Answer<()>;

    /// `NetworkDriver.AllocateNetwork`: only on swarm managers, for
    /// global-scope drivers. Default: no options.
    fn allocate_network(
        &self,
        req: AllocateNetworkRequest,
    ) -> impl Answer<AllocateNetworkResponse> {
        let _ = req;
        async { Ok(AllocateNetworkResponse::default()) }
    }

    /// `NetworkDriver.FreeNetwork`: counterpart of `allocate_network`.
    /// Default: nothing to free.
    fn free_network(&self, req: FreeNetworkRequest) -> impl Answer<()> {
        let _ = req;
        async { Ok(()) }
    }

    /// `NetworkDriver.DiscoverNew`: a swarm node appeared. Default: ignored.
    fn discover_new(&self, req: DiscoveryNotification) -> impl Answer<()> {
        let _ = req;
        async { Ok(()) }
    }

    /// `NetworkDriver.DiscoverDelete`: a swarm node left. Default: ignored.
    fn discover_delete(&self, req: DiscoveryNotification) -> impl Answer<()> {
        let _ = req;
        async { Ok(()) }
    }
}

/// Docker's `NetworkDriver` calls about endpoints and sandboxes.
pub trait Endpoints {
    /// `NetworkDriver.CreateEndpoint`: after the container's
    /// `RequestAddress`.
    fn create_endpoint(&self, req: CreateEndpointRequest) -> impl Answer<CreateEndpointResponse>;

    /// `NetworkDriver.EndpointOperInfo`: operational data of an endpoint.
    fn endpoint_oper_info(
        &self,
        req: EndpointOperInfoRequest,
    ) -> impl Answer<EndpointOperInfoResponse>;

    /// `NetworkDriver.DeleteEndpoint`: after `Leave`.
    fn delete_endpoint(&self, req: DeleteEndpointRequest) -> impl Answer<()>;

    /// `NetworkDriver.Join`: the container's sandbox joins the endpoint.
    fn join(&self, req: JoinRequest) -> impl Answer<JoinResponse>;

    /// `NetworkDriver.Leave`: the sandbox leaves the endpoint.
    fn leave(&self, req: LeaveRequest) -> impl Answer<()>;
}

/// Docker's `NetworkDriver` calls about exposed and published ports.
pub trait ExternalConnectivity {
    /// `NetworkDriver.ProgramExternalConnectivity`: after `Join`, with the
    /// exposed and published ports.
    fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> impl Answer<()>;

    /// `NetworkDriver.RevokeExternalConnectivity`: before `Leave`.
    fn revoke_external_connectivity(
        &self,
        req: RevokeExternalConnectivityRequest,
    ) -> impl Answer<()>;
}

/// Docker's `IpamDriver` calls about address spaces and pools.
pub trait IpamPools {
    /// `IpamDriver.GetCapabilities`.
    fn ipam_capabilities(&self) -> impl Answer<IpamCapabilities>;

    /// `IpamDriver.GetDefaultAddressSpaces`.
    fn default_address_spaces(&self) -> impl Answer<AddressSpaces>;

    /// `IpamDriver.RequestPool`: first call of `docker network create`.
    fn request_pool(&self, req: RequestPoolRequest) -> impl Answer<RequestPoolResponse>;

    /// `IpamDriver.ReleasePool`: before `DeleteNetwork`.
    fn release_pool(&self, req: ReleasePoolRequest) -> impl Answer<()>;
}

/// Docker's `IpamDriver` calls about addresses.
pub trait IpamAddresses {
    /// `IpamDriver.RequestAddress`: the gateway (see
    /// [`RequestAddressRequest::is_gateway_request`]) or a container address.
    fn request_address(&self, req: RequestAddressRequest) -> impl Answer<RequestAddressResponse>;

    /// `IpamDriver.ReleaseAddress`: after `DeleteEndpoint`, and for the
    /// gateway on `network rm`.
    fn release_address(&self, req: ReleaseAddressRequest) -> impl Answer<()>;
}
