//! Test helpers: the recorded Docker traffic and a recording fake driver.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::api::{
    DriverError, DriverResult, Endpoints, ExternalConnectivity, IpamAddresses, IpamPools, Networks,
};
use crate::wire::*;

pub(crate) use kuryr_wire::testutil::{exchanges, strip_empty, FIXTURE_EXCHANGES};

#[derive(Default)]
pub(crate) struct FakeDriver {
    calls: Mutex<Vec<(PluginCall, Value)>>,
    replies: Mutex<HashMap<PluginCall, Result<Value, DriverError>>>,
}

impl FakeDriver {
    /// Answer `call` with `reply` (the JSON of its response type).
    pub(crate) fn reply_with(&self, call: PluginCall, reply: Value) {
        self.replies.lock().unwrap().insert(call, Ok(reply));
    }

    /// Fail `call` with `err`.
    pub(crate) fn fail_with(&self, call: PluginCall, err: DriverError) {
        self.replies.lock().unwrap().insert(call, Err(err));
    }

    /// Calls so far, with the JSON of their typed request.
    pub(crate) fn calls(&self) -> Vec<(PluginCall, Value)> {
        self.calls.lock().unwrap().clone()
    }

    fn record<T: Serialize>(&self, call: PluginCall, req: &T) {
        let json = serde_json::to_value(req).expect("serialize request");
        self.calls.lock().unwrap().push((call, json));
    }

    fn canned<T: DeserializeOwned>(&self, call: PluginCall) -> DriverResult<T> {
        match self.replies.lock().unwrap().get(&call) {
            Some(Ok(v)) => Ok(serde_json::from_value(v.clone())
                .unwrap_or_else(|e| panic!("canned reply for {call}: {e}"))),
            Some(Err(e)) => Err(e.clone()),
            None => panic!("no canned reply for {call}"),
        }
    }

    fn canned_unit(&self, call: PluginCall) -> DriverResult<()> {
        match self.replies.lock().unwrap().get(&call) {
            Some(Err(e)) => Err(e.clone()),
            _ => Ok(()),
        }
    }
}

impl Networks for FakeDriver {
    async fn network_capabilities(&self) -> DriverResult<NetworkCapabilities> {
        self.record(PluginCall::NetworkGetCapabilities, &Value::Null);
        self.canned(PluginCall::NetworkGetCapabilities)
    }

    async fn create_network(&self, req: CreateNetworkRequest) -> DriverResult<()> {
        self.record(PluginCall::CreateNetwork, &req);
        self.canned_unit(PluginCall::CreateNetwork)
    }

    async fn delete_network(&self, req: DeleteNetworkRequest) -> DriverResult<()> {
        self.record(PluginCall::DeleteNetwork, &req);
        self.canned_unit(PluginCall::DeleteNetwork)
    }

    async fn allocate_network(
        &self,
        req: AllocateNetworkRequest,
    ) -> DriverResult<AllocateNetworkResponse> {
        self.record(PluginCall::AllocateNetwork, &req);
        self.canned(PluginCall::AllocateNetwork)
    }

    async fn free_network(&self, req: FreeNetworkRequest) -> DriverResult<()> {
        self.record(PluginCall::FreeNetwork, &req);
        self.canned_unit(PluginCall::FreeNetwork)
    }

    async fn discover_new(&self, req: DiscoveryNotification) -> DriverResult<()> {
        self.record(PluginCall::DiscoverNew, &req);
        self.canned_unit(PluginCall::DiscoverNew)
    }

    async fn discover_delete(&self, req: DiscoveryNotification) -> DriverResult<()> {
        self.record(PluginCall::DiscoverDelete, &req);
        self.canned_unit(PluginCall::DiscoverDelete)
    }
}

impl Endpoints for FakeDriver {
    async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> DriverResult<CreateEndpointResponse> {
        self.record(PluginCall::CreateEndpoint, &req);
        self.canned(PluginCall::CreateEndpoint)
    }

    async fn endpoint_oper_info(
        &self,
        req: EndpointOperInfoRequest,
    ) -> DriverResult<EndpointOperInfoResponse> {
        self.record(PluginCall::EndpointOperInfo, &req);
        self.canned(PluginCall::EndpointOperInfo)
    }

    async fn delete_endpoint(&self, req: DeleteEndpointRequest) -> DriverResult<()> {
        self.record(PluginCall::DeleteEndpoint, &req);
        self.canned_unit(PluginCall::DeleteEndpoint)
    }

    async fn join(&self, req: JoinRequest) -> DriverResult<JoinResponse> {
        self.record(PluginCall::Join, &req);
        self.canned(PluginCall::Join)
    }

    async fn leave(&self, req: LeaveRequest) -> DriverResult<()> {
        self.record(PluginCall::Leave, &req);
        self.canned_unit(PluginCall::Leave)
    }
}

impl ExternalConnectivity for FakeDriver {
    async fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> DriverResult<()> {
        self.record(PluginCall::ProgramExternalConnectivity, &req);
        self.canned_unit(PluginCall::ProgramExternalConnectivity)
    }

    async fn revoke_external_connectivity(
        &self,
        req: RevokeExternalConnectivityRequest,
    ) -> DriverResult<()> {
        self.record(PluginCall::RevokeExternalConnectivity, &req);
        self.canned_unit(PluginCall::RevokeExternalConnectivity)
    }
}

impl IpamPools for FakeDriver {
    async fn ipam_capabilities(&self) -> DriverResult<IpamCapabilities> {
        self.record(PluginCall::IpamGetCapabilities, &Value::Null);
        self.canned(PluginCall::IpamGetCapabilities)
    }

    async fn default_address_spaces(&self) -> DriverResult<AddressSpaces> {
        self.record(PluginCall::GetDefaultAddressSpaces, &Value::Null);
        self.canned(PluginCall::GetDefaultAddressSpaces)
    }

    async fn request_pool(&self, req: RequestPoolRequest) -> DriverResult<RequestPoolResponse> {
        self.record(PluginCall::RequestPool, &req);
        self.canned(PluginCall::RequestPool)
    }

    async fn release_pool(&self, req: ReleasePoolRequest) -> DriverResult<()> {
        self.record(PluginCall::ReleasePool, &req);
        self.canned_unit(PluginCall::ReleasePool)
    }
}

impl IpamAddresses for FakeDriver {
    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> DriverResult<RequestAddressResponse> {
        self.record(PluginCall::RequestAddress, &req);
        self.canned(PluginCall::RequestAddress)
    }

    async fn release_address(&self, req: ReleaseAddressRequest) -> DriverResult<()> {
        self.record(PluginCall::ReleaseAddress, &req);
        self.canned_unit(PluginCall::ReleaseAddress)
    }
}
