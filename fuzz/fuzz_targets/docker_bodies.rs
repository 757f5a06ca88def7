//! Docker plugin request bodies: the first byte picks the call (and so the
//! request type, as the server picks it from the path), the rest is the
//! body. Whatever parses must re-encode and parse again to the same value.
#![no_main]

use kuryr_wire::docker::{PluginCall, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let call = PluginCall::ALL[selector as usize % PluginCall::ALL.len()];
    let Ok(request) = Request::parse(call, body) else {
        return;
    };
    assert_eq!(request.call(), call);
    let Some(json) = encode(&request) else {
        return;
    };
    let again = Request::parse(call, json.as_bytes())
        .unwrap_or_else(|e| panic!("{call}: re-encoded body {json} does not parse: {e}"));
    assert_eq!(
        encode(&again).as_deref(),
        Some(json.as_str()),
        "{call}: not stable"
    );
});

/// The request's payload as JSON (`None` for calls without one).
fn encode(request: &Request) -> Option<String> {
    fn j<T: serde::Serialize>(v: &T) -> Option<String> {
        Some(serde_json::to_string(v).expect("a parsed request serializes"))
    }
    match request {
        Request::Activate
        | Request::NetworkGetCapabilities
        | Request::IpamGetCapabilities
        | Request::GetDefaultAddressSpaces => None,
        Request::CreateNetwork(r) => j(r),
        Request::DeleteNetwork(r) | Request::FreeNetwork(r) => j(r),
        Request::AllocateNetwork(r) => j(r),
        Request::CreateEndpoint(r) => j(r),
        Request::EndpointOperInfo(r)
        | Request::DeleteEndpoint(r)
        | Request::Leave(r)
        | Request::RevokeExternalConnectivity(r) => j(r),
        Request::Join(r) => j(r),
        Request::DiscoverNew(r) | Request::DiscoverDelete(r) => j(r),
        Request::ProgramExternalConnectivity(r) => j(r),
        Request::RequestPool(r) => j(r),
        Request::ReleasePool(r) => j(r),
        Request::RequestAddress(r) => j(r),
        Request::ReleaseAddress(r) => j(r),
    }
}
