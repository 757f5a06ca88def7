//! CNI specification versions and the `VERSION` result.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::CniError;

/// A CNI specification version this plugin speaks.
///
/// 0.1.0 and 0.2.0 (the `ip4`/`ip6` result shape) are not supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CniVersion {
    /// 0.3.0: rich result (`interfaces`, `ips` with `version`), chaining.
    V0_3_0,
    /// 0.3.1: typo fixes only.
    V0_3_1,
    /// 0.4.0: `CHECK`, `prevResult` on `DEL`.
    V0_4_0,
    /// 1.0.0: no `version` in `ips`; conflists only.
    V1_0_0,
    /// 1.1.0: `GC`, `STATUS`; interface `mtu`/`socketPath`/`pciID`; route
    /// `mtu`/`advmss`/`priority`/`table`/`scope`.
    V1_1_0,
}

impl CniVersion {
    /// The newest version, used when nothing else is known.
    pub const LATEST: CniVersion = CniVersion::V1_1_0;

    /// Every supported version, oldest first (what `VERSION` reports).
    pub const SUPPORTED: [CniVersion; 5] =
        [Self::V0_3_0, Self::V0_3_1, Self::V0_4_0, Self::V1_0_0, Self::V1_1_0];

    /// The version string, e.g. `"1.1.0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_3_0 => "0.3.0",
            Self::V0_3_1 => "0.3.1",
            Self::V0_4_0 => "0.4.0",
            Self::V1_0_0 => "1.0.0",
            Self::V1_1_0 => "1.1.0",
        }
    }

    /// `CHECK` exists since 0.4.0.
    pub fn has_check(self) -> bool {
        self >= Self::V0_4_0
    }

    /// `GC` and `STATUS` exist since 1.1.0.
    pub fn has_gc_and_status(self) -> bool {
        self >= Self::V1_1_0
    }

    /// Before 1.0.0 every `ips` entry carries `"version": "4"` or `"6"`.
    pub fn has_ip_version_field(self) -> bool {
        self < Self::V1_0_0
    }

    /// 1.1.0 added interface `mtu`, `socketPath`, `pciID` and route `mtu`,
    /// `advmss`, `priority`, `table`, `scope`.
    pub fn has_extended_fields(self) -> bool {
        self >= Self::V1_1_0
    }

    /// Parses a configuration's `cniVersion`: code 1 (incompatible version)
    /// when it is not one we speak, naming the supported ones.
    pub fn parse_config_version(version: &str) -> Result<Self, CniError> {
        version.parse().map_err(|_| {
            CniError::incompatible_version(
                format!("CNI version {version:?} is not supported by kuryr-cni"),
                format!("supported versions: {}", Self::supported_list()),
            )
        })
    }

    /// [`Self::SUPPORTED`] as `0.3.0, 0.3.1, ...`, for messages.
    pub fn supported_list() -> String {
        Self::SUPPORTED.map(Self::as_str).join(", ")
    }
}

/// A version string that is not one of [`CniVersion::SUPPORTED`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported CNI version {0:?}")]
pub struct UnsupportedVersion(pub String);

impl FromStr for CniVersion {
    type Err = UnsupportedVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::SUPPORTED
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnsupportedVersion(s.to_owned()))
    }
}

spelled_as_str!(CniVersion, |e: UnsupportedVersion| e);

/// The `VERSION` result:
/// `{"cniVersion": "1.1.0", "supportedVersions": ["0.3.0", ...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionResult {
    /// The `cniVersion` given on stdin (the newest one when none was).
    pub cni_version: String,
    /// Versions this plugin speaks.
    pub supported_versions: Vec<String>,
}

impl VersionResult {
    /// Kuryr's answer to `VERSION`. The spec echoes the input's
    /// `cniVersion`; without a usable one the newest version is reported.
    pub fn kuryr(input_version: Option<&str>) -> Self {
        let cni_version = input_version
            .filter(|v| is_semver_like(v))
            .unwrap_or(CniVersion::LATEST.as_str())
            .to_owned();
        Self {
            cni_version,
            supported_versions: CniVersion::SUPPORTED
                .iter()
                .map(|v| v.as_str().to_owned())
                .collect(),
        }
    }
}

/// `MAJOR.MINOR.PATCH` with decimal parts; enough to decide whether an
/// input version is worth echoing.
fn is_semver_like(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}
