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
    if !call.has_payload() {
        return;
    }
    let json = encode(&request);
    let again = Request::parse(call, json.as_bytes())
        .unwrap_or_else(|e| panic!("{call}: re-encoded body {json} does not parse: {e}"));
    assert_eq!(encode(&again), json, "{call}: not stable");
});

/// The request's payload as JSON, through the wire crate's own encoding.
fn encode(request: &Request) -> String {
    serde_json::to_string(request).expect("a parsed request serializes")
}
