//! The CNI environment: `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
//! `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`, and the per-command rules for them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::error::CniError;

/// `CNI_COMMAND`.
pub const ENV_COMMAND: &str = "CNI_COMMAND";
/// `CNI_CONTAINERID`.
pub const ENV_CONTAINERID: &str = "CNI_CONTAINERID";
/// `CNI_NETNS`.
pub const ENV_NETNS: &str = "CNI_NETNS";
/// `CNI_IFNAME`.
pub const ENV_IFNAME: &str = "CNI_IFNAME";
/// `CNI_ARGS`.
pub const ENV_ARGS: &str = "CNI_ARGS";
/// `CNI_PATH`.
pub const ENV_PATH: &str = "CNI_PATH";

/// Longest interface name Linux accepts (`IFNAMSIZ` - 1).
pub const MAX_IFNAME_LEN: usize = 15;

/// A CNI operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CniCommand {
    /// Add the container to the network (or apply modifications).
    Add,
    /// Remove the container from the network; idempotent.
    Del,
    /// Check the container's networking is as expected (0.4.0+).
    Check,
    /// Report supported versions; answered without the daemon.
    Version,
    /// Remove resources of attachments not in the valid list (1.1.0+).
    Gc,
    /// Report whether `ADD` can be serviced (1.1.0+).
    Status,
}

impl CniCommand {
    /// The `CNI_COMMAND` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Del => "DEL",
            Self::Check => "CHECK",
            Self::Version => "VERSION",
            Self::Gc => "GC",
            Self::Status => "STATUS",
        }
    }

    /// Whether the command concerns one attachment
    /// (`CNI_CONTAINERID`, `CNI_IFNAME`).
    pub fn is_attachment(self) -> bool {
        matches!(self, Self::Add | Self::Del | Self::Check)
    }

    /// The environment variables the spec requires for this command
    /// (besides `CNI_COMMAND` itself).
    pub fn required_vars(self) -> &'static [&'static str] {
        match self {
            Self::Add | Self::Check => &[ENV_CONTAINERID, ENV_NETNS, ENV_IFNAME],
            Self::Del => &[ENV_CONTAINERID, ENV_IFNAME],
            Self::Gc => &[ENV_PATH],
            Self::Version | Self::Status => &[],
        }
    }
}

impl FromStr for CniCommand {
    type Err = CniError;

    /// Exact, upper-case names as the spec defines them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ADD" => Self::Add,
            "DEL" => Self::Del,
            "CHECK" => Self::Check,
            "VERSION" => Self::Version,
            "GC" => Self::Gc,
            "STATUS" => Self::Status,
            other => {
                return Err(CniError::invalid_env(format!("invalid {ENV_COMMAND} {other:?}"))
                    .with_details("expected one of ADD, DEL, CHECK, VERSION, GC, STATUS"))
            }
        })
    }
}

// The daemon protocol reports only the message; the details list the
// commands, which a peer speaking the protocol already knows.
spelled_as_str!(CniCommand, |e: CniError| e.msg);

/// Checks a container id: not empty, starts with an ASCII alphanumeric,
/// then alphanumerics, `_`, `.` or `-`.
pub fn validate_container_id(id: &str) -> Result<(), CniError> {
    require_cni_name(id, || CniError::invalid_env(format!("invalid {ENV_CONTAINERID} {id:?}")))
}

/// Checks an interface name the way Linux and the spec do: not empty, at
/// most 15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub fn validate_ifname(name: &str) -> Result<(), CniError> {
    let problem = if name.is_empty() {
        "must not be empty".to_owned()
    } else if name.len() > MAX_IFNAME_LEN {
        format!("is {} bytes long, at most {MAX_IFNAME_LEN} allowed", name.len())
    } else if name == "." || name == ".." {
        "must not be \".\" or \"..\"".to_owned()
    } else if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        "must not contain '/', ':' or whitespace".to_owned()
    } else {
        return Ok(());
    };
    Err(CniError::invalid_env(format!("invalid {ENV_IFNAME} {name:?}: {problem}")))
}

/// Checks a network name: same characters as a container id.
pub fn validate_network_name(name: &str) -> Result<(), CniError> {
    require_cni_name(name, || CniError::invalid_config(format!("invalid network name {name:?}")))
}

/// `Ok` for a name [`is_cni_name`] accepts, else `error()` with the rule
/// as its details.
fn require_cni_name(name: &str, error: impl FnOnce() -> CniError) -> Result<(), CniError> {
    if is_cni_name(name) {
        return Ok(());
    }
    Err(error().with_details(
        "must start with an alphanumeric character, followed by alphanumerics, '_', '.' or '-'",
    ))
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`, the spec's rule for container ids and
/// network names.
fn is_cni_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphanumeric() => {
            bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        }
        _ => false,
    }
}

/// `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`, in order.
///
/// Empty segments (a trailing `;`) are ignored; a segment without `=` or
/// with an empty key is an error. A value may contain `=` (everything after
/// the first one). Repeated keys: the last one wins in lookups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CniArgs {
    pairs: Vec<(String, String)>,
}

impl CniArgs {
    /// Lets a plugin ignore keys it does not know (`1`/`true`); otherwise
    /// unknown keys are an error (libcni's convention).
    pub const IGNORE_UNKNOWN: &'static str = "IgnoreUnknown";
    /// Kubernetes pod namespace.
    pub const K8S_POD_NAMESPACE: &'static str = "K8S_POD_NAMESPACE";
    /// Kubernetes pod name.
    pub const K8S_POD_NAME: &'static str = "K8S_POD_NAME";
    /// Kubernetes pod UID.
    pub const K8S_POD_UID: &'static str = "K8S_POD_UID";
    /// Id of the pod's sandbox (infra) container.
    pub const K8S_POD_INFRA_CONTAINER_ID: &'static str = "K8S_POD_INFRA_CONTAINER_ID";

    /// Parses a `CNI_ARGS` value; errors are code 4 naming `CNI_ARGS`.
    pub fn parse(s: &str) -> Result<Self, CniError> {
        let mut pairs = Vec::new();
        for segment in s.split(';').filter(|seg| !seg.is_empty()) {
            let Some((key, value)) = segment.split_once('=') else {
                return Err(CniError::invalid_env(format!(
                    "invalid {ENV_ARGS}: {segment:?} is not KEY=VALUE"
                )));
            };
            if key.is_empty() || key.chars().any(char::is_whitespace) {
                return Err(CniError::invalid_env(format!(
                    "invalid {ENV_ARGS}: bad key in {segment:?}"
                )));
            }
            pairs.push((key.to_owned(), value.to_owned()));
        }
        let args = Self { pairs };
        args.parse_ignore_unknown()?;
        Ok(args)
    }

    /// Builds from a map (the daemon protocol carries a map).
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<Self, CniError> {
        let args = Self { pairs: map.iter().map(|(k, v)| (k.clone(), v.clone())).collect() };
        if let Some(key) = args.pairs.iter().map(|(k, _)| k).find(|k| k.is_empty()) {
            return Err(CniError::invalid_env(format!("invalid {ENV_ARGS}: empty key {key:?}")));
        }
        args.parse_ignore_unknown()?;
        Ok(args)
    }

    /// The pairs as a map (last value of a repeated key).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.pairs.iter().cloned().collect()
    }

    /// All pairs in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The value of `key` (the last one if repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Whether `IgnoreUnknown` is `1` or `true` (any case).
    pub fn ignore_unknown(&self) -> bool {
        self.parse_ignore_unknown().unwrap_or(false)
    }

    fn parse_ignore_unknown(&self) -> Result<bool, CniError> {
        match self.get(Self::IGNORE_UNKNOWN) {
            None => Ok(false),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" => Ok(true),
                "0" | "false" => Ok(false),
                _ => Err(CniError::invalid_env(format!(
                    "invalid {ENV_ARGS}: {}={v:?} is not a boolean (1, 0, true, false)",
                    Self::IGNORE_UNKNOWN
                ))),
            },
        }
    }

    /// `K8S_POD_NAMESPACE`, if set and not empty.
    pub fn k8s_pod_namespace(&self) -> Option<&str> {
        self.non_empty(Self::K8S_POD_NAMESPACE)
    }

    /// `K8S_POD_NAME`, if set and not empty.
    pub fn k8s_pod_name(&self) -> Option<&str> {
        self.non_empty(Self::K8S_POD_NAME)
    }

    /// `K8S_POD_UID`, if set and not empty.
    pub fn k8s_pod_uid(&self) -> Option<&str> {
        self.non_empty(Self::K8S_POD_UID)
    }

    /// `K8S_POD_INFRA_CONTAINER_ID`, if set and not empty.
    pub fn k8s_pod_infra_container_id(&self) -> Option<&str> {
        self.non_empty(Self::K8S_POD_INFRA_CONTAINER_ID)
    }

    fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Keys not in `known` (and not `IgnoreUnknown`), in order.
    pub fn unknown_keys<'a>(&'a self, known: &[&str]) -> Vec<&'a str> {
        self.pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| *k != Self::IGNORE_UNKNOWN && !known.contains(k))
            .collect()
    }

    /// Code 4 when keys outside `known` are present without
    /// `IgnoreUnknown=1`.
    pub fn check_known(&self, known: &[&str]) -> Result<(), CniError> {
        let unknown = self.unknown_keys(known);
        if unknown.is_empty() || self.ignore_unknown() {
            return Ok(());
        }
        Err(CniError::invalid_env(format!("unknown {ENV_ARGS} keys: {}", unknown.join(", ")))
            .with_details(format!(
                "known keys: {}; set {}=1 to ignore others",
                known.join(", "),
                Self::IGNORE_UNKNOWN
            )))
    }
}

impl fmt::Display for CniArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// The validated CNI environment of one invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CniEnv {
    /// `CNI_COMMAND`.
    pub command: CniCommand,
    /// `CNI_CONTAINERID` (validated for ADD, DEL, CHECK).
    pub container_id: Option<String>,
    /// `CNI_NETNS`, an absolute path when set.
    pub netns: Option<String>,
    /// `CNI_IFNAME` (validated for ADD, DEL, CHECK).
    pub ifname: Option<String>,
    /// `CNI_ARGS`.
    pub args: CniArgs,
    /// `CNI_PATH`, split on `:`, empty entries dropped.
    pub path: Vec<String>,
}

impl CniEnv {
    /// Reads and validates the process environment.
    pub fn from_process_env() -> Result<Self, CniError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads and validates the environment through `lookup`. An empty
    /// variable counts as unset (runtimes export empty `CNI_NETNS` on DEL).
    ///
    /// Errors are code 4 and name the variables: every missing required
    /// one, or the first malformed one.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CniError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let command: CniCommand = match get(ENV_COMMAND) {
            Some(c) => c.parse()?,
            None => {
                return Err(CniError::invalid_env(format!(
                    "required environment variable {ENV_COMMAND} is missing"
                )))
            }
        };
        let env = Self {
            command,
            container_id: get(ENV_CONTAINERID),
            netns: get(ENV_NETNS),
            ifname: get(ENV_IFNAME),
            args: CniArgs::parse(&get(ENV_ARGS).unwrap_or_default())?,
            path: get(ENV_PATH).map(|p| split_path(&p)).unwrap_or_default(),
        };
        env.validate()?;
        Ok(env)
    }

    /// Applies the spec's per-command rules: required variables present,
    /// container id and interface name well-formed, netns absolute.
    pub fn validate(&self) -> Result<(), CniError> {
        let missing: Vec<&str> =
            self.command.required_vars().iter().copied().filter(|var| !self.is_set(var)).collect();
        if !missing.is_empty() {
            return Err(CniError::invalid_env(format!(
                "required environment variables missing for {}: {}",
                self.command,
                missing.join(", ")
            )));
        }
        if !self.command.is_attachment() {
            return Ok(());
        }
        if let Some(id) = &self.container_id {
            validate_container_id(id)?;
        }
        if let Some(ifname) = &self.ifname {
            validate_ifname(ifname)?;
        }
        if let Some(netns) = &self.netns {
            validate_netns(netns)?;
        }
        Ok(())
    }

    fn is_set(&self, name: &str) -> bool {
        let non_empty = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
        match name {
            ENV_CONTAINERID => non_empty(&self.container_id),
            ENV_NETNS => non_empty(&self.netns),
            ENV_IFNAME => non_empty(&self.ifname),
            ENV_PATH => !self.path.is_empty(),
            _ => false,
        }
    }
}

/// `CNI_NETNS` must be an absolute path: the daemon resolves it from
/// another working directory.
pub fn validate_netns(netns: &str) -> Result<(), CniError> {
    if netns.starts_with('/') {
        return Ok(());
    }
    Err(CniError::invalid_env(format!(
        "invalid {ENV_NETNS} {netns:?}: must be an absolute path such as /var/run/netns/<name>"
    )))
}

fn split_path(path: &str) -> Vec<String> {
    path.split(':').filter(|p| !p.is_empty()).map(str::to_owned).collect()
}
