//! Test helpers: the recorded Docker traffic and a recording fake driver.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
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

    /// The canned reply to `call`: unit calls without one succeed.
    fn canned<T: DeserializeOwned>(&self, call: PluginCall) -> DriverResult<T> {
        match self.replies.lock().unwrap().get(&call) {
            // A unit call's reply (`{}`) carries nothing.
            Some(Ok(v)) => Ok(serde_json::from_value(v.clone())
                .or_else(|e| serde_json::from_value(Value::Null).map_err(|_| e))
                .unwrap_or_else(|e| panic!("canned reply for {call}: {e}"))),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(serde_json::from_value::<T>(Value::Null)
                .unwrap_or_else(|_| panic!("no canned reply for {call}"))),
        }
    }
}

/// The fake's methods: record the request, answer the canned reply.
macro_rules! fake_calls {
    ($($name:ident($($req:ty)?) -> $out:ty = $call:ident;)*) => {
        $(async fn $name(&self $(, req: $req)?) -> DriverResult<$out> {
            #[allow(unused_variables)]
            let request = Value::Null;
            $(let request = serde_json::to_value::<&$req>(&req).expect("serialize request");)?
            self.calls.lock().unwrap().push((PluginCall::$call, request));
            self.canned(PluginCall::$call)
        })*
    };
}

impl Networks for FakeDriver {
    fake_calls! {
        network_capabilities() -> NetworkCapabilities = NetworkGetCapabilities;
        create_network(CreateNetworkRequest) -> () = CreateNetwork;
        delete_network(DeleteNetworkRequest) -> () = DeleteNetwork;
        allocate_network(AllocateNetworkRequest) -> AllocateNetworkResponse = AllocateNetwork;
        free_network(FreeNetworkRequest) -> () = FreeNetwork;
        discover_new(DiscoveryNotification) -> () = DiscoverNew;
        discover_delete(DiscoveryNotification) -> () = DiscoverDelete;
    }
}

impl Endpoints for FakeDriver {
    fake_calls! {
        create_endpoint(CreateEndpointRequest) -> CreateEndpointResponse = CreateEndpoint;
        endpoint_oper_info(EndpointOperInfoRequest) -> EndpointOperInfoResponse = EndpointOperInfo;
        delete_endpoint(DeleteEndpointRequest) -> () = DeleteEndpoint;
        join(JoinRequest) -> JoinResponse = Join;
        leave(LeaveRequest) -> () = Leave;
    }
}

impl ExternalConnectivity for FakeDriver {
    fake_calls! {
        program_external_connectivity(ProgramExternalConnectivityRequest) -> () = ProgramExternalConnectivity;
        revoke_external_connectivity(RevokeExternalConnectivityRequest) -> () = RevokeExternalConnectivity;
    }
}

impl IpamPools for FakeDriver {
    fake_calls! {
        ipam_capabilities() -> IpamCapabilities = IpamGetCapabilities;
        default_address_spaces() -> AddressSpaces = GetDefaultAddressSpaces;
        request_pool(RequestPoolRequest) -> RequestPoolResponse = RequestPool;
        release_pool(ReleasePoolRequest) -> () = ReleasePool;
    }
}

impl IpamAddresses for FakeDriver {
    fake_calls! {
        request_address(RequestAddressRequest) -> RequestAddressResponse = RequestAddress;
        release_address(ReleaseAddressRequest) -> () = ReleaseAddress;
    }
}
