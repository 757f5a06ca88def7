//! The plugin <-> daemon protocol.
//!
//! The `kuryr-cni` binary sends every command but `VERSION` to the node
//! daemon as one HTTP/1.1 request on a unix socket
//! ([`DEFAULT_SOCKET`], or `$KURYR_CNI_SOCKET`):
//!
//! ```text
//! POST /cni HTTP/1.1
//! Content-Type: application/json
//!
//! {"command": "ADD", "container_id": "...", "netns": "/var/run/netns/x",
//!  "ifname": "eth0", "args": {"K8S_POD_NAME": "web"}, "path": ["/opt/cni/bin"],
//!  "config": { <the plugin's stdin, verbatim, prevResult included> }}
//! ```
//!
//! A success is `200` with [`Response`] `{"result": <ADD result in the
//! configuration's cniVersion>}` (`{}` for the other commands). A failure is
//! a non-200 status whose body is the CNI error object
//! ([`ErrorReply`](super::ErrorReply)), which the plugin prints as is.
//!
//! [`Request::validate`] applies the spec's checks and turns a request
//! into a typed [`Call`]; the plugin runs it before sending (so bad input
//! fails without the daemon) and the daemon runs it again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    AddResult, CniArgs, CniCommand, CniEnv, CniError, CniVersion, GcAttachment, NetConf,
    VALID_ATTACHMENTS_KEY,
};

/// Where the daemon listens by default.
pub const DEFAULT_SOCKET: &str = "/run/kuryr/cni.sock";
/// Environment variable overriding the socket path.
pub const SOCKET_ENV: &str = "KURYR_CNI_SOCKET";
/// HTTP path of every call.
pub const CALL_PATH: &str = "/cni";
/// Largest request or reply body (a GC list of many attachments stays far
/// below).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// One CNI invocation, forwarded to the daemon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// `CNI_COMMAND`.
    pub command: CniCommand,
    /// `CNI_CONTAINERID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// `CNI_NETNS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// `CNI_IFNAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifname: Option<String>,
    /// `CNI_ARGS` as key/value pairs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// `CNI_PATH` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// The network configuration read from stdin, unchanged.
    pub config: Value,
}

/// A successful reply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The ADD result (in the requested version) or the VERSION result;
    /// absent for commands that print nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

impl Request {
    /// The request for an invocation.
    pub fn new(env: &CniEnv, config: Value) -> Self {
        Self {
            command: env.command,
            container_id: env.container_id.clone(),
            netns: env.netns.clone(),
            ifname: env.ifname.clone(),
            args: env.args.to_map(),
            path: env.path.clone(),
            config,
        }
    }

    /// The version to stamp on an error reply: the configuration's
    /// `cniVersion` if we speak it, else the newest.
    pub fn reply_version(&self) -> CniVersion {
        reply_version_of(&self.config)
    }

    /// Validates the request as the spec requires and types it:
    ///
    /// - environment rules for the command (error 4);
    /// - configuration decodable (6), version supported and new enough for
    ///   the command (1), network name valid (7);
    /// - `prevResult` decodable (6); CHECK must carry one (7);
    /// - GC must carry `cni.dev/valid-attachments` (7): without it every
    ///   attachment would look stale.
    pub fn validate(&self) -> Result<Call, CniError> {
        let env = CniEnv {
            command: self.command,
            container_id: self.container_id.clone(),
            netns: self.netns.clone(),
            ifname: self.ifname.clone(),
            args: CniArgs::from_map(&self.args)?,
            path: self.path.clone(),
        };
        env.validate()?;
        if self.command == CniCommand::Version {
            let version = self.config.get("cniVersion").and_then(Value::as_str);
            return Ok(Call::Version(version.map(str::to_owned)));
        }
        let config = NetConf::from_value(&self.config)?;
        let version = config.validate_for(self.command)?;
        match self.command {
            CniCommand::Add | CniCommand::Del | CniCommand::Check => {
                let prev_result = config.prev_result(version)?;
                if self.command == CniCommand::Check && prev_result.is_none() {
                    return Err(CniError::invalid_config(
                        "CHECK needs prevResult in the network configuration",
                    )
                    .with_details("the runtime must pass the result of the preceding ADD"));
                }
                let request = AttachmentRequest {
                    version,
                    container_id: env.container_id.unwrap_or_default(),
                    ifname: env.ifname.unwrap_or_default(),
                    netns: env.netns,
                    args: env.args,
                    path: env.path,
                    config,
                    prev_result,
                    raw_config: self.config.clone(),
                };
                Ok(match self.command {
                    CniCommand::Add => Call::Add(request),
                    CniCommand::Del => Call::Del(request),
                    _ => Call::Check(request),
                })
            }
            CniCommand::Gc => {
                let Some(valid) = config.gc_attachments() else {
                    return Err(CniError::invalid_config(format!(
                        "GC needs {VALID_ATTACHMENTS_KEY} in the network configuration"
                    ))
                    .with_details("without the list of valid attachments nothing is removed"));
                };
                Ok(Call::Gc(GcRequest {
                    version,
                    valid_attachments: valid.to_vec(),
                    path: env.path,
                    args: env.args,
                    config,
                    raw_config: self.config.clone(),
                }))
            }
            CniCommand::Status => Ok(Call::Status(StatusRequest {
                version,
                path: env.path,
                config,
                raw_config: self.config.clone(),
            })),
            CniCommand::Version => Ok(Call::Version(None)),
        }
    }
}

/// The version to stamp on an error about `config`.
pub fn reply_version_of(config: &Value) -> CniVersion {
    config
        .get("cniVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(CniVersion::LATEST)
}

/// A validated request.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// ADD.
    Add(AttachmentRequest),
    /// DEL.
    Del(AttachmentRequest),
    /// CHECK (always has a `prev_result`).
    Check(AttachmentRequest),
    /// GC.
    Gc(GcRequest),
    /// STATUS.
    Status(StatusRequest),
    /// VERSION, with the `cniVersion` given on input.
    Version(Option<String>),
}

impl Call {
    /// The command.
    pub fn command(&self) -> CniCommand {
        match self {
            Self::Add(_) => CniCommand::Add,
            Self::Del(_) => CniCommand::Del,
            Self::Check(_) => CniCommand::Check,
            Self::Gc(_) => CniCommand::Gc,
            Self::Status(_) => CniCommand::Status,
            Self::Version(_) => CniCommand::Version,
        }
    }
}

/// ADD, DEL or CHECK of one attachment `(container_id, ifname)`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttachmentRequest {
    /// The configuration's version; results and errors use it.
    pub version: CniVersion,
    /// `CNI_CONTAINERID`, validated.
    pub container_id: String,
    /// `CNI_IFNAME`, validated.
    pub ifname: String,
    /// `CNI_NETNS`: always set for ADD and CHECK; DEL may lack it when the
    /// namespace is gone.
    pub netns: Option<String>,
    /// `CNI_ARGS`.
    pub args: CniArgs,
    /// `CNI_PATH`.
    pub path: Vec<String>,
    /// The decoded configuration.
    pub config: NetConf,
    /// `prevResult` converted to 1.1.0: the previous plugin's result on ADD
    /// (kuryr-cni is not first in the chain), the chain's final result on
    /// DEL and CHECK.
    pub prev_result: Option<AddResult>,
    /// The configuration as received.
    pub raw_config: Value,
}

/// GC of a network.
#[derive(Clone, Debug, PartialEq)]
pub struct GcRequest {
    /// The configuration's version (1.1.0+).
    pub version: CniVersion,
    /// Attachments still in use; everything else of this network is stale.
    pub valid_attachments: Vec<GcAttachment>,
    /// `CNI_PATH`.
    pub path: Vec<String>,
    /// `CNI_ARGS` (runtimes pass none on GC).
    pub args: CniArgs,
    /// The decoded configuration.
    pub config: NetConf,
    /// The configuration as received.
    pub raw_config: Value,
}

impl GcRequest {
    /// The attachments still in use, as `(container id, ifname)`.
    pub fn valid_set(&self) -> std::collections::HashSet<(&str, &str)> {
        self.valid_attachments
            .iter()
            .map(|a| (a.container_id.as_str(), a.ifname.as_str()))
            .collect()
    }
}

/// STATUS of the plugin for a network.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusRequest {
    /// The configuration's version (1.1.0+).
    pub version: CniVersion,
    /// `CNI_PATH`.
    pub path: Vec<String>,
    /// The decoded configuration.
    pub config: NetConf,
    /// The configuration as received.
    pub raw_config: Value,
}

#[cfg(test)]
mod tests;
