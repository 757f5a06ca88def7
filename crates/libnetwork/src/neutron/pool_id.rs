//! The pool id Kuryr hands Docker: opaque to Docker, and enough to find
//! the Neutron subnetpool or subnet again with no local state
//! (docs/mapping.md § Pools).

use std::fmt;

use ipnet::IpNet;

use crate::api::DriverError;

/// The pool id Kuryr hands Docker. Opaque to Docker; it carries what is
/// needed to find the Neutron subnet again without any local state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PoolId {
    /// A subnetpool Kuryr made for one `--subnet` (upstream's format: the
    /// bare subnetpool id).
    Dedicated {
        /// Subnetpool id.
        pool: String,
    },
    /// A subnet of `cidr` carved from a shared subnetpool (the default
    /// pools, or one named with `neutron.pool.*`): `<pool id>/<cidr>`.
    Carved {
        /// Subnetpool id.
        pool: String,
        /// The subnet's cidr.
        cidr: IpNet,
    },
    /// An existing Neutron subnet named with `neutron.subnet.*`:
    /// `subnet:<subnet id>`.
    Existing {
        /// Subnet id.
        subnet: String,
    },
}

impl PoolId {
    /// Parses a pool id Kuryr handed out (400 for anything else).
    pub fn parse(text: &str) -> Result<PoolId, DriverError> {
        let bad = || DriverError::bad_request(format!("PoolID {text:?} was not made by Kuryr"));
        if let Some(subnet) = text.strip_prefix("subnet:") {
            return if is_neutron_id(subnet) {
                Ok(PoolId::Existing { subnet: subnet.to_string() })
            } else {
                Err(bad())
            };
        }
        match text.split_once('/') {
            Some((pool, cidr)) if is_neutron_id(pool) => Ok(PoolId::Carved {
                pool: pool.to_string(),
                cidr: cidr.parse().map_err(|_| bad())?,
            }),
            None if is_neutron_id(text) => Ok(PoolId::Dedicated { pool: text.to_string() }),
            _ => Err(bad()),
        }
    }

    /// The subnetpool behind it, if any.
    pub fn subnetpool(&self) -> Option<&str> {
        match self {
            PoolId::Dedicated { pool } | PoolId::Carved { pool, .. } => Some(pool),
            PoolId::Existing { .. } => None,
        }
    }
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolId::Dedicated { pool } => f.write_str(pool),
            PoolId::Carved { pool, cidr } => write!(f, "{pool}/{cidr}"),
            PoolId::Existing { subnet } => write!(f, "subnet:{subnet}"),
        }
    }
}

pub(super) fn is_neutron_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}
