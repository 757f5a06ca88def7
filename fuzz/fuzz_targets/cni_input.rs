//! CNI plugin input: the environment and the configuration on stdin. The
//! input is `KEY=VALUE` lines (the `CNI_*` variables), a NUL byte, then the
//! configuration. Everything the plugin and daemon parse from these runs
//! here: the environment rules, `NetConf` and its per-command checks,
//! `prevResult` and its conversion to every version, conflists, and bare
//! results. Any result that parses must survive conversion and re-parsing.
#![no_main]

use std::collections::HashMap;

use kuryr_wire::cni::{AddResult, CniEnv, CniVersion, NetConf, NetConfList};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let (env_text, config) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let vars: HashMap<String, String> = String::from_utf8_lossy(env_text)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = CniEnv::from_lookup(|name| vars.get(name).cloned());
    if let Ok(env) = &env {
        let _ = env.args.to_map();
    }
    let Ok(value) = serde_json::from_slice::<Value>(config) else {
        return;
    };
    if let Ok(conf) = NetConf::from_value(&value) {
        let version = conf.version();
        if let Ok(env) = &env {
            let _ = conf.validate_for(env.command);
        }
        if let Ok(version) = version {
            if let Ok(Some(prev)) = conf.prev_result(version) {
                round_trip(&prev);
            }
        }
        let _ = conf.gc_attachments();
    }
    if let Ok(list) = serde_json::from_value::<NetConfList>(value.clone()) {
        let _ = list.select_version();
    }
    if let Ok(result) = AddResult::parse(&value, CniVersion::LATEST) {
        round_trip(&result);
    }
});

/// Converts a parsed result to every version; each must parse again.
fn round_trip(result: &AddResult) {
    for version in CniVersion::SUPPORTED {
        let converted = result.to_version(version);
        let json = serde_json::to_value(&converted).expect("a result serializes");
        if let Err(e) = AddResult::parse(&json, version) {
            panic!("{version:?}: converted result {json} does not parse: {e}");
        }
    }
}
